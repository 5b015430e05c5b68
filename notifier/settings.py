"""Settings read from a mapping of environment variables (``os.environ`` in production).

Defaults, bounds and patterns come from `notifier.variables`. Every problem is collected and raised
at once, as one ConfigError, each naming its variable and saying what was expected. Errors never
repeat the value: a secret pasted into the wrong variable must not reach a log.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from notifier.errors import ConfigError
from notifier.filter_expression import why_unbalanced
from notifier.quiet_hours import QuietHours
from notifier.variables import (
    BY_NAME,
    DIGEST_PROPERTIES,
    MESSAGING_SERVICE_SID_PATTERN,
    Variable,
    has_control,
)

MIXPANEL_HOSTS = {
    "us": "https://mixpanel.com",
    "eu": "https://eu.mixpanel.com",
    "in": "https://in.mixpanel.com",
}

# `Name <addr>`, the name optionally in double quotes (RFC 5322's quoted-string, as mail clients write it).
_NAMED_EMAIL = re.compile(r'^\s*(?:"(?P<quoted>[^"\\]*)"|(?P<name>[^<>"]*?))\s*<(?P<addr>[^<>]+)>\s*$')
_MESSAGING_SERVICE_SID = re.compile(MESSAGING_SERVICE_SID_PATTERN)
# The variable that turns each channel on.
MAX_LABEL_CHARS = 60
SECRET_VERSION_NAME = re.compile(r"^projects/[^/\s]+/secrets/[^/\s]+/versions/[^/\s]+$")
# The digest's own fields: asking for them again as extra columns would only repeat them.
_BUILT_IN_PROPERTIES = frozenset({*DIGEST_PROPERTIES, BY_NAME["CREATED_PROPERTY"].default})
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")

T = TypeVar("T")
_ORDER = {name: position for position, name in enumerate(BY_NAME)}


@dataclass(frozen=True)
class SecretRef:
    """A secret as configured: the value itself, or a Secret Manager version name.

    Its repr never shows a literal value, so settings can be printed and logged safely.
    """

    variable: str
    reference: str

    @property
    def is_version_name(self) -> bool:
        """True when the reference names a Secret Manager version rather than holding the value."""
        return bool(SECRET_VERSION_NAME.match(self.reference))

    def __repr__(self) -> str:
        shown = self.reference if self.is_version_name else "<value hidden>"
        return f"SecretRef({self.variable}, {shown})"

    __str__ = __repr__


@dataclass(frozen=True)
class Sender:
    """An email sender: address and optional display name."""

    address: str
    name: str | None = None


@dataclass(frozen=True)
class EmailSettings:
    """The email channel: SendGrid key, sender and recipients."""

    to: tuple[str, ...]
    sender: Sender
    api_key: SecretRef


@dataclass(frozen=True)
class SmsSettings:
    """The SMS channel: Twilio account, sender and recipients."""

    to: tuple[str, ...]
    sender: str  # E.164 number or Messaging Service SID
    account_sid: str
    auth_token: SecretRef

    @property
    def uses_messaging_service(self) -> bool:
        """True when the sender is a Messaging Service SID (``MG...``) rather than a number."""
        return bool(_MESSAGING_SERVICE_SID.match(self.sender))


@dataclass(frozen=True)
class SlackSettings:
    """The Slack channel: one incoming webhook, itself a secret."""

    webhook_url: SecretRef


@dataclass(frozen=True)
class Endpoints:
    """Base URLs of the services; overridden for local runs and tests."""

    mixpanel: str
    sendgrid: str | None = None  # None: the library's default
    twilio: str | None = None
    secret_manager: str | None = None


@dataclass(frozen=True)
class DigestSettings:
    """What the digest shows: the project's name, links, extra columns, who is left out, the summaries."""

    # No defaults here: notifier/variables.py holds them, and from_environ passes every field.
    project_label: str
    profile_url_template: str | None  # holds {distinct_id}
    extra_properties: tuple[str, ...]
    exclude_email_domains: tuple[str, ...]
    notify_when_empty: bool
    email_row_limit: int
    breakdown_property: str | None  # counted per value at the top of the digest
    company_rollup: bool  # work addresses counted by company


@dataclass(frozen=True)
class StateSettings:
    """Where the run history lives and how far it reaches back."""

    store: str  # memory | firestore
    firestore_database: str
    max_catch_up_minutes: int
    late_arrival_minutes: int


@dataclass(frozen=True)
class Settings:
    """Everything a run needs from its environment, validated."""

    mixpanel_project_id: int
    mixpanel_region: str
    mixpanel_service_account: str | None
    mixpanel_secret: SecretRef
    created_property: str  # the profile property that dates a sign-up
    mixpanel_filter: str | None  # an Engage `where` expression ANDed with the window
    mixpanel_page_concurrency: int  # pages fetched at once after the first
    email: EmailSettings | None
    sms: SmsSettings | None
    slack: SlackSettings | None
    sms_quiet_hours: QuietHours | None  # in `timezone`
    timezone: ZoneInfo
    default_lookback_minutes: int
    digest: DigestSettings
    state: StateSettings
    run_budget_seconds: float
    max_message_age_minutes: int
    endpoints: Endpoints

    def require_a_channel(self) -> frozenset[str]:
        """The configured channels; a ConfigError when there is none, since nobody could be told."""
        if not self.configured_channels:
            raise ConfigError(
                "no channel is configured: set EMAIL_TO, SMS_TO or SLACK_WEBHOOK_URL", variable="EMAIL_TO"
            )
        return self.configured_channels

    @property
    def configured_channels(self) -> frozenset[str]:
        """The channels whose recipients are set."""
        channels = (("email", self.email), ("sms", self.sms), ("slack", self.slack))
        return frozenset(name for name, on in channels if on is not None)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate settings; one ConfigError carries every problem found."""
        env = _Env(environ)
        region = env.text("MIXPANEL_REGION", str, lower=True) or "us"
        project_id = env.text("MIXPANEL_PROJECT_ID", int) or 0
        settings = cls(
            mixpanel_project_id=project_id,
            mixpanel_region=region,
            mixpanel_service_account=env.text("MIXPANEL_SERVICE_ACCOUNT", _header_text),
            mixpanel_secret=env.secret("MIXPANEL_SECRET"),
            created_property=env.text("CREATED_PROPERTY", _property_name) or "",
            mixpanel_filter=env.text("MIXPANEL_FILTER", _filter),
            mixpanel_page_concurrency=env.whole("MIXPANEL_PAGE_CONCURRENCY"),
            email=_email_settings(env),
            sms=_sms_settings(env),
            slack=env.attempt(lambda: _slack_settings(env)),
            sms_quiet_hours=env.text("SMS_QUIET_HOURS", _quiet_hours),
            timezone=env.text("TIMEZONE", _zone) or ZoneInfo("UTC"),
            default_lookback_minutes=env.whole("DEFAULT_LOOKBACK_MINUTES"),
            digest=_digest_settings(env, project_id),
            state=StateSettings(
                store=env.text("STATE_STORE", str, lower=True) or "",
                firestore_database=env.text("FIRESTORE_DATABASE", str) or "",
                max_catch_up_minutes=env.whole("MAX_CATCH_UP_MINUTES"),
                late_arrival_minutes=env.whole("LATE_ARRIVAL_MINUTES"),
            ),
            run_budget_seconds=env.whole("RUN_BUDGET_SECONDS"),
            max_message_age_minutes=env.whole("MAX_MESSAGE_AGE_MINUTES"),
            endpoints=Endpoints(
                mixpanel=env.text("MIXPANEL_API_URL", _base_url) or MIXPANEL_HOSTS.get(region, ""),
                sendgrid=env.text("SENDGRID_API_URL", _base_url),
                twilio=env.text("TWILIO_API_URL", _base_url),
                secret_manager=env.text("SECRET_MANAGER_API_URL", _base_url),
            ),
        )
        env.raise_problems()
        return settings


def _digest_settings(env: _Env, project_id: int) -> DigestSettings:
    return DigestSettings(
        project_label=env.text("PROJECT_LABEL", _label) or f"Mixpanel project {project_id}",
        profile_url_template=env.text("PROFILE_URL_TEMPLATE", _url_template),
        extra_properties=env.listed("EXTRA_PROPERTIES", _extra_property),
        exclude_email_domains=env.listed("EXCLUDE_EMAIL_DOMAINS", lambda domain: domain.lower().lstrip("@")),
        notify_when_empty=env.boolean("NOTIFY_WHEN_EMPTY"),
        email_row_limit=env.whole("EMAIL_ROW_LIMIT"),
        breakdown_property=env.text("BREAKDOWN_PROPERTY", _property_name),
        company_rollup=env.boolean("COMPANY_ROLLUP"),
    )


def _email_settings(env: _Env) -> EmailSettings | None:
    if env.optional("EMAIL_TO") is None:
        return None
    # Mailbox names are case-insensitive in practice: CEO@Example.com and ceo@example.com are one inbox.
    to = env.listed("EMAIL_TO", _email_address, key=str.lower)
    sender = env.attempt(lambda: _sender(env.required("EMAIL_FROM")))
    return EmailSettings(to=to, sender=sender or Sender(""), api_key=env.secret("SENDGRID_API_KEY"))


def _sms_settings(env: _Env) -> SmsSettings | None:
    if env.optional("SMS_TO") is None:
        return None
    return SmsSettings(
        to=env.listed("SMS_TO"),
        sender=env.required_text("SMS_FROM"),
        account_sid=env.required_text("TWILIO_ACCOUNT_SID"),
        auth_token=env.secret("TWILIO_AUTH_TOKEN"),
    )


def _slack_settings(env: _Env) -> SlackSettings | None:
    if env.optional("SLACK_WEBHOOK_URL") is None:
        return None
    secret = env.secret("SLACK_WEBHOOK_URL")
    if not secret.is_version_name:
        check_slack_webhook_url(secret.reference)  # a version name is checked once its value is read
    return SlackSettings(webhook_url=secret)


SLACK_WEBHOOK_HOSTS = ("hooks.slack.com", "hooks.slack-gov.com")
_SLACK_WEBHOOK_PATH = re.compile(r"^/(services|workflows|triggers)/[A-Za-z0-9/_-]+$")


def check_slack_webhook_url(url: str) -> str:
    """The webhook URL if it is Slack's (https, a Slack webhook host) or loopback http; else ConfigError.

    A mistyped variable must not send the digest to another host; the error never shows the URL.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        port, parts = -1, urlsplit("")
    host = (parts.hostname or "").lower()
    local = parts.scheme == "http" and is_loopback_host(host)
    slack = parts.scheme == "https" and host in SLACK_WEBHOOK_HOSTS and port in (None, 443)
    if not (local or slack) or parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError(
            "must be a Slack incoming-webhook URL, https://hooks.slack.com/services/... "
            "(plain http only for a loopback host in local runs)",
            variable="SLACK_WEBHOOK_URL",
        )
    if slack and not _SLACK_WEBHOOK_PATH.match(parts.path):
        raise ConfigError(
            "is on Slack's host but is not a webhook path (/services/T.../B.../...)",
            variable="SLACK_WEBHOOK_URL",
        )
    return url


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback IP addresses, where plain http cannot be intercepted."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Invalid(ValueError):
    """A value a parser refuses; `wants` overrides the table's words for what was expected."""

    def __init__(self, wants: str | None = None) -> None:
        super().__init__(wants)
        self.wants = wants


class _Env:
    """Typed reads of one environment mapping, checked against the variables' table.

    Empty strings count as unset, and unset takes the table's default. A read that fails records its
    problem and returns a stand-in, so every variable is read; `raise_problems` raises them all.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._problems: list[ConfigError] = []

    def raise_problems(self) -> None:
        """Raise one ConfigError carrying every problem recorded, if there is any."""
        if self._problems:
            # In the table's order, as docs/configuration.md lists them.
            raise ConfigError.every(sorted(self._problems, key=lambda problem: _ORDER[problem.variable]))

    def attempt(self, read: Callable[[], T | None]) -> T | None:
        """`read()`, or None with its problem recorded."""
        try:
            return read()
        except ConfigError as error:
            self._problems.append(error)
            return None

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def _raw(self, name: str) -> str | None:
        variable = BY_NAME[name]
        value = self.optional(name) or variable.default
        if value is None and variable.required:
            raise ConfigError("is required but not set", variable=name)
        return value

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            other = BY_NAME[name].required_with
            reason = f"; it is required when {other} is set" if other else ""
            raise ConfigError(f"is not set{reason}", variable=name)
        return _checked(BY_NAME[name], value, str)

    def text(self, name: str, parse: Callable[[str], T], *, lower: bool = False) -> T | None:
        """The value checked against its pattern and parsed; None when unset without a default."""
        return self.attempt(lambda: self._text(name, parse, lower))

    def _text(self, name: str, parse: Callable[[str], T], lower: bool) -> T | None:
        raw = self._raw(name)
        if raw is None:
            return None
        return _checked(BY_NAME[name], raw.lower() if lower else raw, parse)

    def required_text(self, name: str) -> str:
        return self.attempt(lambda: self.required(name)) or ""

    def whole(self, name: str) -> int:
        return self.attempt(lambda: self._whole(name)) or 0

    def _whole(self, name: str) -> int:
        variable, raw = BY_NAME[name], self._raw(name) or ""
        whole = re.fullmatch(r"[0-9]{1,9}", raw) is not None
        if not (whole and (variable.minimum or 0) <= int(raw) <= (variable.maximum or int(raw))):
            raise ConfigError(f"must be {variable.wants}", variable=name)
        return int(raw)

    def boolean(self, name: str) -> bool:
        return bool(self.attempt(lambda: self._boolean(name)))

    def _boolean(self, name: str) -> bool:
        lowered = (self._raw(name) or "").lower()
        if lowered not in (*_TRUE, *_FALSE):
            raise ConfigError("must be true or false", variable=name)
        return lowered in _TRUE

    def secret(self, name: str) -> SecretRef:
        reference = self.attempt(lambda: self._raw(name) if BY_NAME[name].required else self.required(name))
        # An empty stand-in only while a problem is recorded: raise_problems then raises.
        return SecretRef(variable=name, reference=reference or "")

    def listed(
        self, name: str, parse: Callable[[str], str] = str, *, key: Callable[[str], str] = str
    ) -> tuple[str, ...]:
        """Comma-separated entries, each checked and parsed; repeats dropped, the first spelling kept."""
        return self.attempt(lambda: self._listed(name, parse, key)) or ()

    def _listed(self, name: str, parse: Callable[[str], str], key: Callable[[str], str]) -> tuple[str, ...]:
        raw, variable = self.optional(name), BY_NAME[name]
        if raw is None:
            return ()
        items = [item.strip() for item in raw.split(",")]
        if not all(items):
            raise ConfigError("has an empty entry (check the commas)", variable=name)
        if variable.max_entries is not None and len(items) > variable.max_entries:
            raise ConfigError(f"has {len(items)} entries; at most {variable.max_entries}", variable=name)
        first: dict[str, str] = {}
        for position, item in enumerate(items, start=1):
            try:
                parsed = _checked(variable, item, parse)
            except ConfigError:
                raise ConfigError(
                    f"entry {position} of {len(items)} is not {variable.wants}", variable=name
                ) from None
            first.setdefault(key(parsed), parsed)
        return tuple(first.values())


def _checked(variable: Variable, raw: str, parse: Callable[[str], T]) -> T:
    """`raw` parsed, once it matches the variable's pattern; ConfigError names the variable, not the value."""
    wants: str | None = variable.wants
    try:
        if variable.pattern is not None and not re.search(variable.pattern, raw):
            raise _Invalid
        return parse(raw)
    except (_Invalid, ValueError) as error:
        wants = error.wants if isinstance(error, _Invalid) and error.wants else wants
        raise ConfigError(f"must be {wants}", variable=variable.name) from None


def _email_address(text: str) -> str:
    try:
        validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        raise _Invalid from None
    return text


def _sender(raw: str) -> Sender:
    named = _NAMED_EMAIL.match(raw)
    if named:
        address, display = named["addr"].strip(), (named["quoted"] or named["name"] or "").strip() or None
    else:
        address, display = raw, None
    if display is not None and has_control(display):
        raise ConfigError(f"must be {BY_NAME['EMAIL_FROM'].wants}", variable="EMAIL_FROM")
    try:
        _email_address(address)
    except _Invalid:
        raise ConfigError(f"must be {BY_NAME['EMAIL_FROM'].wants}", variable="EMAIL_FROM") from None
    return Sender(address=address, name=display)


def _header_text(value: str) -> str:
    """A value that travels in an HTTP header (Basic auth): printable ASCII, no spaces."""
    if not (value.isascii() and value.isprintable() and " " not in value):
        raise _Invalid
    return value


def _property_name(value: str) -> str:
    if has_control(value):
        raise _Invalid
    return value


def _extra_property(value: str) -> str:
    if value in _BUILT_IN_PROPERTIES:
        raise _Invalid("a property the digest does not already show")
    return _property_name(value)


def _filter(value: str) -> str:
    problem = why_unbalanced(value)
    if problem is not None:
        raise _Invalid(f"an expression that stands on its own ({problem})")
    return value


def _quiet_hours(value: str) -> QuietHours:
    start, end = (dt.time.fromisoformat(part) for part in value.split("-"))
    if start == end:
        raise _Invalid("two different times like 22:00-07:00 (equal ends would hold every text)")
    return QuietHours(start=start, end=end)


def _zone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Invalid from None


def _label(raw: str) -> str:
    if len(raw) > MAX_LABEL_CHARS or has_control(raw):
        raise _Invalid
    return " ".join(raw.split())


def _url_template(raw: str) -> str:
    if raw.count("{distinct_id}") != 1 or has_control(raw) or " " in raw:
        raise _Invalid
    _check_url(raw.replace("{distinct_id}", "x"), bare=False)
    return raw


def _base_url(raw: str) -> str:
    _check_url(raw, bare=True)
    return raw.rstrip("/")


def _check_url(raw: str, *, bare: bool) -> None:
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise _Invalid("a valid URL (check the host and port)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Invalid("an http(s) URL like https://api.example.com")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise _Invalid("https: plain http is accepted only for loopback hosts (127.0.0.1, localhost)")
    if parts.username or parts.password or (bare and (parts.query or parts.fragment)):
        raise _Invalid("a bare base URL without credentials or query")
