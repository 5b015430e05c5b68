"""Structured logging: one JSON object per line with a `severity`, as Cloud Logging reads it.

Every line is valid UTF-8, under MAX_LINE_CHARS, and has every known secret value blanked: the
secrets module registers each value it hands out (`hide`), so a provider that echoes a key back in
an error body cannot carry it into a log.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import IO, Any

LOGGER_NAME = "notifier"
MAX_LINE_CHARS = 32_000
MAX_FIELD_CHARS = 2_000
_QUIET = ("twilio.http_client", "urllib3", "google", "sendgrid", "python_http_client")
HIDDEN = "[secret]"
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def hide(value: str) -> None:
    """Never let `value` (a secret) appear in a log line from now on."""
    if len(value) >= 6:  # shorter values would blank ordinary words; secrets are longer
        with _secrets_lock:
            _secrets.add(value)


class JsonFormatter(logging.Formatter):
    """Formats a record as JSON; `extra={"fields": {...}}` adds structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        entry.update(getattr(record, "fields", {}) or {})
        if record.exc_info and record.exc_info[0] is not None:
            entry["error_type"] = record.exc_info[0].__name__
        line = json.dumps(entry, default=str, ensure_ascii=False)
        if len(line) > MAX_LINE_CHARS:
            # Cloud Logging refuses entries past 256 KB; no text we log needs more than a few KB.
            line = json.dumps(_shortened(entry), default=str, ensure_ascii=False)
        # A lone surrogate (half an emoji from a provider or a message) cannot be written as UTF-8.
        line = line.encode("utf-8", "replace").decode("utf-8")
        return _blank_secrets(line)


def _blank_secrets(line: str) -> str:
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in line:
            line = line.replace(secret, HIDDEN)
        escaped = json.dumps(secret)[1:-1]  # as it reads inside a JSON string
        if escaped != secret and escaped in line:
            line = line.replace(escaped, HIDDEN)
    return line


def _shortened(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_FIELD_CHARS else value[:MAX_FIELD_CHARS] + "…(cut)"
    if isinstance(value, dict):
        return {key: _shortened(item) for key, item in list(value.items())[:100]}
    if isinstance(value, list | tuple):
        return [_shortened(item) for item in value[:100]]
    return value


def configure(stream: IO[str] | None = None) -> None:
    """Send the notifier's logs to `stream` (stdout) as JSON lines; safe to call repeatedly."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(getattr(h, "_notifier", False) for h in logger.handlers):
        handler = logging.StreamHandler(stream or sys.stdout)
        handler.setFormatter(JsonFormatter())
        handler._notifier = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    # Client libraries log requests at INFO/DEBUG, headers included: keep them to warnings.
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
