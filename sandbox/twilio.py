"""Twilio stand-in: ``POST /2010-04-01/Accounts/{sid}/Messages.json`` with Basic auth; 201."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sandbox.server import Recorded, Reply, StandIn

_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC[0-9a-fA-F]{32})/Messages\.json$")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
ACCOUNT_SID = "AC" + "0" * 31 + "1"


class TwilioStandIn(StandIn):
    """Accepts messages for one account, checking auth and the documented form fields."""

    name = "twilio"

    def __init__(self, *, account_sid: str = ACCOUNT_SID, auth_token: str = "twilio-token") -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token

    def respond(self, request: Recorded) -> Reply:
        match = _MESSAGES.match(request.path)
        if request.method != "POST" or not match:
            return _error(404, 20404, "The requested resource was not found")
        if request.basic_auth() != (self.account_sid, self.auth_token) or match["sid"] != self.account_sid:
            return _error(401, 20003, "Authenticate")
        form = request.form()
        if not _E164.match(form.get("To", "")):
            return _error(400, 21211, f"The 'To' number {form.get('To')} is not a valid phone number.")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return _error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required")
        if not form.get("Body"):
            return _error(400, 21602, "Message body is required.")
        return Reply.json(201, _message(self.account_sid, form))

    def error_body(self, status: int) -> Any:
        code = 20429 if status == 429 else 20500 if status >= 500 else 21211
        return {"code": code, "message": f"scripted error {status}", "more_info": "", "status": status}

    def messages(self) -> list[dict[str, str]]:
        """The form of every accepted message."""
        return [
            r.form() for r in self.received("/Messages.json") if r.served and self.respond(r).status == 201
        ]


def _message(account_sid: str, form: dict[str, str]) -> dict[str, Any]:
    sid = "SM" + uuid.uuid4().hex
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": form["Body"],
        "date_created": "Sat, 28 Nov 2026 09:00:00 +0000",
        "direction": "outbound-api",
        "from": form.get("From"),
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "num_segments": "1",
        "sid": sid,
        "status": "queued",
        "to": form["To"],
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
    }


def _error(status: int, code: int, message: str) -> Reply:
    return Reply.json(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )
