"""Reading terraform/ with python-hcl2, for tests that check what Terraform would deploy."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

TERRAFORM = Path(__file__).resolve().parent.parent / "terraform"


def unquote(value: Any) -> Any:
    """python-hcl2 keeps string literals' quotes; drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@cache
def load() -> dict[str, Any]:
    """All of terraform/*.tf: resources by (type, name), data, variables, locals, terraform blocks."""
    merged: dict[str, Any] = {
        "resource": {},
        "data": {},
        "variable": {},
        "locals": {},
        "terraform": [],
        "files": {},
    }
    for path in sorted(TERRAFORM.glob("*.tf")):
        text = path.read_text()
        merged["files"][path.name] = text
        parsed = hcl2.loads(text)
        for kind in ("resource", "data"):
            for block in parsed.get(kind, []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        merged[kind][(unquote(rtype), unquote(name))] = body
        for block in parsed.get("variable", []):
            for name, body in block.items():
                merged["variable"][unquote(name)] = body
        for block in parsed.get("locals", []):
            merged["locals"].update({k: v for k, v in block.items() if k != "__is_block__"})
        merged["terraform"].extend(parsed.get("terraform", []))
    return merged


def resource(rtype: str, name: str) -> dict[str, Any]:
    """One resource's body."""
    body: dict[str, Any] = load()["resource"][(rtype, name)]
    return body


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block `name` of a body."""
    (inner,) = body[name]
    assert isinstance(inner, dict)
    return inner


def variable_default(name: str) -> Any:
    """A variable's default value."""
    return unquote(load()["variable"][name]["default"])


def scheduler_payload(variables: dict[str, Any] | None = None) -> bytes:
    """The exact bytes the Cloud Scheduler job publishes, evaluated from its `data` expression with
    these variables (terraform.tfvars.example's when None)."""
    data = block(resource("google_cloud_scheduler_job", "tick"), "pubsub_target")["data"]
    match = re.fullmatch(r"\$\{base64encode\((jsonencode\(.*\))\)\}", data)
    assert match, f"unexpected scheduler data expression: {data}"
    given = example_variables() if variables is None else variables
    return base64.b64decode(evaluate(f"base64encode({match.group(1)})", given))


# --- Real Terraform, offline -----------------------------------------------------------------------
# The Google provider cannot be downloaded here, so nothing can be planned as a whole. The files that
# hold only variables and locals (what the function is told, what is zipped, what the alerts say)
# need no provider: these run them with the real terraform binary, in a copy of terraform/ and deploy/.

ROOT = TERRAFORM.parent
# No CLI configuration, no version check over the network.
OFFLINE = {"TF_CLI_CONFIG_FILE": "/dev/null", "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
EXAMPLE_TFVARS = TERRAFORM / "terraform.tfvars.example"


@cache
def pure_files() -> tuple[Path, ...]:
    """terraform/*.tf files holding nothing but variables and locals."""
    return tuple(
        path
        for path in sorted(TERRAFORM.glob("*.tf"))
        if set(hcl2.loads(path.read_text())) <= {"variable", "locals", "__comments__"}
    )


def terraform_binary() -> str:
    """The terraform CLI; the test skips, saying so, where it is missing."""
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed: the Terraform evaluations need it (README, Prerequisites)")
    return binary


def example_variables() -> dict[str, Any]:
    """terraform.tfvars.example as Python values."""
    parsed = hcl2.loads(EXAMPLE_TFVARS.read_text())
    return {
        name: [unquote(item) for item in value] if isinstance(value, list) else unquote(value)
        for name, value in parsed.items()
        if name != "__comments__"
    }


def _terraform(
    args: list[str], variables: dict[str, Any], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="notifierator-tf-") as tmp:
        module = Path(tmp) / "terraform"
        module.mkdir()
        for path in pure_files():
            shutil.copy(path, module / path.name)
        shutil.copytree(ROOT / "deploy", Path(tmp) / "deploy")
        # One variable a line, so an error's location names the variable.
        (module / "test.tfvars.json").write_text(json.dumps({"source_dir": str(ROOT), **variables}, indent=1))
        return subprocess.run(
            [terraform_binary(), *args, "-var-file=test.tfvars.json"],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=module,
            env={**os.environ, **OFFLINE},
        )


def evaluate(expression: str, variables: dict[str, Any]) -> Any:
    """The value of an expression over the pure files, as `terraform console` computes it."""
    result = _terraform(["console"], variables, stdin=f"base64encode(jsonencode({expression}))\n")
    assert result.returncode == 0, f"terraform console failed on {expression}:\n{result.stderr}"
    return json.loads(base64.b64decode(unquote(result.stdout.strip())))


@dataclass(frozen=True)
class Refusal:
    """Terraform refusing a set of variables: which ones failed their validation, and what it said."""

    variables: frozenset[str]
    message: str  # on one line


# Where an "Invalid value for variable" error points: the variable's line in the var file, or, for a
# variable left at its default, its declaration.
_REFUSED = re.compile(r'on (?:test\.tfvars\.json|\w+\.tf) line \d+:\n\s*\d+:\s*(?:variable )?"(\w+)"')


def refusal(variables: dict[str, Any]) -> Refusal | None:
    """What Terraform refuses in these variables; None when it accepts them."""
    result = _terraform(["plan", "-input=false", "-lock=false", "-no-color"], variables)
    if result.returncode == 0:
        return None
    refused = frozenset(_REFUSED.findall(result.stderr))
    assert refused, f"terraform failed, but not on a variable:\n{result.stderr}"
    return Refusal(variables=refused, message=" ".join(result.stderr.split()))
