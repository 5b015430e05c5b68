"""SendGrid v3 stand-in, for a bearer key with a set of scopes (API key permissions).

``POST /v3/mail/send`` answers 202 when the body is valid (403 without the ``mail.send`` scope);
``GET /v3/scopes`` lists the key's scopes; ``GET /v3/verified_senders`` lists the sender identities,
verified or not, or answers 403 to a key that may not read them (one restricted to Mail Send).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

from sandbox.server import Recorded, Reply, StandIn


class SendGridStandIn(StandIn):
    """Accepts mail for `api_key`, checking the request body's documented shape."""

    name = "sendgrid"

    def __init__(
        self,
        *,
        api_key: str = "SG.sandbox-key",
        scopes: Iterable[str] = ("mail.send",),
        senders: Mapping[str, bool] | None = None,
        senders_readable: bool = True,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.scopes = list(scopes)
        # from_email -> verified; alerts@example.com is the sender the tests and the sandbox use.
        self.senders = dict({"alerts@example.com": True} if senders is None else senders)
        self.senders_readable = senders_readable

    def respond(self, request: Recorded) -> Reply:
        route = (request.method, request.path)
        if route not in (("POST", "/v3/mail/send"), ("GET", "/v3/scopes"), ("GET", "/v3/verified_senders")):
            return _errors(404, "not found")
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _errors(401, "The provided authorization grant is invalid, expired, or revoked")
        if route == ("GET", "/v3/scopes"):
            return Reply.json(200, {"scopes": self.scopes})
        if route == ("GET", "/v3/verified_senders"):
            return self._verified_senders()
        if "mail.send" not in self.scopes:
            return _errors(403, "access forbidden")
        try:
            body = request.json()
        except ValueError:
            return _errors(400, "Invalid JSON body")
        problem = _problem(body)
        return _errors(400, problem) if problem else Reply(202)

    def _verified_senders(self) -> Reply:
        if not self.senders_readable:
            return _errors(403, "access forbidden")
        results = [
            {"id": number, "nickname": address, "from_email": address, "verified": verified, "locked": False}
            for number, (address, verified) in enumerate(self.senders.items(), start=1)
        ]
        return Reply.json(200, {"results": results})

    def error_body(self, status: int) -> Any:
        return {"errors": [{"message": f"scripted error {status}", "field": None, "help": None}]}

    def mails(self) -> list[dict[str, Any]]:
        """Every accepted mail/send body."""
        return [
            r.json() for r in self.received("/v3/mail/send") if r.served and self.respond(r).status == 202
        ]


def _problem(body: Any) -> str | None:
    """What SendGrid would refuse in a mail/send body, or None."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    checks = (_recipients_problem, _sender_problem, _content_problem, _attachments_problem)
    return next((problem for check in checks if (problem := check(body)) is not None), None)


def _recipients_problem(body: dict[str, Any]) -> str | None:
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not 1 <= len(personalizations) <= 1000:
        return "personalizations must be an array of 1 to 1000 items"
    for item in personalizations:
        to = item.get("to") if isinstance(item, dict) else None
        if (
            not isinstance(to, list)
            or not to
            or not all(isinstance(t, dict) and "@" in str(t.get("email", "")) for t in to)
        ):
            return "each personalization needs a to array of {email}"
    if not body.get("subject") and not all(
        isinstance(p, dict) and p.get("subject") for p in personalizations
    ):
        return "subject is required"
    return None


def _sender_problem(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("from"), dict) or "@" not in str(body["from"].get("email", "")):
        return "from.email is required"
    return None


def _content_problem(body: dict[str, Any]) -> str | None:
    content = body.get("content")
    if not isinstance(content, list) or not content:
        return "content must be a non-empty array"
    types = [c.get("type") for c in content if isinstance(c, dict)]
    if types[:1] != ["text/plain"] and "text/plain" in types:
        return "text/plain content must come first"
    return None


def _attachments_problem(body: dict[str, Any]) -> str | None:
    for attachment in body.get("attachments", []) or []:
        try:
            base64.b64decode(attachment["content"], validate=True)
            assert attachment["filename"]
        except (KeyError, ValueError, AssertionError, TypeError):
            return "each attachment needs base64 content and a filename"
    return None


def _errors(status: int, message: str) -> Reply:
    return Reply.json(status, {"errors": [{"message": message, "field": None, "help": None}]})
