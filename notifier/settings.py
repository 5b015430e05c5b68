"""Settings read from a mapping of environment variables (``os.environ`` in production).

Every error names the variable at fault and says what was expected. Errors never repeat the
value: a secret pasted into the wrong variable must not reach a log.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from notifier.errors import ConfigError
from notifier.variables import (
    E164_PATTERN,
    MAX_EXTRA_PROPERTIES,
    MAX_LOOKBACK_MINUTES,
    default,
)

MIXPANEL_HOSTS = {
    "us": "https://mixpanel.com",
    "eu": "https://eu.mixpanel.com",
    "in": "https://in.mixpanel.com",
}

# Deliberately strict: what SendGrid accepts as a plain mailbox, without quoting or comments.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
# `Name <addr>`, the name optionally in double quotes (RFC 5322's quoted-string, as mail clients write it).
_NAMED_EMAIL = re.compile(r'^\s*(?:"(?P<quoted>[^"\\]*)"|(?P<name>[^<>"]*?))\s*<(?P<addr>[^<>]+)>\s*$')
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
)
_E164 = re.compile(E164_PATTERN)
_MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_FIRESTORE_DATABASE = re.compile(r"^(\(default\)|[a-z][a-z0-9-]{2,61}[a-z0-9])$")
_PROPERTY_NAME = re.compile(r"^[^\x00-\x1f\x7f,]{1,255}$")
# The variable that turns each channel on.
CHANNEL_VARIABLES = {"email": "EMAIL_TO", "sms": "SMS_TO", "slack": "SLACK_WEBHOOK_URL"}
MAX_EMAIL_RECIPIENTS = 1000
MAX_SMS_RECIPIENTS = 100
MAX_LABEL_CHARS = 60
SECRET_VERSION_NAME = re.compile(r"^projects/[^/\s]+/secrets/[^/\s]+/versions/[^/\s]+$")
STATE_STORES = ("memory", "firestore")
# The digest's own fields: asking for them again as extra columns would only repeat them.
_BUILT_IN_PROPERTIES = frozenset({"$email", "$name", "$first_name", "$last_name", "$created"})


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
    """What the digest shows: the project's name, links, extra columns, who is left out."""

    # No defaults here: notifier/variables.py holds them, and from_environ passes every field.
    project_label: str
    profile_url_template: str | None  # holds {distinct_id}
    extra_properties: tuple[str, ...]
    exclude_email_domains: tuple[str, ...]
    notify_when_empty: bool
    email_row_limit: int


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
    email: EmailSettings | None
    sms: SmsSettings | None
    slack: SlackSettings | None
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

    @property
    def notify_when_empty(self) -> bool:
        """Whether an empty window still sends a "no new users" digest."""
        return self.digest.notify_when_empty

    @property
    def email_row_limit(self) -> int:
        """Rows listed in the email before the rest go to the attachment only."""
        return self.digest.email_row_limit

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate settings; raise ConfigError naming the first bad variable."""
        env = _Env(environ)
        region = env.choice("MIXPANEL_REGION", tuple(MIXPANEL_HOSTS))
        project_id = env.integer("MIXPANEL_PROJECT_ID", minimum=1, required=True)
        return cls(
            mixpanel_project_id=project_id,
            mixpanel_region=region,
            mixpanel_service_account=env.header_text("MIXPANEL_SERVICE_ACCOUNT"),
            mixpanel_secret=env.secret("MIXPANEL_SECRET"),
            email=_email_settings(env),
            sms=_sms_settings(env),
            slack=_slack_settings(env),
            timezone=env.timezone("TIMEZONE"),
            default_lookback_minutes=env.integer(
                "DEFAULT_LOOKBACK_MINUTES", minimum=1, maximum=MAX_LOOKBACK_MINUTES
            ),
            digest=DigestSettings(
                project_label=env.label("PROJECT_LABEL") or f"Mixpanel project {project_id}",
                profile_url_template=env.url_template("PROFILE_URL_TEMPLATE"),
                extra_properties=env.property_names("EXTRA_PROPERTIES"),
                exclude_email_domains=env.listed_domains("EXCLUDE_EMAIL_DOMAINS"),
                notify_when_empty=env.boolean("NOTIFY_WHEN_EMPTY"),
                email_row_limit=env.integer("EMAIL_ROW_LIMIT", minimum=1, maximum=10000),
            ),
            state=StateSettings(
                store=env.choice("STATE_STORE", STATE_STORES),
                firestore_database=env.matching(
                    "FIRESTORE_DATABASE", _FIRESTORE_DATABASE, "(default) or a database id like notifierator"
                ),
                max_catch_up_minutes=env.integer(
                    "MAX_CATCH_UP_MINUTES", minimum=0, maximum=MAX_LOOKBACK_MINUTES
                ),
                late_arrival_minutes=env.integer("LATE_ARRIVAL_MINUTES", minimum=0, maximum=1440),
            ),
            run_budget_seconds=env.integer("RUN_BUDGET_SECONDS", minimum=1, maximum=3600),
            max_message_age_minutes=env.integer("MAX_MESSAGE_AGE_MINUTES", minimum=1, maximum=10080),
            endpoints=Endpoints(
                mixpanel=env.url("MIXPANEL_API_URL") or MIXPANEL_HOSTS[region],
                sendgrid=env.url("SENDGRID_API_URL"),
                twilio=env.url("TWILIO_API_URL"),
                secret_manager=env.url("SECRET_MANAGER_API_URL"),
            ),
        )


def _email_settings(env: _Env) -> EmailSettings | None:
    if env.optional("EMAIL_TO") is None:
        return None
    # Mailbox names are case-insensitive in practice: CEO@Example.com and ceo@example.com are one inbox.
    to = env.listed("EMAIL_TO", _is_email, "an email address like ops@example.com", key=str.lower)
    if len(to) > MAX_EMAIL_RECIPIENTS:
        # One SendGrid request carries at most 1,000 personalizations.
        raise ConfigError(f"has {len(to)} addresses; at most {MAX_EMAIL_RECIPIENTS}", variable="EMAIL_TO")
    return EmailSettings(to=to, sender=env.sender("EMAIL_FROM"), api_key=env.secret("SENDGRID_API_KEY"))


def _sms_settings(env: _Env) -> SmsSettings | None:
    if env.optional("SMS_TO") is None:
        return None
    to = env.listed("SMS_TO", _E164.match, "an E.164 number like +14155550100")
    if len(to) > MAX_SMS_RECIPIENTS:
        # One message per number, one after another, inside one run's budget.
        raise ConfigError(f"has {len(to)} numbers; at most {MAX_SMS_RECIPIENTS}", variable="SMS_TO")
    sender = env.required("SMS_FROM")
    if not (_E164.match(sender) or _MESSAGING_SERVICE_SID.match(sender)):
        raise ConfigError(
            "must be an E.164 number like +14155550100 or a Messaging Service SID (MG + 32 hex)",
            variable="SMS_FROM",
        )
    account_sid = env.required("TWILIO_ACCOUNT_SID")
    if not _ACCOUNT_SID.match(account_sid):
        raise ConfigError("must be a Twilio account SID: AC + 32 hex", variable="TWILIO_ACCOUNT_SID")
    return SmsSettings(
        to=to, sender=sender, account_sid=account_sid, auth_token=env.secret("TWILIO_AUTH_TOKEN")
    )


def _slack_settings(env: _Env) -> SlackSettings | None:
    ref = env.optional("SLACK_WEBHOOK_URL")
    if ref is None:
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


def _is_email(text: str) -> bool:
    return len(text) <= 254 and bool(_EMAIL.match(text))


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback IP addresses, where plain http cannot be intercepted."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Env:
    """Typed reads of one environment mapping; empty strings count as unset; defaults from variables."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def _or_default(self, name: str) -> str:
        return self.optional(name) or default(name)

    def header_text(self, name: str) -> str | None:
        """A value that travels in an HTTP header (Basic auth): printable ASCII, no spaces."""
        value = self.optional(name)
        if value is not None and not (value.isascii() and value.isprintable() and " " not in value):
            raise ConfigError(
                "must be printable ASCII without spaces (it travels in a header)", variable=name
            )
        return value

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise ConfigError("is required but not set", variable=name)
        return value

    def secret(self, name: str) -> SecretRef:
        return SecretRef(variable=name, reference=self.required(name))

    def integer(self, name: str, *, minimum: int, maximum: int | None = None, required: bool = False) -> int:
        raw = self.required(name) if required else self._or_default(name)
        if not re.fullmatch(r"[0-9]{1,9}", raw):
            raise ConfigError("must be a whole number", variable=name)
        value = int(raw)
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ConfigError(f"must be {bound}; got {value}", variable=name)
        return value

    def boolean(self, name: str) -> bool:
        lowered = self._or_default(name).lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ConfigError("must be true or false", variable=name)

    def choice(self, name: str, options: tuple[str, ...]) -> str:
        value = self._or_default(name).lower()
        if value not in options:
            raise ConfigError(f"must be one of {', '.join(options)}", variable=name)
        return value

    def matching(self, name: str, pattern: re.Pattern[str], expected: str) -> str:
        value = self._or_default(name)
        if not pattern.match(value):
            raise ConfigError(f"must be {expected}", variable=name)
        return value

    def timezone(self, name: str) -> ZoneInfo:
        value = self._or_default(name)
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError("must be an IANA time zone like Europe/Berlin", variable=name) from None

    def listed(
        self, name: str, valid: Callable[[str], object], expected: str, *, key: Callable[[str], str] = str
    ) -> tuple[str, ...]:
        items = tuple(item.strip() for item in self.required(name).split(","))
        for position, item in enumerate(items, start=1):
            if not item:
                raise ConfigError("has an empty entry (check the commas)", variable=name)
            if not valid(item):
                raise ConfigError(f"entry {position} of {len(items)} is not {expected}", variable=name)
        # Repeats dropped, first spelling kept: `key` says when two entries are the same recipient.
        first: dict[str, str] = {}
        for item in items:
            first.setdefault(key(item), item)
        return tuple(first.values())

    def sender(self, name: str) -> Sender:
        raw = self.required(name)
        named = _NAMED_EMAIL.match(raw)
        if named:
            address, display = named["addr"].strip(), (named["quoted"] or named["name"] or "").strip() or None
        else:
            address, display = raw, None
        if not _is_email(address) or (display is not None and _has_control(display)):
            raise ConfigError(
                "must be an address like alerts@example.com or 'Name <alerts@example.com>'",
                variable=name,
            )
        return Sender(address=address, name=display)

    def label(self, name: str) -> str | None:
        raw = self.optional(name)
        if raw is None:
            return None
        if len(raw) > MAX_LABEL_CHARS or _has_control(raw):
            raise ConfigError(
                f"must be one line of at most {MAX_LABEL_CHARS} characters, like Acme iOS", variable=name
            )
        return " ".join(raw.split())

    def url_template(self, name: str) -> str | None:
        raw = self.optional(name)
        if raw is None:
            return None
        if raw.count("{distinct_id}") != 1 or _has_control(raw) or " " in raw:
            raise ConfigError(
                "must be a URL holding {distinct_id} once, like https://admin.example.com/users/{distinct_id}",
                variable=name,
            )
        self._check_url(name, raw.replace("{distinct_id}", "x"), bare=False)
        return raw

    def property_names(self, name: str) -> tuple[str, ...]:
        raw = self.optional(name)
        if raw is None:
            return ()
        names = tuple(dict.fromkeys(item.strip() for item in raw.split(",")))
        if len(names) > MAX_EXTRA_PROPERTIES:
            raise ConfigError(f"lists {len(names)} properties; at most {MAX_EXTRA_PROPERTIES}", variable=name)
        for position, item in enumerate(names, start=1):
            if not _PROPERTY_NAME.match(item):
                raise ConfigError(
                    f"entry {position} is not a Mixpanel property name (like utm_source or plan)",
                    variable=name,
                )
            if item in _BUILT_IN_PROPERTIES:
                raise ConfigError(f"entry {position} is already in every digest", variable=name)
        return names

    def listed_domains(self, name: str) -> tuple[str, ...]:
        if self.optional(name) is None:
            return ()
        domains = self.listed(name, lambda d: _DOMAIN.match(d.lower().lstrip("@")), "a domain like acme.com")
        return tuple(dict.fromkeys(domain.lower().lstrip("@") for domain in domains))

    def url(self, name: str) -> str | None:
        raw = self.optional(name)
        if raw is None:
            return None
        self._check_url(name, raw, bare=True)
        return raw.rstrip("/")

    def _check_url(self, name: str, raw: str, *, bare: bool) -> None:
        try:
            parts = urlsplit(raw)
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:
            raise ConfigError("is not a valid URL (check the host and port)", variable=name) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("must be an http(s) URL like https://api.example.com", variable=name)
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ConfigError(
                "plain http is accepted only for loopback hosts (127.0.0.1, localhost); use https",
                variable=name,
            )
        if parts.username or parts.password or (bare and (parts.query or parts.fragment)):
            raise ConfigError("must be a bare base URL without credentials or query", variable=name)


def _has_control(text: str) -> bool:
    return any(ord(char) < 32 or ord(char) == 127 for char in text)
