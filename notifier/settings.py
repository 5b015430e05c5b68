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
from notifier.trigger import MAX_LOOKBACK_MINUTES

MIXPANEL_HOSTS = {
    "us": "https://mixpanel.com",
    "eu": "https://eu.mixpanel.com",
    "in": "https://in.mixpanel.com",
}

# Deliberately strict: what SendGrid accepts as a plain mailbox, without quoting or comments.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_NAMED_EMAIL = re.compile(r"^\s*(?P<name>[^<>\"]*?)\s*<(?P<addr>[^<>]+)>\s*$")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
# Every variable the function reads; deployments set all but the local-run URL overrides.
URL_OVERRIDES = ("MIXPANEL_API_URL", "SENDGRID_API_URL", "TWILIO_API_URL", "SECRET_MANAGER_API_URL")
VARIABLES = (
    "MIXPANEL_PROJECT_ID",
    "MIXPANEL_REGION",
    "MIXPANEL_SERVICE_ACCOUNT",
    "MIXPANEL_SECRET",
    "EMAIL_TO",
    "EMAIL_FROM",
    "SENDGRID_API_KEY",
    "SMS_TO",
    "SMS_FROM",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TIMEZONE",
    "DEFAULT_LOOKBACK_MINUTES",
    "NOTIFY_WHEN_EMPTY",
    "EMAIL_ROW_LIMIT",
    "RUN_BUDGET_SECONDS",
    "MAX_MESSAGE_AGE_MINUTES",
    *URL_OVERRIDES,
)
MAX_EMAIL_RECIPIENTS = 1000
SECRET_VARIABLES = ("MIXPANEL_SECRET", "SENDGRID_API_KEY", "TWILIO_AUTH_TOKEN")
SECRET_VERSION_NAME = re.compile(r"^projects/[^/\s]+/secrets/[^/\s]+/versions/[^/\s]+$")


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
class Endpoints:
    """Base URLs of the services; overridden for local runs and tests."""

    mixpanel: str
    sendgrid: str | None = None  # None: the library's default
    twilio: str | None = None
    secret_manager: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything a run needs from its environment, validated."""

    mixpanel_project_id: int
    mixpanel_region: str
    mixpanel_service_account: str | None
    mixpanel_secret: SecretRef
    email: EmailSettings | None
    sms: SmsSettings | None
    timezone: ZoneInfo
    default_lookback_minutes: int
    notify_when_empty: bool
    email_row_limit: int
    run_budget_seconds: float
    max_message_age_minutes: int
    endpoints: Endpoints

    @property
    def configured_channels(self) -> frozenset[str]:
        """The channels whose recipients are set."""
        return frozenset(name for name, on in (("email", self.email), ("sms", self.sms)) if on is not None)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate settings; raise ConfigError naming the first bad variable."""
        env = _Env(environ)
        region = env.choice("MIXPANEL_REGION", tuple(MIXPANEL_HOSTS), default="us")
        return cls(
            mixpanel_project_id=env.integer("MIXPANEL_PROJECT_ID", minimum=1),
            mixpanel_region=region,
            mixpanel_service_account=env.optional("MIXPANEL_SERVICE_ACCOUNT"),
            mixpanel_secret=env.secret("MIXPANEL_SECRET"),
            email=_email_settings(env),
            sms=_sms_settings(env),
            timezone=env.timezone("TIMEZONE", default="UTC"),
            default_lookback_minutes=env.integer(
                "DEFAULT_LOOKBACK_MINUTES", default=60, minimum=1, maximum=MAX_LOOKBACK_MINUTES
            ),
            notify_when_empty=env.boolean("NOTIFY_WHEN_EMPTY", default=False),
            email_row_limit=env.integer("EMAIL_ROW_LIMIT", default=500, minimum=1, maximum=10000),
            run_budget_seconds=env.integer("RUN_BUDGET_SECONDS", default=240, minimum=1, maximum=3600),
            max_message_age_minutes=env.integer(
                "MAX_MESSAGE_AGE_MINUTES", default=1440, minimum=1, maximum=10080
            ),
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
    to = env.listed("EMAIL_TO", _is_email, "an email address like ops@example.com")
    if len(to) > MAX_EMAIL_RECIPIENTS:
        # One SendGrid request carries at most 1,000 personalizations.
        raise ConfigError(f"has {len(to)} addresses; at most {MAX_EMAIL_RECIPIENTS}", variable="EMAIL_TO")
    return EmailSettings(to=to, sender=env.sender("EMAIL_FROM"), api_key=env.secret("SENDGRID_API_KEY"))


def _sms_settings(env: _Env) -> SmsSettings | None:
    if env.optional("SMS_TO") is None:
        return None
    to = env.listed("SMS_TO", _E164.match, "an E.164 number like +14155550100")
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
    """Typed reads of one environment mapping; empty strings count as unset."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise ConfigError("is required but not set", variable=name)
        return value

    def secret(self, name: str) -> SecretRef:
        return SecretRef(variable=name, reference=self.required(name))

    def integer(
        self, name: str, *, default: int | None = None, minimum: int, maximum: int | None = None
    ) -> int:
        raw = self.optional(name) if default is not None else self.required(name)
        if raw is None:
            assert default is not None
            return default
        if not re.fullmatch(r"[0-9]+", raw):
            raise ConfigError("must be a whole number", variable=name)
        value = int(raw)
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ConfigError(f"must be {bound}; got {value}", variable=name)
        return value

    def boolean(self, name: str, *, default: bool) -> bool:
        raw = self.optional(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ConfigError("must be true or false", variable=name)

    def choice(self, name: str, options: tuple[str, ...], *, default: str) -> str:
        value = (self.optional(name) or default).lower()
        if value not in options:
            raise ConfigError(f"must be one of {', '.join(options)}", variable=name)
        return value

    def timezone(self, name: str, *, default: str) -> ZoneInfo:
        value = self.optional(name) or default
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError("must be an IANA time zone like Europe/Berlin", variable=name) from None

    def listed(self, name: str, valid: Callable[[str], object], expected: str) -> tuple[str, ...]:
        items = tuple(item.strip() for item in self.required(name).split(","))
        for position, item in enumerate(items, start=1):
            if not item:
                raise ConfigError("has an empty entry (check the commas)", variable=name)
            if not valid(item):
                raise ConfigError(f"entry {position} of {len(items)} is not {expected}", variable=name)
        return tuple(dict.fromkeys(items))  # drop repeats, keep order

    def sender(self, name: str) -> Sender:
        raw = self.required(name)
        named = _NAMED_EMAIL.match(raw)
        address, display = (named["addr"].strip(), named["name"] or None) if named else (raw, None)
        if not _is_email(address):
            raise ConfigError(
                "must be an address like alerts@example.com or 'Name <alerts@example.com>'",
                variable=name,
            )
        return Sender(address=address, name=display)

    def url(self, name: str) -> str | None:
        raw = self.optional(name)
        if raw is None:
            return None
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("must be an http(s) base URL like https://api.example.com", variable=name)
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ConfigError(
                "plain http is accepted only for loopback hosts (127.0.0.1, localhost); use https",
                variable=name,
            )
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ConfigError("must be a bare base URL without credentials or query", variable=name)
        return raw.rstrip("/")
