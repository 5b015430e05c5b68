"""Every environment variable the function reads, with its default: the one place those facts live.

`notifier.settings` parses them; Terraform and `deploy.sh` set only what differs from these defaults,
and `tests/test_deploy_config.py` holds both deployment paths to this table.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LOOKBACK_MINUTES = 44640  # 31 days
E164_PATTERN = r"^\+[1-9][0-9]{1,14}$"
MAX_EXTRA_PROPERTIES = 5


@dataclass(frozen=True)
class Variable:
    """One environment variable: its default as the environment spells it (None: unset means off)."""

    name: str
    default: str | None = None
    required: bool = False
    secret: bool = False  # the value, or a Secret Manager version name
    deployed: bool = True  # False: local runs and tests only (base-URL overrides)


VARIABLES: tuple[Variable, ...] = (
    Variable("MIXPANEL_PROJECT_ID", required=True),
    Variable("MIXPANEL_REGION", "us"),
    Variable("MIXPANEL_SERVICE_ACCOUNT"),
    Variable("MIXPANEL_SECRET", required=True, secret=True),
    Variable("EMAIL_TO"),
    Variable("EMAIL_FROM"),
    Variable("SENDGRID_API_KEY", secret=True),
    Variable("SMS_TO"),
    Variable("SMS_FROM"),
    Variable("TWILIO_ACCOUNT_SID"),
    Variable("TWILIO_AUTH_TOKEN", secret=True),
    Variable("SLACK_WEBHOOK_URL", secret=True),
    Variable("TIMEZONE", "UTC"),
    Variable("DEFAULT_LOOKBACK_MINUTES", "60"),
    Variable("NOTIFY_WHEN_EMPTY", "false"),
    Variable("PROJECT_LABEL"),  # unset: "Mixpanel project <id>"
    Variable("PROFILE_URL_TEMPLATE"),
    Variable("EXTRA_PROPERTIES"),
    Variable("EXCLUDE_EMAIL_DOMAINS"),
    Variable("STATE_STORE", "memory"),
    Variable("FIRESTORE_DATABASE", "(default)"),
    Variable("MAX_CATCH_UP_MINUTES", "10080"),
    Variable("LATE_ARRIVAL_MINUTES", "60"),
    Variable("EMAIL_ROW_LIMIT", "500"),
    Variable("RUN_BUDGET_SECONDS", "240"),
    Variable("MAX_MESSAGE_AGE_MINUTES", "1440"),
    Variable("MIXPANEL_API_URL", deployed=False),
    Variable("SENDGRID_API_URL", deployed=False),
    Variable("TWILIO_API_URL", deployed=False),
    Variable("SECRET_MANAGER_API_URL", deployed=False),
)
BY_NAME = {variable.name: variable for variable in VARIABLES}
NAMES = tuple(BY_NAME)
DEFAULTS = {v.name: v.default for v in VARIABLES if v.default is not None}
SECRET_NAMES = tuple(v.name for v in VARIABLES if v.secret)
URL_OVERRIDES = tuple(v.name for v in VARIABLES if not v.deployed)


def default(name: str) -> str:
    """The default of a variable that has one."""
    value = BY_NAME[name].default
    if value is None:
        raise KeyError(f"{name} has no default")
    return value


def deployment_facts() -> str:
    """deploy/function-defaults.env: the defaults and limits above as KEY=VALUE lines.

    Terraform and deploy.sh read that file, so the code stays the one place these facts are written;
    tests/test_deploy_parity.py holds the file to this text. Regenerate it with
    `.venv/bin/python -m notifier.variables > deploy/function-defaults.env`.
    """
    header = (
        "# Generated from notifier/variables.py: .venv/bin/python -m notifier.variables"
        " > deploy/function-defaults.env\n"
        "# The function's own defaults (a variable equal to its default is not deployed) and the limits\n"
        "# Terraform and deploy.sh validate against. A variable without a line has no fixed default.\n"
    )
    limits = {
        "E164_PATTERN": E164_PATTERN,
        "MAX_LOOKBACK_MINUTES": str(MAX_LOOKBACK_MINUTES),
        "MAX_EXTRA_PROPERTIES": str(MAX_EXTRA_PROPERTIES),
    }
    facts = {**DEFAULTS, **limits}
    return header + "".join(f"{name}={value}\n" for name, value in facts.items())


if __name__ == "__main__":
    print(deployment_facts(), end="")
