"""Twilio stand-in for one account, with Basic auth (account SID and auth token).

``POST /2010-04-01/Accounts/{sid}/Messages.json`` sends a message (201);
``GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PhoneNumber=...`` lists the account's
numbers that match; ``GET /v1/Services/{MG...}`` is the Messaging API's service (its own host,
messaging.twilio.com, in production), 404 when the account has no such service.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

from sandbox.server import Recorded, Reply, StandIn

_ACCOUNT = r"^/2010-04-01/Accounts/(?P<sid>AC[0-9a-fA-F]{32})"
_MESSAGES = re.compile(_ACCOUNT + r"/Messages\.json$")
_NUMBERS = re.compile(_ACCOUNT + r"/IncomingPhoneNumbers\.json$")
_SERVICE = re.compile(r"^/v1/Services/(?P<sid>MG[0-9a-fA-F]{32})$")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
ACCOUNT_SID = "AC" + "0" * 31 + "1"
SENDER = "+14155550199"  # the account's number, SMS_FROM in the tests and the sandbox
MESSAGING_SERVICE_SID = "MG" + "0" * 31 + "1"


class TwilioStandIn(StandIn):
    """Accepts messages for one account, checking auth and the documented form fields."""

    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str = ACCOUNT_SID,
        auth_token: str = "twilio-token",
        numbers: Iterable[str] = (SENDER,),
        messaging_services: Iterable[str] = (MESSAGING_SERVICE_SID,),
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.numbers = list(numbers)
        self.messaging_services = list(messaging_services)

    def respond(self, request: Recorded) -> Reply:
        for pattern, method in ((_MESSAGES, "POST"), (_NUMBERS, "GET"), (_SERVICE, "GET")):
            match = pattern.match(request.path)
            if match and request.method == method:
                break
        else:
            return _error(404, 20404, "The requested resource was not found")
        in_path = match["sid"] if pattern is not _SERVICE else self.account_sid
        if request.basic_auth() != (self.account_sid, self.auth_token) or in_path != self.account_sid:
            return _error(401, 20003, "Authenticate")
        if pattern is _NUMBERS:
            return Reply.json(200, self._numbers(request))
        if pattern is _SERVICE:
            if match["sid"] not in self.messaging_services:
                return _error(404, 20404, f"The requested resource /Services/{match['sid']} was not found")
            return Reply.json(200, _service(self.account_sid, match["sid"]))
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

    def _numbers(self, request: Recorded) -> dict[str, Any]:
        # PhoneNumber matches partially, as Twilio documents; the list is one page.
        wanted = request.query.get("PhoneNumber", "")
        found = [number for number in self.numbers if wanted in number]
        uri = f"/2010-04-01/Accounts/{self.account_sid}/IncomingPhoneNumbers.json"
        return {
            "incoming_phone_numbers": [
                {"account_sid": self.account_sid, "phone_number": number, "sid": "PN" + uuid.uuid4().hex}
                for number in found
            ],
            "page": 0,
            "page_size": int(request.query.get("PageSize", "50")),
            "start": 0,
            "end": max(len(found) - 1, 0),
            "first_page_uri": uri,
            "next_page_uri": None,
            "previous_page_uri": None,
            "uri": uri,
        }


def _service(account_sid: str, sid: str) -> dict[str, Any]:
    return {
        "account_sid": account_sid,
        "sid": sid,
        "friendly_name": "Sandbox messaging service",
        "url": f"https://messaging.twilio.com/v1/Services/{sid}",
    }


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
