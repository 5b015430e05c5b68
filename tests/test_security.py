"""Security promises that cut across modules: TLS, where secrets may travel, injection."""

from __future__ import annotations

import http.server
import ipaddress
import re
import select
import socket
import socketserver
import ssl
import threading
import urllib.error
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from notifier.answers import refusing_opener, tls_context
from notifier.errors import NotifierError
from notifier.services import Services
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.sendgrid import SendGridStandIn
from sandbox.server import Fault
from sandbox.twilio import TwilioStandIn
from tests.conftest import MARKER, run_once

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = ipaddress.ip_address("127.0.0.1")
SHIPPED = [ROOT / "main.py", *sorted((ROOT / "notifier").rglob("*.py"))]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_tls_verification_is_never_turned_off(path: Path) -> None:
    source = path.read_text()
    for pattern in (
        r"verify\s*=\s*False",
        r"CERT_NONE",
        r"_create_unverified_context",
        r"check_hostname\s*=\s*False",
    ):
        assert not re.search(pattern, source), f"{path.name} disables TLS verification ({pattern})"


@pytest.mark.parametrize(
    ("target", "fault"),
    [
        ("mixpanel", Fault.status(401)),
        ("mixpanel", Fault.status(503)),
        ("sendgrid", Fault.status(401)),
        ("sendgrid", Fault.status(503)),
        ("twilio", Fault.status(401)),
        ("twilio", Fault.status(503)),
    ],
)
def test_no_error_a_run_raises_or_reports_carries_a_secret(
    target: str,
    fault: Fault,
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    environ: dict[str, str],
    services: Services,
) -> None:
    mixpanel.profiles = [profile("u1", "2026-11-28T08:30:00", name="Ada")]
    servers = {"mixpanel": mixpanel, "sendgrid": sendgrid, "twilio": twilio}
    servers[target].script(*[fault] * 10)
    reported: list[str] = []
    try:
        summary = run_once(environ, services)
        reported += [repr(summary.log_fields()), repr(summary.channels)]
    except NotifierError as error:
        reported += [str(error), repr(error.args)]
    assert reported
    assert not [text for text in reported if MARKER in text]


def test_what_reaches_people_carries_no_secret(
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    environ: dict[str, str],
    services: Services,
) -> None:
    mixpanel.profiles = [profile("u1", "2026-11-28T08:30:00", name="Ada")]
    run_once(environ, services)
    assert MARKER not in repr(sendgrid.mails())
    assert MARKER not in repr(twilio.messages())


def test_an_sms_cannot_be_split_or_restyled_by_a_name(
    mixpanel: MixpanelStandIn, twilio: TwilioStandIn, environ: dict[str, str], services: Services
) -> None:
    mixpanel.profiles = [
        profile("u1", "2026-11-28T08:30:00", name="Eve\n\nYour code is 123456\r\n{http://evil}"),
    ]
    run_once(environ, services)
    body = twilio.messages()[0]["Body"]
    assert "\n" not in body
    assert "\r" not in body
    assert "{" not in body
    assert len(body) <= 160


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
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
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTPS server whose self-signed certificate names 127.0.0.1; yields its URL and the cert."""
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
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert_file
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fresh_tls_context() -> Iterator[None]:
    tls_context.forget()
    yield
    tls_context.forget()


def test_the_urllib_clients_refuse_a_certificate_nobody_trusts(
    https_server: tuple[str, Path], fresh_tls_context: None
) -> None:
    url, _cert = https_server
    with pytest.raises(urllib.error.URLError) as caught:
        refusing_opener().open(url + "/", timeout=5)
    assert isinstance(caught.value.reason, ssl.SSLCertVerificationError)


def test_the_urllib_clients_share_one_tls_context_and_still_refuse_redirects(
    https_server: tuple[str, Path], fresh_tls_context: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = https_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the one CA this test trusts, as OpenSSL documents
    assert refusing_opener().open(url + "/", timeout=5).status == 200
    assert refusing_opener().open(url + "/", timeout=5).status == 200
    with pytest.raises(urllib.error.HTTPError) as caught:
        refusing_opener().open(url + "/moved", timeout=5)
    assert caught.value.code == 302
    assert tls_context.made == 1  # the CA store was loaded once, at the first request


def test_a_plain_http_run_loads_no_tls_context(fresh_tls_context: None) -> None:
    refusing_opener()
    assert tls_context.made == 0


def test_racing_first_requests_still_make_one_tls_context(
    https_server: tuple[str, Path], fresh_tls_context: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = https_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    start = threading.Barrier(12)

    def request() -> int:
        start.wait()  # all at once, before any context exists
        status: int = refusing_opener().open(url + "/", timeout=10).status
        return status

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda _: request(), range(12)))
    assert statuses == [200] * 12
    assert tls_context.made == 1


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
def connect_proxy() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Tunnel", (_Tunnel,), {"seen": seen})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_behind_a_proxy_the_tunnel_is_verified_and_redirects_are_still_refused(
    https_server: tuple[str, Path],
    connect_proxy: tuple[str, list[str]],
    fresh_tls_context: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, cert = https_server
    proxy, seen = connect_proxy
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(urllib.error.URLError) as caught:
        refusing_opener().open(url + "/", timeout=5)  # the certificate is not trusted yet
    assert isinstance(caught.value.reason, ssl.SSLCertVerificationError)
    tls_context.forget()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    assert refusing_opener().open(url + "/", timeout=5).status == 200
    with pytest.raises(urllib.error.HTTPError) as redirected:
        refusing_opener().open(url + "/moved", timeout=5)
    assert redirected.value.code == 302
    target = url.removeprefix("https://")
    assert len(seen) == 3  # every request went through the tunnel
    assert all(line.startswith(f"CONNECT {target} ") for line in seen)
