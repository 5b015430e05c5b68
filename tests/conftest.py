"""Shared fixtures: the stand-ins on real sockets, a complete environment, instant retries."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from functions_framework import create_app
from hypothesis import HealthCheck, settings

from notifier import logs
from notifier.logs import JsonFormatter
from notifier.retry import RetryPolicy
from notifier.run import RunSummary, Services, run
from notifier.settings import VARIABLES
from sandbox.mixpanel import MixpanelStandIn
from sandbox.secretmanager import SecretManagerStandIn
from sandbox.sendgrid import SendGridStandIn
from sandbox.server import StandIn
from sandbox.twilio import ACCOUNT_SID, TwilioStandIn

# A 2-core CI machine is slow to start generating; correctness, not speed, is what these check.
settings.register_profile("notifier", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("notifier")

# Every fake secret carries this marker, so a leak anywhere is one substring search away.
MARKER = "LEAKCHECK-7f3a9c"
MIXPANEL_SECRET = f"mp-{MARKER}"
SENDGRID_KEY = f"SG.{MARKER}"
TWILIO_TOKEN = f"tw-{MARKER}"
SERVICE_ACCOUNT = "notifier.sa"
PROJECT_ID = 4242

PUBLISHED = datetime(2026, 11, 28, 9, 0, 42, 123456, tzinfo=UTC)
WINDOW_START = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
WINDOW_END = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)

# What the settings read, plus what the publish command and the Pub/Sub client read.
ISOLATED_VARIABLES = (
    *VARIABLES,
    "PUBSUB_EMULATOR_HOST",
    "PUBSUB_PROJECT_ID",
    "NOTIFIER_TOPIC",
    "GOOGLE_CLOUD_PROJECT",
)


@pytest.fixture(autouse=True, scope="session")
def production_logging() -> None:
    """Log as the deployed function does: JSON lines, chatty client libraries held at WARNING."""
    logs.configure()


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads this machine's configuration by accident."""
    for name in ISOLATED_VARIABLES:
        monkeypatch.delenv(name, raising=False)


class _LogLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(autouse=True)
def no_secret_in_any_log_line() -> Iterator[None]:
    """Every test doubles as a leak check: no log line may carry a fake secret's marker."""
    handler = _LogLines()
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
    leaked = [line for line in handler.lines if MARKER in line]
    assert not leaked, f"a secret reached the log: {leaked[0][:300]}"


def _serve(server: StandIn) -> Iterator[StandIn]:
    """Run a stand-in for one test, then check nothing but an auth header ever carried a secret."""
    with server:
        yield server
    for request in server.requests:
        where = request.body.decode("utf-8", "replace") + request.path + repr(request.query)
        assert MARKER not in where, f"a secret left in a {server.name} request body, path or query"


@pytest.fixture
def mixpanel() -> Iterator[StandIn]:
    yield from _serve(
        MixpanelStandIn(project_id=PROJECT_ID, username=SERVICE_ACCOUNT, secret=MIXPANEL_SECRET)
    )


@pytest.fixture
def sendgrid() -> Iterator[StandIn]:
    yield from _serve(SendGridStandIn(api_key=SENDGRID_KEY))


@pytest.fixture
def twilio() -> Iterator[StandIn]:
    yield from _serve(TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=TWILIO_TOKEN))


@pytest.fixture
def secret_manager() -> Iterator[StandIn]:
    yield from _serve(SecretManagerStandIn())


@pytest.fixture
def environ(mixpanel: MixpanelStandIn, sendgrid: SendGridStandIn, twilio: TwilioStandIn) -> dict[str, str]:
    """A complete configuration pointing at the stand-ins, secrets given as values."""
    return {
        "MIXPANEL_PROJECT_ID": str(PROJECT_ID),
        "MIXPANEL_SERVICE_ACCOUNT": SERVICE_ACCOUNT,
        "MIXPANEL_SECRET": MIXPANEL_SECRET,
        "EMAIL_TO": "growth@example.com,ceo@example.com",
        "EMAIL_FROM": "Notifierator <alerts@example.com>",
        "SENDGRID_API_KEY": SENDGRID_KEY,
        "SMS_TO": "+14155550100,+14155550101",
        "SMS_FROM": "+14155550199",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "MIXPANEL_API_URL": mixpanel.url,
        "SENDGRID_API_URL": sendgrid.url,
        "TWILIO_API_URL": twilio.url,
    }


class Sleeps:
    """A sleep that records instead of waiting, so retry tests take no time."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def services(sleeps: Sleeps) -> Services:
    """Fresh per-instance services: instant waits, short timeouts, a clock just after PUBLISHED."""
    return Services(
        policy=RetryPolicy(attempts=4, base_delay=0.5, max_delay=5.0, connect_timeout=2.0, read_timeout=3.0),
        sleep=sleeps,
        now=lambda: PUBLISHED + timedelta(seconds=5),
        rng=random.Random(7),
    )


@pytest.fixture
def function(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    """The deployed entry point, main.notify, served in-process as functions-framework serves it."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    main = str(Path(__file__).resolve().parent.parent / "main.py")
    app: Flask = create_app(target="notify", source=main, signature_type="cloudevent")  # type: ignore[no-untyped-call]
    return app.test_client()


def run_once(environ: dict[str, str], services: Services, data: bytes = b"") -> RunSummary:
    """One run of the function's core for a message published at PUBLISHED."""
    return run(data, PUBLISHED, environ=environ, services=services)
