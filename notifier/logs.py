"""Structured logging: one JSON object per line with a `severity`, as Cloud Logging reads it.

Every line is valid UTF-8, under MAX_LINE_CHARS, and has every known secret blanked in every form it
travels in: the secrets module registers each value it hands out and the transport each credential
it builds (`hide`), so a provider or a proxy that echoes a request back (a key, a Basic header, a
webhook's path, percent- or JSON-escaped) cannot carry it into a log. A secret is at least
MIN_SECRET_CHARS long (the secrets module refuses shorter ones), so blanking never eats ordinary words.
"""

from __future__ import annotations

import html
import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

LOGGER_NAME = "notifier"
MAX_LINE_CHARS = 32_000
MAX_FIELD_CHARS = 2_000
MIN_SECRET_CHARS = 8
_QUIET = ("twilio.http_client", "urllib3", "google", "sendgrid", "python_http_client")
HIDDEN = "[secret]"
_hidden: list[str] = []  # every form of every secret, longest first, each also as JSON escapes it
_hidden_lock = threading.Lock()


def hide(value: str) -> None:
    """Never let `value` (a secret), or a form it may be echoed in, appear in a log line from now on."""
    forms = {form for form in _forms(value) if len(form) >= MIN_SECRET_CHARS}
    forms |= {json.dumps(form)[1:-1] for form in forms}  # as it reads inside a JSON string
    with _hidden_lock:
        if forms <= set(_hidden):
            return
        _hidden[:] = sorted(forms.union(_hidden), key=len, reverse=True)


def _forms(value: str) -> set[str]:
    """`value` as it is sent or may be echoed: as is, percent-encoded, HTML-escaped, with escaped
    slashes; for a URL (a Slack webhook) also its path and last segment, which a proxy's page quotes."""
    forms = {value, quote(value, safe=""), quote(value, safe="/:"), quote_plus(value), html.escape(value)}
    forms |= {value.replace("/", "\\/"), json.dumps(value)[1:-1]}
    parts = urlsplit(value)
    if parts.scheme and parts.netloc and parts.path.strip("/"):
        path = parts.path
        forms |= {path, unquote(path), path.rstrip("/").rsplit("/", 1)[-1]}
    return forms


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
        return blank(line)


def blank(text: str) -> str:
    """`text` with every form of every hidden secret replaced by HIDDEN."""
    with _hidden_lock:
        forms = list(_hidden)
    for form in forms:
        if form in text:
            text = text.replace(form, HIDDEN)
    return text


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
