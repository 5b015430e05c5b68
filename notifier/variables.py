"""Every environment variable the function reads, and every setting of a deployment: the one table.

Each row says a variable's default, bounds, pattern, whether it is a secret and whether it is deployed,
with a one-line doc. `notifier.settings` validates from it; the deploy paths read what this module
writes (`python -m notifier.variables --write`): deploy/variables.env (deploy.sh and Terraform),
terraform/function_settings.tf (the function's settings as Terraform variables) and
docs/configuration.md. tests/test_deploy_parity.py holds each written file to this module.
"""

from __future__ import annotations

import sys
import unicodedata
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from notifier.outcome import Outcome

MAX_LOOKBACK_MINUTES = 44640  # 31 days: the longest window a trigger message may ask for
MAX_EXTRA_PROPERTIES = 5
# The profile properties every digest shows (beside the CREATED_PROPERTY date): never extra columns.
DIGEST_PROPERTIES = ("$email", "$name", "$first_name", "$last_name")
# The channels, in the order every message and summary lists them, and the variable that turns each on.
CHANNEL_VARIABLES = {"email": "EMAIL_TO", "sms": "SMS_TO", "slack": "SLACK_WEBHOOK_URL"}
# The run's own budget ends this long before the platform stops the function.
RUN_BUDGET_MARGIN_SECONDS = 60

# Patterns every path applies, whole-value: written so that Python's re, Terraform's RE2 and bash's
# extended regular expressions read them alike (no \d or \s, no POSIX classes, no flags).
EMAIL_PATTERN = r'[^@,<>" ]+@[^@,<>" .]+(\.[^@,<>" .]+)+'  # coarse; the code also runs email-validator
E164_PATTERN = r"^\+[1-9][0-9]{1,14}$"
ACCOUNT_SID_PATTERN = r"^AC[0-9a-fA-F]{32}$"
MESSAGING_SERVICE_SID_PATTERN = r"^MG[0-9a-fA-F]{32}$"
PROPERTY_NAME_PATTERN = r"^[^\"'\\,]{1,255}$"  # the code also refuses what has_control finds
IANA_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"  # the code asks the zone database
TIME_OF_DAY = r"([01][0-9]|2[0-3]):[0-5][0-9]"


def has_control(text: str) -> bool:
    """True when `text` holds a character that is not text: a C0 or C1 control, a format character
    (zero-width, bidi override, BOM), a line or paragraph separator, a surrogate."""
    return any(unicodedata.category(char) in _NOT_TEXT for char in text)


_NOT_TEXT = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

# Cron schedules whose ticks come at one fixed interval (its fields single-spaced): every N minutes with
# N dividing an hour, hourly, every N hours with N dividing a day, or daily.
SCHEDULE_PATTERN = (
    r"^((\*|\*/(2|3|4|5|6|10|12|15|20|30)) \*|[0-5]?[0-9] (\*|\*/(2|3|4|6|8|12)|1?[0-9]|2[0-3])) \* \* \*$"
)


class Kind(Enum):
    """How a value is spelled: what Terraform's type is and how the function reads it."""

    TEXT = "string"
    WHOLE = "number"
    BOOLEAN = "bool"
    LIST = "list(string)"  # comma-separated in the environment


class Deployed(Enum):
    """How a deployment gives the function a variable."""

    SETTING = "a setting of deploy.env and Terraform"
    DERIVED = "set by the deployment"
    LOCAL = "local runs and tests only"
    DEPLOYMENT = "a deployment setting, not the function's"


@dataclass(frozen=True)
class Variable:
    """One variable: its facts, as every path reads them."""

    name: str
    doc: str
    default: str | None = None  # as the environment spells it; None: unset means off (or required)
    kind: Kind = Kind.TEXT
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None  # what every path checks (each entry of a list)
    expected: str = ""  # what the pattern or bounds want, for messages: "an E.164 number like ..."
    max_entries: int | None = None
    required: bool = False
    required_with: str | None = None  # required once this other variable is set
    secret: bool = False  # the value, or a Secret Manager version name
    deployed: Deployed = Deployed.SETTING
    terraform: str | None = None  # the Terraform variable, when not the lowercase name
    section: str = "The function"

    @property
    def terraform_name(self) -> str:
        """The Terraform variable that sets it (deploy.env uses the variable's own name)."""
        return self.terraform or self.name.lower()

    @property
    def secret_id(self) -> str:
        """The Secret Manager secret's id after the deployment's name: MIXPANEL_SECRET -> mixpanel-secret."""
        return self.name.lower().replace("_", "-")

    @property
    def wants(self) -> str:
        """What a valid value looks like, in words."""
        if self.expected:
            return self.expected
        if self.minimum is not None and self.maximum is not None:
            return f"a whole number from {self.minimum} to {self.maximum}"
        if self.kind is Kind.BOOLEAN:
            return "true or false"
        return "set"


def _one_of(*choices: str) -> str:
    return "^(" + "|".join(choices) + ")$"


MIXPANEL, CHANNELS, DIGEST, HISTORY, LIMITS, LOCAL, DEPLOYMENT_SECTION = (
    "Mixpanel",
    "Channels",
    "The digest",
    "Run history",
    "Limits",
    "Local runs and tests",
    "The deployment",
)

VARIABLES: tuple[Variable, ...] = (
    Variable(
        "MIXPANEL_PROJECT_ID",
        "Numeric Mixpanel project id.",
        pattern="^[1-9][0-9]{0,8}$",
        expected="the numeric project id, like 1234567",
        required=True,
        section=MIXPANEL,
    ),
    Variable(
        "MIXPANEL_REGION",
        "Data residency of the project: the host the function asks.",
        "us",
        pattern=_one_of("us", "eu", "in"),
        expected="us, eu or in",
        section=MIXPANEL,
    ),
    Variable(
        "MIXPANEL_SERVICE_ACCOUNT",
        "Service-account username; unset: MIXPANEL_SECRET is the legacy project API secret.",
        expected="printable ASCII without spaces",
        section=MIXPANEL,
    ),
    Variable(
        "MIXPANEL_SECRET",
        "Service-account secret, or the legacy project API secret.",
        required=True,
        secret=True,
        deployed=Deployed.DERIVED,
        section=MIXPANEL,
    ),
    Variable(
        "CREATED_PROPERTY",
        "The profile property that dates a sign-up: $created, $mp_first_event_time or the project's own.",
        "$created",
        pattern=PROPERTY_NAME_PATTERN,
        expected="a property name of at most 255 characters, without quotes, backslashes or commas",
        section=MIXPANEL,
    ),
    Variable(
        "MIXPANEL_FILTER",
        'An Engage where expression ANDed with the window, like properties["plan"] == "pro".',
        expected="an expression whose parentheses, brackets and quotes balance on their own",
        section=MIXPANEL,
    ),
    Variable(
        "MIXPANEL_PAGE_CONCURRENCY",
        "Engage pages fetched at once after the first (Mixpanel allows 5 queries at once).",
        "3",
        Kind.WHOLE,
        1,
        5,
        section=MIXPANEL,
    ),
    Variable(
        "EMAIL_TO",
        "Comma-separated recipients; the email channel is on when this is set.",
        kind=Kind.LIST,
        pattern=f"^{EMAIL_PATTERN}$",
        expected="an email address like growth@example.com",
        max_entries=1000,  # one SendGrid request carries at most 1,000 personalizations
        section=CHANNELS,
    ),
    Variable(
        "EMAIL_FROM",
        "Verified SendGrid sender, alerts@example.com or Name <alerts@example.com>.",
        pattern=f"^({EMAIL_PATTERN}|[^<>]*<{EMAIL_PATTERN}>)$",
        expected="an address like alerts@example.com or Name <alerts@example.com>",
        required_with="EMAIL_TO",
        section=CHANNELS,
    ),
    Variable(
        "SENDGRID_API_KEY",
        "SendGrid API key.",
        secret=True,
        required_with="EMAIL_TO",
        deployed=Deployed.DERIVED,
        section=CHANNELS,
    ),
    Variable(
        "SMS_TO",
        "Comma-separated E.164 numbers; the SMS channel is on when this is set.",
        kind=Kind.LIST,
        pattern=E164_PATTERN,
        expected="an E.164 number like +14155550100",
        max_entries=100,  # one message per number, one after another, inside one run's budget
        section=CHANNELS,
    ),
    Variable(
        "SMS_FROM",
        "E.164 sender number, or a Twilio Messaging Service SID (MG...).",
        pattern=f"({E164_PATTERN}|{MESSAGING_SERVICE_SID_PATTERN})",
        expected="an E.164 number like +14155550100 or a Messaging Service SID (MG + 32 hex)",
        required_with="SMS_TO",
        section=CHANNELS,
    ),
    Variable(
        "TWILIO_ACCOUNT_SID",
        "Twilio account SID (AC...); not a secret.",
        pattern=ACCOUNT_SID_PATTERN,
        expected="a Twilio account SID: AC + 32 hex",
        required_with="SMS_TO",
        section=CHANNELS,
    ),
    Variable(
        "TWILIO_AUTH_TOKEN",
        "Twilio auth token.",
        secret=True,
        required_with="SMS_TO",
        deployed=Deployed.DERIVED,
        section=CHANNELS,
    ),
    Variable(
        "SLACK_WEBHOOK_URL",
        "Slack incoming-webhook URL; the Slack channel is on when this is set.",
        secret=True,
        deployed=Deployed.DERIVED,
        section=CHANNELS,
    ),
    Variable(
        "SMS_QUIET_HOURS",
        "HH:MM-HH:MM in TIMEZONE (may wrap midnight): runs inside send no text; the next one tells all.",
        pattern=f"^{TIME_OF_DAY}-{TIME_OF_DAY}$",
        expected="two different times like 22:00-07:00",
        section=CHANNELS,
    ),
    Variable(
        "TIMEZONE",
        "IANA time zone used to show times to people.",
        "UTC",
        pattern=IANA_ZONE_PATTERN,
        expected="an IANA time zone like Europe/Berlin",
        terraform="display_time_zone",
        section=DIGEST,
    ),
    Variable(
        "DEFAULT_LOOKBACK_MINUTES",
        "Window of a message that names none; deployments set it to the schedule's interval.",
        "60",
        Kind.WHOLE,
        1,
        MAX_LOOKBACK_MINUTES,
        deployed=Deployed.DERIVED,
        section=DIGEST,
    ),
    Variable(
        "NOTIFY_WHEN_EMPTY",
        'true sends a "no new users" email and SMS; false: an empty window sends nothing.',
        "false",
        Kind.BOOLEAN,
        section=DIGEST,
    ),
    Variable(
        "PROJECT_LABEL",
        "The name people know the project by, shown in every message; unset: Mixpanel project <id>.",
        expected="one line of at most 60 characters, like Acme iOS",
        section=DIGEST,
    ),
    Variable(
        "PROFILE_URL_TEMPLATE",
        "A URL holding {distinct_id} once, where each listed user links to.",
        pattern=r"^https?://[^ ]*\{distinct_id\}",
        expected="an https URL holding {distinct_id} once, like https://admin.example.com/users/{distinct_id}",
        section=DIGEST,
    ),
    Variable(
        "EXTRA_PROPERTIES",
        "Profile properties shown as extra columns in the email, Slack and CSV.",
        kind=Kind.LIST,
        pattern=PROPERTY_NAME_PATTERN,
        expected="a property name like utm_source",
        max_entries=MAX_EXTRA_PROPERTIES,
        section=DIGEST,
    ),
    Variable(
        "EXCLUDE_EMAIL_DOMAINS",
        "Domains whose users (and subdomains') are left out of every message and counted as excluded.",
        kind=Kind.LIST,
        pattern=r"^@?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$",
        expected="a domain like acme.com",
        section=DIGEST,
    ),
    Variable(
        "BREAKDOWN_PROPERTY",
        "A profile property counted per value at the top of the email and in Slack.",
        pattern=PROPERTY_NAME_PATTERN,
        expected="a property name of at most 255 characters, without quotes, backslashes or commas",
        section=DIGEST,
    ),
    Variable(
        "COMPANY_ROLLUP",
        "Work addresses counted by company at the top of the email and in Slack.",
        "true",
        Kind.BOOLEAN,
        section=DIGEST,
    ),
    Variable(
        "EMAIL_ROW_LIMIT",
        "Users listed in the email body; the attached CSV holds everyone.",
        "500",
        Kind.WHOLE,
        1,
        10000,
        section=DIGEST,
    ),
    Variable(
        "STATE_STORE",
        "Where the run history lives: memory (one instance) or firestore.",
        "memory",
        pattern=_one_of("memory", "firestore"),
        expected="memory or firestore",
        deployed=Deployed.DERIVED,
        section=HISTORY,
    ),
    Variable(
        "FIRESTORE_DATABASE",
        "The Firestore database of the run history; deployments give it one of its own.",
        "(default)",
        pattern=r"^(\(default\)|[a-z][a-z0-9-]{2,61}[a-z0-9])$",
        expected="(default) or a database id like notifierator",
        deployed=Deployed.DERIVED,
        section=HISTORY,
    ),
    Variable(
        "MAX_CATCH_UP_MINUTES",
        "How far back a run covers time that no run covered.",
        "10080",
        Kind.WHOLE,
        0,
        MAX_LOOKBACK_MINUTES,
        section=HISTORY,
    ),
    Variable(
        "LATE_ARRIVAL_MINUTES",
        "How late a profile may reach Mixpanel after its sign-up and still be reported.",
        "60",
        Kind.WHOLE,
        0,
        1440,
        section=HISTORY,
    ),
    Variable(
        "RUN_BUDGET_SECONDS",
        f"A run's time budget; deployments set the function's timeout minus {RUN_BUDGET_MARGIN_SECONDS}.",
        "240",
        Kind.WHOLE,
        1,
        3600,
        deployed=Deployed.DERIVED,
        section=LIMITS,
    ),
    Variable(
        "MAX_MESSAGE_AGE_MINUTES",
        "A trigger message older than this is logged and acked, not run.",
        "1440",
        Kind.WHOLE,
        1,
        10080,
        section=LIMITS,
    ),
    *(
        Variable(
            f"{service}_API_URL",
            f"Base URL of {label} instead of the real one (plain http only for loopback).",
            expected="an http(s) base URL like http://127.0.0.1:9101",
            deployed=Deployed.LOCAL,
            section=LOCAL,
        )
        for service, label in (
            ("MIXPANEL", "Mixpanel"),
            ("SENDGRID", "SendGrid"),
            ("TWILIO", "Twilio"),
            ("SECRET_MANAGER", "Secret Manager"),
        )
    ),
)

# The deployment's own settings (deploy.env, and Terraform variables of the same meaning).
# Terraform's defaults are literals: tests/test_deploy_parity.py holds them to these.
DEPLOYMENT: tuple[Variable, ...] = tuple(
    replace(variable, deployed=Deployed.DEPLOYMENT, section=DEPLOYMENT_SECTION)
    for variable in (
        Variable(
            "PROJECT_ID",
            "Google Cloud project that hosts the function.",
            pattern="^[a-z][a-z0-9-]{4,28}[a-z0-9]$",
            expected="a Google Cloud project id (6 to 30 lowercase letters, digits or hyphens)",
            required=True,
        ),
        Variable(
            "REGION",
            "Region of the function, its trigger, its scheduler job and its source bucket.",
            "us-central1",
            pattern="^[a-z]+-[a-z]+[0-9]{1,2}$",
            expected="a Cloud Functions region such as us-central1 or europe-west10",
        ),
        Variable(
            "NAME",
            "Base name of every resource (function, topic, job, accounts, secrets, database).",
            "notifierator",
            pattern="^[a-z][a-z0-9-]{2,20}[a-z0-9]$",
            expected="4 to 22 lowercase letters, digits or hyphens, starting with a letter",
        ),
        Variable(
            "SCHEDULE",
            "Cron schedule of the job: every N minutes (N divides 60), every N hours (N divides 24), daily.",
            "0 * * * *",
            pattern=SCHEDULE_PATTERN,
            expected=(
                'a schedule that repeats at a fixed interval, so windows tile time: "*/15 * * * *", '
                '"0 * * * *", "0 */6 * * *" or "0 9 * * *"'
            ),
        ),
        Variable(
            "SCHEDULE_TIME_ZONE",
            "IANA time zone the schedule is read in.",
            "Etc/UTC",
            pattern=IANA_ZONE_PATTERN,
            expected="an IANA zone name such as Etc/UTC",
            terraform="time_zone",
        ),
        Variable(
            "LOOKBACK_MINUTES",
            "Window of each scheduled run; unset: the schedule's interval, which it must equal.",
            kind=Kind.WHOLE,
            minimum=1,
            maximum=MAX_LOOKBACK_MINUTES,
        ),
        Variable(
            "ALERT_EMAIL",
            "Who is emailed when a run needs a person or runs stop succeeding.",
            pattern=f"^{EMAIL_PATTERN}$",
            expected="an email address",
            required=True,
        ),
        Variable(
            "MISSING_RUN_ALERT",
            "Alert when no run has succeeded for about two intervals plus an hour (48 h when daily).",
            "true",
            Kind.BOOLEAN,
        ),
        Variable(
            "FIRESTORE_LOCATION",
            "Location of the run history's database (nam5, eur3 or a region); fixed once created.",
            "nam5",
            pattern="^(nam5|eur3|[a-z]+-[a-z]+[0-9]{1,2})$",
            expected="nam5, eur3 or a region such as us-central1",
        ),
        Variable(
            "SLACK_ENABLED",
            "Create the Slack webhook secret and turn the Slack channel on.",
            "false",
            Kind.BOOLEAN,
        ),
        Variable(
            "MEMORY",
            "Function memory.",
            "256M",
            pattern=_one_of("128M", "256M", "512M", "1G"),
            expected="128M, 256M, 512M or 1G",
        ),
        Variable(
            "TIMEOUT_SECONDS",
            f"Function timeout; a run's budget is this minus {RUN_BUDGET_MARGIN_SECONDS} seconds.",
            "300",
            Kind.WHOLE,
            120,
            540,
        ),
        Variable(
            "MAX_INSTANCES",
            "Most instances at once; 1 keeps runs serial and within Mixpanel's 5 queries at once.",
            "1",
            Kind.WHOLE,
            1,
            5,
        ),
    )
)

# Which run summaries the alerts count, by outcome (notifier/outcome.py says which need a person): "a
# run failed" opens for a run that needs one; a transient failure (will_retry) is what a redelivery
# completes, and if none does, "no successful run" tells. in_progress and dry_run are neither.
NEEDS_A_PERSON = tuple(outcome for outcome in Outcome if outcome.needs_a_person)
GOOD_RUNS = tuple(outcome for outcome in Outcome if outcome.good)
# "no successful run" looks back one interval plus this (a run's summary is logged up to its timeout
# after the tick, and log-based metrics arrive minutes late) and must see nothing for as long again.
ALERT_SLACK_MINUTES = 30
ALERT_WINDOW_CAP_MINUTES = 1500  # Cloud Monitoring's longest alignment period for an alert: 25 hours
ALERT_WAIT_CAP_MINUTES = 1410  # the longest condition duration the deployments have used: 23.5 hours

# Resources named after the deployment's NAME: NAME + suffix (the database is NAME itself).
RESOURCE_SUFFIXES = {
    "topic": "-trigger",
    "job": "-tick",
    "runtime_account": "-run",
    "trigger_account": "-trigger",
    "build_account": "-build",
}

BY_NAME = {variable.name: variable for variable in (*VARIABLES, *DEPLOYMENT)}
NAMES = tuple(variable.name for variable in VARIABLES)
DEPLOYMENT_NAMES = tuple(variable.name for variable in DEPLOYMENT)
DEFAULTS = {v.name: v.default for v in VARIABLES if v.default is not None}
SECRET_NAMES = tuple(v.name for v in VARIABLES if v.secret)
URL_OVERRIDES = tuple(v.name for v in VARIABLES if v.deployed is Deployed.LOCAL)
SETTINGS = tuple(v for v in VARIABLES if v.deployed is Deployed.SETTING)


def default(name: str) -> str:
    """The default of a variable that has one."""
    value = BY_NAME[name].default
    if value is None:
        raise KeyError(f"{name} has no default")
    return value


GENERATED = "Generated from notifier/variables.py by `python -m notifier.variables --write`: do not edit."


def deployment_facts() -> str:
    """deploy/variables.env: each variable's facts as NAME.fact=value lines, for deploy.sh and Terraform."""
    lines = [
        f"# {GENERATED}",
        "# NAME.fact=value: a variable's default, bounds, pattern (each entry of a list), what it wants,",
        "# the variable it is required with, its secret's id, and its Terraform name when deploy.env sets it",
        "# (setting: the function's; deployment: the deployment's own).",
        f"RUN_BUDGET_MARGIN_SECONDS={RUN_BUDGET_MARGIN_SECONDS}",
        f"ALERT_SLACK_MINUTES={ALERT_SLACK_MINUTES}",
        f"ALERT_WINDOW_CAP_MINUTES={ALERT_WINDOW_CAP_MINUTES}",
        f"ALERT_WAIT_CAP_MINUTES={ALERT_WAIT_CAP_MINUTES}",
        f"outcomes.need_a_person={' '.join(NEEDS_A_PERSON)}",
        f"outcomes.good={' '.join(GOOD_RUNS)}",
        *(f"suffix.{key}={suffix}" for key, suffix in RESOURCE_SUFFIXES.items()),
    ]
    for variable in (*VARIABLES, *DEPLOYMENT):
        if variable.deployed is Deployed.LOCAL:
            continue
        lines += [f"{variable.name}.{fact}={value}" for fact, value in _facts(variable)]
    return "\n".join(lines) + "\n"


def _facts(variable: Variable) -> list[tuple[str, str]]:
    facts = {
        "default": variable.default,
        "kind": variable.kind.name.lower(),
        "min": _text(variable.minimum),
        "max": _text(variable.maximum),
        "pattern": variable.pattern,
        "wants": variable.wants if variable.wants != "set" else None,
        "entries": _text(variable.max_entries),
        "required": "true" if variable.required else None,
        "required_with": variable.required_with,
        "secret": variable.secret_id if variable.secret else None,
        "setting": variable.terraform_name if variable.deployed is Deployed.SETTING else None,
        "deployment": variable.terraform_name if variable.deployed is Deployed.DEPLOYMENT else None,
    }
    return [(fact, value) for fact, value in facts.items() if value is not None]


def _text(number: int | None) -> str | None:
    return None if number is None else str(number)


def terraform_settings() -> str:
    """terraform/function_settings.tf: the function's settings as Terraform variables, and their map."""
    header = f"# {GENERATED}\n# Unset (null or empty): the function's own default applies.\n"
    width = max(len(v.name) for v in SETTINGS)
    pairs = "".join(f"    {v.name:<{width}} = {_terraform_value(v)}\n" for v in SETTINGS)
    settings_map = (
        "locals {\n  # The function's settings by the variable the function reads.\n"
        f"  function_settings = {{\n{pairs}  }}\n}}\n"
    )
    return "\n".join([header, *(_terraform_variable(variable) for variable in SETTINGS), settings_map])


def _terraform_variable(variable: Variable) -> str:
    name = variable.terraform_name
    kind = variable.kind.value
    default = "[]" if variable.kind is Kind.LIST else "null"
    lines = [
        f'variable "{name}" {{',
        f"  description = {_hcl_string(f'{variable.doc} ({variable.name})')}",
        f"  type        = {kind}",
    ]
    if not variable.required:
        lines.append(f"  default     = {default}")
    condition = _terraform_condition(variable)
    if condition:
        message = f"{name} must be {variable.wants}."
        if variable.required_with:
            other = BY_NAME[variable.required_with].terraform_name
            message = f"{name} must be set when {other} is, as {variable.wants}."
        lines += [
            "  validation {",
            f"    condition     = {condition}",
            f"    error_message = {_hcl_string(message)}",
            "  }",
        ]
    return "\n".join([*lines, "}"]) + "\n"


def _terraform_condition(variable: Variable) -> str | None:
    var = f"var.{variable.terraform_name}"
    facts = f'local.facts["{variable.name}'
    if variable.kind is Kind.LIST:
        checks = [f'alltrue([for item in {var} : can(regex({facts}.pattern"], item))])']
        if variable.max_entries is not None:
            checks.append(f'length({var}) <= tonumber({facts}.entries"])')
        return " && ".join(checks)
    if variable.kind is Kind.WHOLE:
        check = (
            f'{var} >= tonumber({facts}.min"]) && {var} <= tonumber({facts}.max"]) && floor({var}) == {var}'
        )
    elif variable.pattern is not None:
        check = f'can(regex({facts}.pattern"], {var}))'
    else:
        return None
    if variable.required:
        return check
    when_unset = "true"
    if variable.required_with:
        when_unset = f"length(var.{BY_NAME[variable.required_with].terraform_name}) == 0"
    return f"{var} == null ? {when_unset} : {check}"


def _terraform_value(variable: Variable) -> str:
    var = f"var.{variable.terraform_name}"
    if variable.kind is Kind.LIST:
        return f'join(",", {var})'
    if variable.kind is Kind.TEXT:
        return var
    return f"{var} == null ? null : tostring({var})"


def _hcl_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "$${").replace("%{", "%%{")
    return f'"{escaped}"'


def configuration_doc() -> str:
    """docs/configuration.md: every variable, by section."""
    parts = [
        "# Configuration\n",
        f"<!-- {GENERATED} -->\n",
        "The function reads its environment; an empty variable counts as unset. Every problem found is",
        "reported at once, each naming its variable and never its value; nothing is sent until the",
        "configuration is fixed. `python -m notifier check --env-file deploy.env` prints each problem.\n",
        "The four secrets hold the value itself (local runs) or a Secret Manager version name,",
        "`projects/P/secrets/NAME/versions/V`, which the deployments set. *Deployed* says how a",
        "deployment gives the variable: as a setting of `deploy.env` and Terraform (Terraform names it",
        "in brackets), set by the deployment itself, or not at all.\n",
    ]
    sections = dict.fromkeys(variable.section for variable in (*VARIABLES, *DEPLOYMENT))
    for section in sections:
        parts += [f"## {section}\n", "| variable | default | valid values | deployed | what it does |"]
        parts.append("|---|---|---|---|---|")
        parts += [_doc_row(v) for v in (*VARIABLES, *DEPLOYMENT) if v.section == section]
        parts.append("")
    return "\n".join(parts)


def _doc_row(variable: Variable) -> str:
    default = f"`{variable.default}`" if variable.default is not None else ""
    if variable.required:
        default = "required"
    elif variable.required_with:
        default = f"required with `{variable.required_with}`"
    wants = variable.wants if variable.wants != "set" else ""
    if variable.secret:
        wants = "a secret: the value, or a Secret Manager version name"
    elif variable.max_entries:
        wants = f"comma-separated, at most {variable.max_entries}: each {wants}"
    deployed = variable.deployed.value
    if variable.deployed is Deployed.SETTING:
        deployed = f"setting (`{variable.terraform_name}`)"
    elif variable.deployed is Deployed.DEPLOYMENT:
        deployed = f"deploy.env (`{variable.terraform_name}`)"
    cells = (f"`{variable.name}`", default, wants, deployed, variable.doc)
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


ROOT = Path(__file__).resolve().parent.parent
WRITTEN = {
    "deploy/variables.env": deployment_facts,
    "terraform/function_settings.tf": terraform_settings,
    "docs/configuration.md": configuration_doc,
}


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        for path, text in WRITTEN.items():
            (ROOT / path).write_text(text())
    else:
        sys.exit("usage: python -m notifier.variables --write  (writes " + ", ".join(WRITTEN) + ")")
