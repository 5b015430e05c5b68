"""The shared machinery of the stand-ins: a threaded HTTP server, request records, faults."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Recorded:
    """One request as the stand-in received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    fault: Fault | None = None  # the scripted fault that answered instead of the real API
    acted_despite: Fault | None = None  # a fault that broke only the answer: the API did act

    @property
    def served(self) -> bool:
        """True when the real API logic answered (no fault replaced it)."""
        return self.fault is None

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The body parsed as a form (last value wins)."""
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def basic_auth(self) -> tuple[str, str] | None:
        """The (user, password) of an HTTP Basic Authorization header, if any."""
        header = self.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return user, password


@dataclass(frozen=True)
class Reply:
    """What to answer: status, headers and body."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
        """A JSON reply."""
        return cls(
            status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
        )


@dataclass(frozen=True)
class Fault:
    """A scripted misbehaviour for one request: an error status, a reply, a hang, or a drop."""

    reply: Reply | None = None
    status_code: int | None = None  # answered with the stand-in's own error body for this status
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    hang_seconds: float = 0.0
    drop: bool = False
    cut_after: int | None = None  # send the reply's headers and this many body bytes, then close
    trickle_seconds: float = 0.0  # send the reply one byte at a time, this far apart
    trickle_body_only: bool = False  # the status and headers at once, then the body trickled
    stall_seconds: float = 0.0  # send the reply's headers and first body byte, then wait this long
    accept: bool = False  # let the real API logic act on the request (it "happened") before the fault

    @classmethod
    def status(cls, status: int, *, retry_after: str | None = None, body: Any = None) -> Fault:
        """Answer `status` (with an optional Retry-After) in the API's own error shape."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls(status_code=status, headers=headers, body=body)

    @classmethod
    def not_json(cls) -> Fault:
        """Answer 200 with a body that is not JSON."""
        return cls(reply=Reply(200, b"<html>gateway says hi</html>", {"Content-Type": "text/html"}))

    @classmethod
    def hang(cls, seconds: float) -> Fault:
        """Act on the request, then wait `seconds` before answering (past the client's read timeout)."""
        return cls(hang_seconds=seconds, accept=True)

    @classmethod
    def dropped(cls, *, after_acting: bool = False) -> Fault:
        """Close the connection without answering; `after_acting`: the API did its work first."""
        return cls(drop=True, accept=after_acting)

    @classmethod
    def truncated(cls, reply: Reply | None = None, *, keep: int = 0) -> Fault:
        """Act on the request, answer its real status and headers, send `keep` body bytes, then close.

        A Content-Length beyond what is sent makes the client's read fail: "202 then reset".
        """
        return cls(reply=reply, cut_after=keep, accept=reply is None)

    @classmethod
    def trickle(
        cls, seconds_per_byte: float, reply: Reply | None = None, *, body_only: bool = False
    ) -> Fault:
        """Answer (the real reply, or `reply`) one byte at a time: socket timeouts never fire.

        `body_only`: the status and headers go at once, only the body trickles."""
        return cls(
            reply=reply, trickle_seconds=seconds_per_byte, trickle_body_only=body_only, accept=reply is None
        )

    @classmethod
    def stalled(cls, seconds: float, reply: Reply | None = None) -> Fault:
        """Act on the request, answer its status and headers at once, then hold the body `seconds`."""
        return cls(reply=reply, stall_seconds=seconds, accept=reply is None)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Fault:
        """Answer a redirect to `location`."""
        return cls(reply=Reply(status, b"", {"Location": location}))


class StandIn:
    """A real HTTP server on 127.0.0.1, run in a thread; subclasses implement `respond`."""

    name = "stand-in"

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.connections = 0  # TCP connections accepted: a client that keeps its pool opens one
        self.faults: deque[Fault] = deque()
        # Told of every answer (`python -m sandbox serve` prints them); None for the tests.
        self.on_reply: Callable[[Recorded, Reply], None] | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, port: int = 0) -> Self:
        """Listen on 127.0.0.1:`port` (0 picks a free one) and serve in a daemon thread."""
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start() if self._server is None else self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:PORT."""
        assert self._server is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- scripting -----------------------------------------------------------------------------
    def script(self, *faults: Fault) -> None:
        """Play `faults` on the next requests, one each, then behave normally."""
        with self._lock:
            self.faults.extend(faults)

    def received(self, path_part: str = "") -> list[Recorded]:
        """Requests received so far whose path contains `path_part`."""
        with self._lock:
            return [r for r in self.requests if path_part in r.path]

    def respond(self, request: Recorded) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    def error_body(self, status: int) -> Any:
        """The body this API sends with an error `status` (overridden per API)."""
        return {"error": f"scripted {status}"}

    def fault_reply(self, fault: Fault, request: Recorded) -> Reply:
        """What a fault answers instead of the real reply."""
        if fault.reply is not None:
            return fault.reply
        if fault.status_code is not None:
            body = fault.body if fault.body is not None else self.error_body(fault.status_code)
            return Reply.json(fault.status_code, body, fault.headers)
        return self.respond(request)  # a hang alone answers normally, late

    def fault_for(self, path: str) -> Fault | None:
        """The fault a request to `path` plays, if any (every request takes the next, by default)."""
        del path
        return self._next_fault()

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self.faults.popleft() if self.faults else None

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1


def _handler_for(stand_in: StandIn) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"stand_in": stand_in})


class _Handler(BaseHTTPRequestHandler):
    """Serves one stand-in (the class attribute a subclass sets), playing its scripted faults."""

    protocol_version = "HTTP/1.1"
    stand_in: StandIn

    def setup(self) -> None:
        super().setup()
        self.stand_in._connected()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep test output clean; the records are the log

    def _serve(self) -> None:
        request, fault = self._read()
        if fault is not None and fault.hang_seconds:
            time.sleep(fault.hang_seconds)
        if fault is not None and fault.drop:
            if fault.accept:
                self.stand_in.respond(request)  # the API acts (a proxy forwards), then the answer is lost
            self.close_connection = True
            self.connection.close()
            return
        if fault is None or (fault.accept and fault.reply is None):
            reply = self.stand_in.respond(request)
        else:
            reply = self.stand_in.fault_reply(fault, request)
        if self.stand_in.on_reply is not None:
            self.stand_in.on_reply(request, reply)
        # The client may have given up already (a timeout test): nothing left to tell it.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer(reply, fault)

    def _read(self) -> tuple[Recorded, Fault | None]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        fault = self.stand_in.fault_for(parts.path)
        request = Recorded(
            method=self.command,
            path=parts.path,
            query={k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            fault=fault,
        )
        if fault is not None and fault.accept:
            request = Recorded(**{**request.__dict__, "fault": None, "acted_despite": fault})
        self.stand_in._record(request)
        return request, fault

    def _answer(self, reply: Reply, fault: Fault | None) -> None:
        raw, head = _raw(reply, fault)
        if fault is None:
            self.wfile.write(raw)
        elif fault.cut_after is not None:
            self._write(raw[: head + fault.cut_after])
            self.close_connection = True
            self.connection.shutdown(2)
        elif fault.trickle_seconds:
            start = head if fault.trickle_body_only else 0
            self._write(raw[:start])
            for index in range(start, len(raw)):
                self._write(raw[index : index + 1])
                time.sleep(fault.trickle_seconds)
        elif fault.stall_seconds:
            self._write(raw[: head + 1])
            time.sleep(fault.stall_seconds)
            self._write(raw[head + 1 :])
        else:
            self.wfile.write(raw)

    def _write(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = _serve


def _raw(reply: Reply, fault: Fault | None) -> tuple[bytes, int]:
    """The reply as bytes on the wire, and where its body starts."""
    body = reply.body
    if fault is not None and fault.cut_after is not None and len(body) <= fault.cut_after:
        body = body + b" " * (fault.cut_after + 16 - len(body))  # promise more than is sent
    if fault is not None and (fault.stall_seconds or fault.trickle_body_only):
        body = body.ljust(64)  # a body long enough to hold back or to trickle, even after a bare 202
    head = f"HTTP/1.1 {reply.status} {_reason(reply.status)}\r\n"
    head += "".join(f"{key}: {value}\r\n" for key, value in reply.headers.items())
    head += f"Content-Length: {len(body)}\r\n\r\n"
    encoded = head.encode("latin-1")
    return encoded + body, len(encoded)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
