"""The one transport every outbound call goes through, against hostile local servers on real sockets:
redirects, trickling and stalling answers, dropped connections, TLS nobody trusts, a CONNECT proxy,
the run's deadline, credentials kept out of logs, and Google's token fetched on the same session.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import ipaddress
import json
import logging
import select
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import urllib3.exceptions

from notifier.retry import Deadline, RetryPolicy
from notifier.transport import (
    MAX_BODY_BYTES,
    Answer,
    NoCredentials,
    Request,
    Transport,
    Unanswered,
    left,
    unanswered,
)
from sandbox.secretmanager import SecretManagerStandIn
from sandbox.server import Fault, Recorded, Reply, StandIn
from tests.conftest import MARKER, QUICK, LogLines

LOOPBACK = ipaddress.ip_address("127.0.0.1")
TOKEN = f"ya29.{MARKER}"


class Echo(StandIn):
    """Answers 200 "ok", noting each request; `cookie` sets one on every answer."""

    name = "echo"

    def __init__(self, *, cookie: str | None = None) -> None:
        super().__init__()
        self.cookie = cookie

    def respond(self, request: Recorded) -> Reply:
        headers = {"Set-Cookie": f"{self.cookie}; Path=/"} if self.cookie else {}
        return Reply(200, b"ok", {"Content-Type": "text/plain", **headers})


@pytest.fixture
def echo() -> Iterator[Echo]:
    with Echo() as server:
        yield server


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def send(
    request: Request | str,
    *,
    seconds: float = 10,
    policy: RetryPolicy = QUICK,
    transport: Transport | None = None,
    deadline: Deadline | None = None,
) -> Answer:
    request = Request("GET", request) if isinstance(request, str) else request
    return (transport or Transport()).send(request, deadline or Deadline(seconds), policy)


# -- answers ---------------------------------------------------------------------------------------
def test_an_answer_carries_the_status_headers_and_whole_body(echo: Echo) -> None:
    answer = send(echo.url + "/x")
    assert (answer.status, answer.body, answer.complete, answer.accepted) == (200, b"ok", True, True)
    assert answer.headers["content-type"] == "text/plain"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_an_answer_and_where_it_points_is_never_asked(echo: Echo, status: int) -> None:
    with Echo() as elsewhere:
        echo.script(Fault.redirect(elsewhere.url + "/stolen", status))
        answer = send(Request("POST", echo.url, b"the message", basic=("user", f"pw-{MARKER}")))
    assert answer.status == status
    assert not answer.accepted
    assert elsewhere.requests == []


def test_a_status_whose_body_breaks_is_an_answer_marked_incomplete(echo: Echo) -> None:
    echo.script(Fault.truncated(keep=1))
    answer = send(echo.url)
    assert (answer.status, answer.complete) == (200, False)


def test_a_body_stalling_past_the_budget_leaves_its_status_standing(echo: Echo) -> None:
    echo.script(Fault.stalled(30))
    answer = send(echo.url, seconds=1.0)
    assert (answer.status, answer.accepted, answer.complete) == (200, True, False)


def test_a_body_trickled_past_the_budget_is_cut_where_the_budget_ends(echo: Echo) -> None:
    # One byte every 10 ms: each read succeeds, so per-read socket timeouts would never fire.
    echo.script(Fault.trickle(0.01, Reply(200, b"x" * 2_000), body_only=True))
    answer = send(echo.url, seconds=1.0)
    assert (answer.status, answer.complete) == (200, False)
    assert len(answer.body) < 2_000


def test_a_short_stall_within_the_budget_is_waited_out(echo: Echo) -> None:
    body = b"the whole body, held back a moment " * 3
    echo.script(Fault.stalled(0.2, Reply(200, body)))
    answer = send(echo.url)
    assert (answer.body, answer.complete) == (body, True)


def test_a_body_past_the_size_any_answer_needs_is_not_read_to_its_end(echo: Echo) -> None:
    echo.script(Fault(reply=Reply(200, b"x" * (MAX_BODY_BYTES + 1))))
    answer = send(echo.url)
    assert (answer.status, answer.complete) == (200, False)
    assert len(answer.body) <= MAX_BODY_BYTES


# -- no answer -------------------------------------------------------------------------------------
def test_a_refused_connection_never_left() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(Unanswered) as caught:
        send(f"http://127.0.0.1:{port}/")
    assert caught.value.sent is False
    assert "unreachable" in caught.value.reason


def test_a_connection_dropped_after_the_request_was_read_may_have_left(echo: Echo) -> None:
    echo.script(Fault.dropped(after_acting=True))
    with pytest.raises(Unanswered) as caught:
        send(Request("POST", echo.url, b"hello"))
    assert caught.value.sent is True
    assert echo.requests[0].body == b"hello"


def test_headers_trickled_past_the_budget_are_no_answer_and_may_have_left(echo: Echo) -> None:
    echo.script(Fault.trickle(0.2))
    with pytest.raises(Unanswered) as caught:
        send(echo.url, seconds=1.0, policy=RetryPolicy(read_timeout=30))
    assert caught.value.sent is True
    assert "time ran out" in caught.value.reason


def test_https_to_a_server_that_speaks_no_tls_never_left(echo: Echo) -> None:
    with pytest.raises(Unanswered) as caught:
        send(echo.url.replace("http://", "https://"))
    assert caught.value.sent is False
    assert echo.requests == []


class Babbler(socketserver.BaseRequestHandler):
    """Reads a request, then answers something that is not HTTP."""

    def handle(self) -> None:
        self.request.recv(65536)
        self.request.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")


def test_an_answer_that_is_not_http_may_have_left() -> None:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Babbler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(Unanswered) as caught:
            send(Request("POST", f"http://127.0.0.1:{server.server_address[1]}/", b"message"))
    finally:
        server.shutdown()
        server.server_close()
    assert caught.value.sent is True


def test_no_request_starts_without_useful_time_left(echo: Echo) -> None:
    clock = FakeClock()
    deadline = Deadline(10, clock)
    clock.now = 9.9
    with pytest.raises(Unanswered) as caught:
        send(echo.url, deadline=deadline)
    assert caught.value.sent is False
    assert echo.requests == []


def test_a_reserve_lets_a_request_run_past_the_budget(echo: Echo) -> None:
    clock = FakeClock()
    deadline = Deadline(10, clock)
    clock.now = 10.5
    answer = Transport().send(Request("GET", echo.url), deadline, QUICK, reserve=5.0)
    assert answer.status == 200


def test_a_bug_below_the_transport_is_raised_as_it_is() -> None:
    session = requests.Session()

    class Broken(requests.adapters.BaseAdapter):
        def send(self, *_args: object, **_kwargs: object) -> requests.Response:
            raise KeyError("a bug")

        def close(self) -> None:
            pass

    session.mount("http://", Broken())
    with pytest.raises(KeyError):
        send("http://127.0.0.1:9/", transport=Transport(session))


# -- the failure table and the one rule ------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "sent"),
    [
        (requests.exceptions.ConnectTimeout(), False),
        (requests.exceptions.ProxyError(), False),
        (requests.exceptions.InvalidURL(), False),
        (
            requests.exceptions.ConnectionError(
                urllib3.exceptions.MaxRetryError(
                    None,  # type: ignore[arg-type]
                    "/",
                    urllib3.exceptions.NameResolutionError("nowhere.invalid", None, socket.gaierror()),  # type: ignore[arg-type]
                )
            ),
            False,
        ),
        (requests.exceptions.SSLError(ssl.SSLCertVerificationError("untrusted")), False),
        (requests.exceptions.ReadTimeout(), True),
        (
            requests.exceptions.ConnectionError(
                urllib3.exceptions.ProtocolError("aborted", http.client.RemoteDisconnected("closed"))
            ),
            True,
        ),
        (requests.exceptions.ChunkedEncodingError(), True),
        (ConnectionResetError(), True),
    ],
    ids=lambda value: type(value).__name__,
)
def test_only_a_failure_while_connecting_means_the_request_never_left(error: Exception, sent: bool) -> None:
    assert left(error) is sent
    mapped = unanswered(error)
    assert mapped is not None
    assert mapped.sent is sent


@pytest.mark.parametrize("error", [KeyError("x"), TypeError("x"), ValueError("x")])
def test_what_is_not_a_transport_failure_is_not_translated(error: Exception) -> None:
    assert unanswered(error) is None


# -- one session per instance, no state shared between services ------------------------------------
def test_one_transport_keeps_its_connection_between_calls(echo: Echo) -> None:
    transport = Transport()
    for _ in range(3):
        send(echo.url, transport=transport)
    assert echo.connections == 1
    send(echo.url)  # another transport: another connection
    assert echo.connections == 2


def test_no_cookie_one_service_sets_travels_to_another() -> None:
    transport = Transport()
    with Echo(cookie="affinity=abc") as first, Echo() as second:
        send(first.url, transport=transport)
        send(first.url, transport=transport)
        send(second.url, transport=transport)
    assert [r for r in [*first.requests, *second.requests] if "cookie" in r.headers] == []


# -- credentials ------------------------------------------------------------------------------------
def test_basic_credentials_travel_only_in_the_header_and_never_reach_a_log(
    echo: Echo, log_lines: LogLines
) -> None:
    secret = f"token-{MARKER}"
    send(Request("POST", echo.url, b"body", basic=("AC123", secret)))
    header = echo.requests[0].headers["authorization"]
    assert echo.requests[0].basic_auth() == ("AC123", secret)
    logging.getLogger("notifier.test").error("a proxy echoed: %s", header)
    assert header.split()[1] not in log_lines.lines[-1]


def test_a_bearer_key_travels_only_in_the_header(echo: Echo) -> None:
    send(Request("GET", echo.url, bearer=f"SG.{MARKER}"))
    assert echo.requests[0].headers["authorization"] == f"Bearer SG.{MARKER}"


def test_a_secret_url_is_blanked_in_every_form_a_page_may_quote(echo: Echo, log_lines: LogLines) -> None:
    url = echo.url + f"/services/T0/B0/{MARKER}"
    send(Request("POST", url, b"{}", secret_url=True))
    path = f"/services/T0/B0/{MARKER}"
    logging.getLogger("notifier.test").error("404: Cannot POST %s", path)
    assert "[secret]" in log_lines.lines[-1]  # and the conftest finds no marker anywhere


def test_no_netrc_password_is_ever_added(echo: Echo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    send(echo.url)
    assert "authorization" not in echo.requests[0].headers


# -- Google's token -------------------------------------------------------------------------------------
@pytest.fixture
def google_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretManagerStandIn]:
    """A service account whose token endpoint is the Secret Manager stand-in, which wants the token."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with SecretManagerStandIn({"projects/p/secrets/s/versions/1": f"value-{MARKER}"}, token=TOKEN) as sm:
        account = {
            "type": "service_account",
            "project_id": "from-credentials",
            "private_key_id": "1",
            "private_key": pem,
            "client_email": "notifier@from-credentials.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": sm.token_uri,
        }
        path = tmp_path / "credentials.json"
        path.write_text(json.dumps(account))
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
        yield sm


def test_a_google_call_carries_the_token_google_auth_fetched_on_the_same_session(
    google_credentials: SecretManagerStandIn, log_lines: LogLines
) -> None:
    transport = Transport()
    url = google_credentials.url + "/v1/projects/p/secrets/s/versions/1:access"
    for _ in range(2):
        answer = send(Request("GET", url, google=True), transport=transport)
        assert answer.status == 200
    assert [r.path for r in google_credentials.requests].count("/token") == 1  # fetched once, then kept
    assert google_credentials.connections == 1  # the token and the calls share one pool
    assert transport.google_project() == "from-credentials"
    logging.getLogger("notifier.test").error("echoed: Bearer %s", TOKEN)
    assert TOKEN not in log_lines.lines[-1]


def test_a_token_endpoint_that_redirects_is_never_followed(
    google_credentials: SecretManagerStandIn,
) -> None:
    with Echo() as elsewhere:
        google_credentials.script(Fault.redirect(elsewhere.url + "/token", 307))
        with pytest.raises(Unanswered) as caught:
            send(Request("GET", google_credentials.url + "/v1/x", google=True))
    assert caught.value.sent is False
    assert "Google access token" in caught.value.reason
    assert elsewhere.requests == []


def test_no_google_credentials_is_said_as_such(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    with pytest.raises(NoCredentials):
        send(Request("GET", "http://127.0.0.1:9/", google=True))
    with pytest.raises(NoCredentials):
        Transport().google_project()


# -- TLS and proxies ---------------------------------------------------------------------------------
class _Answer(http.server.BaseHTTPRequestHandler):
    requests_seen: list[str]

    def do_GET(self) -> None:
        self.requests_seen.append(self.path)
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        return None


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A local HTTPS server whose self-signed certificate names 127.0.0.1: its URL, the cert, its log."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "notifierator test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(LOOPBACK)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    seen: list[str] = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Answer,), {"requests_seen": seen}))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert_file, seen
    finally:
        server.shutdown()
        server.server_close()


def test_tls_with_a_certificate_nobody_trusts_never_left(https_server: tuple[str, Path, list[str]]) -> None:
    url, _cert, seen = https_server
    with pytest.raises(Unanswered) as caught:
        send(url + "/")
    assert caught.value.sent is False
    assert "TLS" in caught.value.reason
    assert seen == []


def test_tls_trusted_through_the_ca_bundle_answers_and_redirects_stay_answers(
    https_server: tuple[str, Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert, seen = https_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # requests' own way to trust one more CA
    transport = Transport()
    assert send(url + "/", transport=transport).status == 200
    assert send(url + "/moved", transport=transport).status == 302
    assert seen == ["/", "/moved"]


class _Tunnel(socketserver.BaseRequestHandler):
    """An HTTP CONNECT forward proxy, as HTTPS_PROXY names: it relays bytes and notes each CONNECT."""

    seen: list[str]

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        line = head.split(b"\r\n", 1)[0].decode()
        self.seen.append(line)
        method, target, _version = line.split(" ", 2)
        if method != "CONNECT":
            self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        host, port = target.rsplit(":", 1)
        with socket.create_connection((host, int(port))) as upstream:
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self._relay(upstream)

    def _relay(self, upstream: socket.socket) -> None:
        ends = [self.request, upstream]
        while True:
            ready, _, _ = select.select(ends, [], [], 10)
            if not ready:
                return
            for end in ready:
                data = end.recv(65536)
                if not data:
                    return
                (upstream if end is self.request else self.request).sendall(data)


@pytest.fixture
def connect_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    seen: list[str] = []
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), type("Tunnel", (_Tunnel,), {"seen": seen}))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def test_behind_a_proxy_the_tunnel_is_verified_and_redirects_stay_answers(
    https_server: tuple[str, Path, list[str]], connect_proxy: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert, seen = https_server
    with pytest.raises(Unanswered) as caught:
        send(url + "/")  # through the tunnel, the certificate is still checked
    assert caught.value.sent is False
    assert seen == []
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    assert send(url + "/").status == 200
    assert send(url + "/moved").status == 302
    assert seen == ["/", "/moved"]
    target = url.removeprefix("https://")
    assert len(connect_proxy) == 3  # every request went through the tunnel
    assert all(line.startswith(f"CONNECT {target} ") for line in connect_proxy)


def test_a_proxy_that_refuses_the_tunnel_means_nothing_left(
    https_server: tuple[str, Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _cert, seen = https_server
    with Echo() as not_a_proxy:  # answers CONNECT with a 404 page
        not_a_proxy.script(Fault(reply=Reply(403, b"no tunnels here")))
        monkeypatch.setenv("HTTPS_PROXY", not_a_proxy.url)
        with pytest.raises(Unanswered) as caught:
            send(url + "/")
    assert caught.value.sent is False
    assert seen == []


def test_any_request_shape_reaches_the_server_as_meant(echo: Echo) -> None:
    form = Request.form("POST", echo.url + "/f", {"a": "1", "many": ["x", "y"]}, params={"q": "é"})
    send(form)
    as_json = Request.json("PUT", echo.url + "/j", {"k": [1, None]}, headers={"X-Extra": "1"})
    send(as_json)
    first, second = echo.requests
    assert (first.method, first.query, first.form()) == ("POST", {"q": "é"}, {"a": "1", "many": "y"})
    assert first.body == b"a=1&many=x&many=y"
    assert (second.method, second.json(), second.headers["x-extra"]) == ("PUT", {"k": [1, None]}, "1")
    assert second.headers["content-type"] == "application/json"


def test_an_answer_reads_as_json_or_says_it_is_not(echo: Echo) -> None:
    echo.script(Fault(reply=Reply.json(200, {"a": 1})))
    assert send(echo.url).json() == {"a": 1}
    with pytest.raises(ValueError, match="Expecting value"):
        send(echo.url).json()


def test_a_basic_pair_is_base64_of_user_colon_password(echo: Echo) -> None:
    send(Request("GET", echo.url, basic=("user", f"secret-{MARKER}")))
    token = echo.requests[0].headers["authorization"].split()[1]
    assert base64.b64decode(token).decode() == f"user:secret-{MARKER}"
