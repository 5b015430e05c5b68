# The README's two commands: `make demo` and `make test`. Both create .venv on first use.
SHELL := /bin/bash
PY312 := $(shell ls -d $$(pyenv root 2>/dev/null)/versions/3.12.*/bin/python3.12 2>/dev/null | tail -n 1)
PYTHON ?= $(if $(PY312),$(PY312),python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
SHELL_SCRIPTS := deploy.sh .ci/run

.PHONY: demo sandbox test lint typecheck infra unit browser bench clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	@touch $(CHECKOV_STAMP)

demo: $(STAMP)
	$(BIN)/python -m sandbox.demo

# The stand-ins on ports 9101-9105 until Ctrl-C, to run the function by hand (docs/local.md).
sandbox: $(STAMP)
	$(BIN)/python -m sandbox serve

test: lint typecheck infra unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Terraform cannot download its Google provider here, so no init/validate: fmt, checkov, and the
# HCL tests in tests/test_deploy_config.py stand in.
infra: $(STAMP) $(CHECKOV_STAMP)
	@command -v terraform >/dev/null || { echo "terraform is not installed (needed for terraform fmt)"; exit 1; }
	TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive -diff terraform
	$(CHECKOV) --directory terraform --framework terraform --skip-download --compact --quiet
	$(BIN)/shellcheck -x $(SHELL_SCRIPTS)

unit: $(STAMP) browser
	$(BIN)/pytest

# Headless Chromium for the email's layout tests (tests/test_email_browser.py) and the demo's
# screenshots. Installed with apt only where it can be (root, apt-get present); elsewhere those tests
# skip, saying so.
# CJK and emoji fonts: the demo's screenshots show names in every script, not boxes.
BROWSER_PACKAGES := chromium fonts-wqy-microhei fonts-noto-color-emoji

browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [ -n "$$CHROMIUM" ]; then \
	  exit 0; \
	elif [ "$$(id -u)" != 0 ]; then \
	  echo "chromium is missing and this is not root: the email's browser tests will skip (apt-get install chromium)"; \
	elif ! command -v apt-get >/dev/null; then \
	  echo "chromium is missing and there is no apt-get: the email's browser tests will skip"; \
	else \
	  echo "installing chromium with apt-get, for the email's browser tests (and fonts for its names)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get install -y -qq --no-install-recommends $(BROWSER_PACKAGES) >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $(BROWSER_PACKAGES) >/dev/null; }; } || \
	  echo "could not install chromium: the email's browser tests will skip"; \
	fi

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis demo-output
