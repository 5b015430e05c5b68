"""Secret Manager stand-in: ``GET /v1/projects/P/secrets/NAME/versions/V:access``.

With `token` set it also plays Google's OAuth token endpoint (``POST /token``, as google-auth's
user credentials refresh) and, like Google, answers a read without that bearer token 401.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from sandbox.server import Recorded, Reply, StandIn

_ACCESS = re.compile(r"^/v1/(?P<name>projects/[^/]+/secrets/[^/]+/versions/[^/:]+):access$")


class SecretManagerStandIn(StandIn):
    """Serves `secrets`, a mapping of version name to value; other names get 404."""

    name = "secretmanager"

    def __init__(self, secrets: dict[str, str] | None = None, *, token: str | None = None) -> None:
        super().__init__()
        self.secrets = dict(secrets or {})
        self.token = token

    @property
    def token_uri(self) -> str:
        """Where google-auth's credentials refresh their token (a credentials file's `token_uri`)."""
        return self.url + "/token"

    def respond(self, request: Recorded) -> Reply:
        if request.path == "/token" and request.method == "POST" and self.token:
            return Reply.json(200, {"access_token": self.token, "expires_in": 3600, "token_type": "Bearer"})
        match = _ACCESS.match(request.path)
        if request.method != "GET" or not match:
            return _error(404, "NOT_FOUND", "not found")
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        value = self.secrets.get(match["name"])
        if value is None:
            return _error(404, "NOT_FOUND", f"Secret Version [{match['name']}] not found.")
        data = value.encode()
        return Reply.json(
            200,
            {
                "name": match["name"],
                "payload": {"data": base64.b64encode(data).decode(), "dataCrc32c": str(crc32c(data))},
            },
        )

    def error_body(self, status: int) -> Any:
        code = {
            400: "INVALID_ARGUMENT",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
        }
        return {
            "error": {
                "code": status,
                "message": f"scripted {status}",
                "status": code.get(status, "UNAVAILABLE"),
            }
        }

    def reads(self) -> int:
        """How many access calls were answered."""
        return len([r for r in self.received(":access") if r.served])


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli), bit by bit: slow, plain, and written apart from the function's own."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def _error(status: int, code: str, message: str) -> Reply:
    return Reply.json(status, {"error": {"code": status, "message": message, "status": code}})
