"""The function's environment read from a file: a deploy.env, as deploy.sh deploys it, or plain KEY=VALUE.

The command-line tools (`check`, `run --dry-run`) read the same configuration as the function. A
deploy.env names the function's settings as the function reads them, plus the deployment's own
(`PROJECT_ID`, `NAME`, ...); from those, deploy.sh and Terraform derive the rest of the function's
environment, and so does `deployed_environ`: each secret as its Secret Manager version name, the
Firestore history, the lookback and the run budget.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from notifier.errors import ConfigError
from notifier.variables import (
    BY_NAME,
    DEPLOYMENT_NAMES,
    NAMES,
    RUN_BUDGET_MARGIN_SECONDS,
    SCHEDULE_PATTERN,
    SECRET_NAMES,
    default,
)

RENAMED = {"TIME_ZONE": "SCHEDULE_TIME_ZONE", "DISPLAY_TIME_ZONE": "TIMEZONE"}
OPTION = "--env-file"
_LINE = re.compile(r"^(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")


def read_env_file(path: Path) -> dict[str, str]:
    """The KEY=VALUE settings of `path`, quoted as a shell reads them; ConfigError names the line at fault.

    Comments and blank lines are skipped. `$` and backquotes are refused outside single quotes: the
    shell that sources the file for deploy.sh would expand them, and this reader does not.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {path} ({type(error).__name__})", variable=OPTION) from None
    settings: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}, line {number}"
        match = _LINE.match(line)
        if match is None:
            raise ConfigError(f"{where} is not KEY=VALUE", variable=OPTION)
        key, value = match["key"], match["value"]
        if key in RENAMED:
            raise ConfigError(f"{where}: {key} is now called {RENAMED[key]}", variable=OPTION)
        if key not in NAMES and key not in DEPLOYMENT_NAMES:
            raise ConfigError(
                f"{where}: unknown setting {key} (deploy.env.example lists them)", variable=OPTION
            )
        settings[key] = _value(value, where, key)
    return settings


def _value(raw: str, where: str, key: str) -> str:
    if _expands(raw):
        raise ConfigError(
            f"{where}: {key} holds $ or a backquote, which a shell would expand; write the value itself "
            "in single quotes",
            variable=OPTION,
        )
    try:
        words = shlex.split(raw, comments=True)
    except ValueError:
        raise ConfigError(f"{where}: {key} has an unclosed quote", variable=OPTION) from None
    if len(words) > 1:
        raise ConfigError(f"{where}: {key} holds spaces; put the value in quotes", variable=OPTION)
    return words[0] if words else ""


def _expands(raw: str) -> bool:
    """True when a shell would expand something in `raw`: a $ or a backquote outside single quotes."""
    quote, escaped, previous = "", False, " "
    for char in raw:
        if escaped:
            escaped = False
        elif quote == "'":
            quote = "" if char == "'" else quote
        elif char == "\\":
            escaped = True
        elif char in "$`":
            return True
        elif char == '"':
            quote = "" if quote else '"'
        elif char == "'" and not quote:
            quote = "'"
        elif char == "#" and not quote and previous.isspace():
            return False  # the rest is a comment
        previous = char
    return False


def deployed_environ(settings: Mapping[str, str]) -> dict[str, str]:
    """The function's variables as the deployment gives them, from a deploy.env's settings.

    Without PROJECT_ID the file is a plain environment and is taken as it is. With it, what the file
    leaves out is derived as deploy.sh and terraform/environment.tf derive it.
    """
    environ = {key: value for key, value in settings.items() if key in NAMES and value}
    project = settings.get("PROJECT_ID", "")
    if not project:
        return environ
    name = settings.get("NAME") or default("NAME")
    slack = (settings.get("SLACK_ENABLED") or default("SLACK_ENABLED")) == "true"
    for variable in SECRET_NAMES:
        if variable == "SLACK_WEBHOOK_URL" and not slack:
            continue  # its secret exists only with Slack on
        secret = f"{name}-{BY_NAME[variable].secret_id}"
        environ.setdefault(variable, f"projects/{project}/secrets/{secret}/versions/latest")
    lookback = settings.get("LOOKBACK_MINUTES") or schedule_minutes(settings.get("SCHEDULE") or "")
    if lookback:
        environ.setdefault("DEFAULT_LOOKBACK_MINUTES", str(lookback))
    timeout = settings.get("TIMEOUT_SECONDS") or default("TIMEOUT_SECONDS")
    if timeout.isdigit():
        # The run ends before the platform would stop it.
        environ.setdefault("RUN_BUDGET_SECONDS", str(int(timeout) - RUN_BUDGET_MARGIN_SECONDS))
    environ.setdefault("STATE_STORE", "firestore")
    environ.setdefault("FIRESTORE_DATABASE", name)  # the deployment's own database
    return environ


def schedule_minutes(schedule: str) -> int | None:
    """The interval of a schedule that repeats at one (the table's SCHEDULE pattern), else None.

    Unset means the deployments' default schedule. deploy.sh and terraform/schedule.tf read it alike.
    """
    minute, hour, *_ = fields = (schedule or default("SCHEDULE")).split()
    if not re.search(SCHEDULE_PATTERN, " ".join(fields)):
        return None
    if hour == "*":
        return 1 if minute == "*" else int(minute[2:]) if minute.startswith("*/") else 60
    return 60 * int(hour[2:]) if hour.startswith("*/") else 1440


def tool_environ(env_file: str | None, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment a command-line tool runs the function's code with.

    Without a file, `environ` as it is. With one, the function's variables come from the file alone
    (as for deploy.sh, a stray export in the shell does not count); the rest of `environ` (Google
    credentials, emulator hosts) stays, and a deploy.env's PROJECT_ID is the Google Cloud project.
    """
    if env_file is None:
        return dict(environ)
    settings = read_env_file(Path(env_file))
    tool = {key: value for key, value in environ.items() if key not in NAMES}
    tool.update(deployed_environ(settings))
    if settings.get("PROJECT_ID"):
        tool["GOOGLE_CLOUD_PROJECT"] = settings["PROJECT_ID"]
    return tool
