"""Secret values: given inline (local runs) or read from Secret Manager once per instance.

Secret Manager is read through its REST API (`GET v1/{name}:access`) on the instance's transport,
with the function's Google credentials (none for a loopback SECRET_MANAGER_API_URL, a local
stand-in). An answer is used, and cached, only when its data matches the CRC32C it carries.
"""

from __future__ import annotations

import base64
import binascii
import threading
from typing import Any
from urllib.parse import urlsplit

from notifier import logs
from notifier.errors import ConfigError, SourceUnavailable
from notifier.replies import error_detail, is_transient_status
from notifier.retry import Retrier, parse_retry_after
from notifier.settings import SecretRef, is_loopback_host
from notifier.transport import ACCEPT_JSON, Answer, NoCredentials, Request, Unanswered

SERVICE = "Secret Manager"
PRODUCTION_URL = "https://secretmanager.googleapis.com"
_ACCESSOR_HINT = (
    "check the version exists and the function's service account has roles/secretmanager.secretAccessor on it"
)


class SecretResolver:
    """Turns SecretRefs into values, caching each Secret Manager read for the process's life."""

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def value(self, ref: SecretRef, retrier: Retrier, *, api_url: str | None = None) -> str:
        """The secret's value; a version name is read from Secret Manager the first time only.

        `api_url` points at another endpoint (a local stand-in); None is Google's.
        """
        if not ref.is_version_name:
            return checked(ref.variable, ref.reference)
        with self._lock:
            cached = self._cache.get(ref.reference)
            if cached is None:
                # Checked before it is cached: a bad answer is never kept for the instance's life.
                cached = checked(
                    ref.variable,
                    retrier.call(lambda: _access(ref, retrier, api_url), name="Secret Manager access"),
                )
                self._cache[ref.reference] = cached
            return cached


def _access(ref: SecretRef, retrier: Retrier, api_url: str | None) -> str:
    base = (api_url or PRODUCTION_URL).rstrip("/")
    local = is_loopback_host(urlsplit(base).hostname or "")
    request = Request("GET", f"{base}/v1/{ref.reference}:access", headers=ACCEPT_JSON, google=not local)
    try:
        answer = retrier.send(request)
    except NoCredentials:
        raise ConfigError(
            f"no Google credentials to read {ref.reference} from {SERVICE}; deployed functions have "
            "them, a local run needs `gcloud auth application-default login` or the secret's value",
            variable=ref.variable,
        ) from None
    except Unanswered as error:
        raise _unavailable(ref, error.reason) from None
    if not answer.accepted:
        raise _refusal(answer, ref)
    return _payload(answer, ref)


def _refusal(answer: Answer, ref: SecretRef) -> Exception:
    """429 and 5xx are retried; any other status (a 403 without the role, a 404) is configuration."""
    detail = error_detail(answer.body)
    if is_transient_status(answer.status):
        return SourceUnavailable(
            f"{SERVICE} answered {answer.status} reading {ref.variable}: {detail}",
            service=SERVICE,
            status=answer.status,
            retry_after=parse_retry_after(answer.headers),
        )
    return ConfigError(
        f"{SERVICE} refused to read {ref.reference} ({answer.status}: {detail}); {_ACCESSOR_HINT}",
        variable=ref.variable,
    )


def _payload(answer: Answer, ref: SecretRef) -> str:
    """The value in an access answer, when the answer is whole, well-formed and its checksum holds."""
    if not answer.complete:
        raise _unavailable(ref, "answered, but the answer broke off")
    try:
        body: Any = answer.json()
    except ValueError:
        raise _unavailable(ref, "answered with a body that is not JSON") from None
    payload = body.get("payload") if isinstance(body, dict) else None
    if not isinstance(payload, dict) or not body.get("name"):
        # Every real answer names the version it read; `{}` or a proxy's JSON is not an answer.
        raise _unavailable(ref, "answered without a secret version")
    try:
        data = base64.b64decode(payload.get("data") or "", validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise _unavailable(ref, "answered with data that is not base64") from None
    checksum = payload.get("dataCrc32c")
    if checksum is not None and str(checksum) != str(crc32c(data)):
        raise _unavailable(ref, "answered with data that does not match its checksum (not used)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("the secret's value is not UTF-8 text", variable=ref.variable) from None


def _unavailable(ref: SecretRef, what: str) -> SourceUnavailable:
    return SourceUnavailable(f"{SERVICE} {what}, reading the secret {ref.variable} names", service=SERVICE)


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)  # Castagnoli, reflected
        table.append(crc)
    return tuple(table)


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """The CRC32C (Castagnoli) of `data`, as Secret Manager's `dataCrc32c` carries it."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def checked(variable: str, value: str) -> str:
    """A secret's value, stripped, if it is long enough to blank from logs and can travel in a header;
    else ConfigError naming the variable, never the value."""
    value = value.strip()
    if not value:
        raise ConfigError("the secret's value is empty", variable=variable)
    if len(value) < logs.MIN_SECRET_CHARS:
        # Refused before it is used: never sent, so nothing can echo it into a log.
        raise ConfigError(
            f"the secret's value is shorter than {logs.MIN_SECRET_CHARS} characters: no real key is; "
            "was it cut short?",
            variable=variable,
        )
    logs.hide(value)  # even a value refused below must never reach a log
    if value.startswith("\ufeff"):
        raise ConfigError(
            "the secret's value starts with a byte-order mark (saved by an editor?)", variable=variable
        )
    if not (value.isascii() and value.isprintable()) or any(char.isspace() for char in value):
        raise ConfigError(
            "the secret's value holds spaces, line breaks, control or non-ASCII characters; "
            "add it again without them (gcloud secrets versions add NAME --data-file=-)",
            variable=variable,
        )
    return value
