"""Slack incoming-webhook stand-in: ``POST /services/T.../B.../secret`` with a JSON payload.

Answers ``200 ok`` for a payload inside Slack's documented limits (50 blocks, 150 characters for a
header, 3,000 for a section's text, 10 fields of 2,000, 10 context elements) and Slack's error
bodies otherwise (400 invalid_payload, 404 no_service for another path). Failures can be scripted.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

from sandbox.server import Recorded, Reply, StandIn

WEBHOOK_PATH = "/services/T0SANDBOX/B0SANDBOX/sandboxsecretsandboxsecret"
ERRORS = {
    400: "invalid_payload",
    403: "action_prohibited",
    404: "channel_not_found",
    410: "channel_is_archived",
    429: "rate_limited",
    500: "rollup_error",
}


class SlackStandIn(StandIn):
    """Accepts messages posted to one webhook path."""

    name = "slack"

    def __init__(self, *, path: str = WEBHOOK_PATH) -> None:
        super().__init__()
        self.path = path

    @property
    def webhook_url(self) -> str:
        """The webhook URL to configure (SLACK_WEBHOOK_URL)."""
        return self.url + self.path

    def respond(self, request: Recorded) -> Reply:
        if request.method != "POST" or request.path != self.path:
            return _text(404, "no_service")
        try:
            payload = request.json()
        except ValueError:
            return _text(400, "invalid_payload")
        problem = payload_problem(payload)
        return _text(400, "invalid_payload") if problem else _text(200, "ok")

    def fault_reply(self, fault: Any, request: Recorded) -> Reply:
        if fault.reply is None and fault.status_code is not None:
            reply = _text(fault.status_code, ERRORS.get(fault.status_code, "error"))
            return Reply(reply.status, reply.body, {**reply.headers, **fault.headers})
        return super().fault_reply(fault, request)

    def messages(self) -> list[dict[str, Any]]:
        """Every payload Slack took."""
        return [r.json() for r in self.received(self.path) if r.served and self.respond(r).status == 200]


def payload_problem(payload: Any) -> str | None:
    """Why Slack would refuse `payload`, or None."""
    if not isinstance(payload, dict):
        return "the payload is not an object"
    if not isinstance(payload.get("text"), str) and not payload.get("blocks"):
        return "no text and no blocks"
    blocks = payload.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "more than 50 blocks"
    for block in blocks:
        problem = _block_problem(block)
        if problem:
            return problem
    if len(json.dumps(payload)) > 40_000:
        return "the payload is too large"
    return None


def _block_problem(block: Any) -> str | None:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "divider":
        return None
    check = _BLOCK_CHECKS.get(kind) if isinstance(kind, str) else None
    return check(block) if check else f"unknown block type {kind!r}"


def _header_problem(block: dict[str, Any]) -> str | None:
    text = block.get("text", {})
    if text.get("type") != "plain_text" or not 0 < len(text.get("text", "")) <= 150:
        return "a header needs plain_text of 1 to 150 characters"
    return None


def _section_problem(block: dict[str, Any]) -> str | None:
    text, fields = block.get("text"), block.get("fields")
    if text is None and not fields:
        return "a section needs text or fields"
    if text is not None and not 0 < len(text.get("text", "")) <= 3000:
        return "a section's text must be 1 to 3,000 characters"
    if fields is not None and (len(fields) > 10 or any(len(f.get("text", "")) > 2000 for f in fields)):
        return "a section has at most 10 fields of 2,000 characters"
    accessory = block.get("accessory")
    if accessory is not None and len(str(accessory.get("url", ""))) > 3000:
        return "a button's url is at most 3,000 characters"
    return None


def _context_problem(block: dict[str, Any]) -> str | None:
    elements = block.get("elements", [])
    if not 0 < len(elements) <= 10 or any(len(e.get("text", "")) > 3000 for e in elements):
        return "a context block has 1 to 10 elements"
    return None


_BLOCK_CHECKS: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "header": _header_problem,
    "section": _section_problem,
    "context": _context_problem,
}


def as_text(payload: Mapping[str, Any]) -> str:
    """The message as Slack shows it, for a terminal: the blocks in order, Slack's escapes undone."""
    lines: list[str] = []
    for block in payload.get("blocks", []):
        kind = block.get("type")
        if kind == "header":
            title = _shown(block["text"])
            lines += [title, "=" * len(title)]
        elif kind == "context":
            lines.append(" · ".join(_shown(element) for element in block["elements"]))
        elif kind == "section":
            for item in [block["text"]] if "text" in block else block.get("fields", []):
                lines += ["", textwrap.indent(_shown(item), "  ")]  # Slack sets users apart like this
            button = block.get("accessory") or {}
            if button.get("url"):
                lines.append(f"  [{_shown(button['text'])}] {button['url']}")
        elif kind == "divider":
            lines.append("-" * 40)
    return "\n".join(lines) if lines else str(payload.get("text", ""))


def _shown(text: Mapping[str, Any]) -> str:
    # Slack shows &lt; &gt; &amp; as < > &: the literal characters a reader sees.
    return str(text.get("text", "")).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text(status: int, body: str) -> Reply:
    return Reply(status, body.encode(), {"Content-Type": "text/plain; charset=utf-8"})
