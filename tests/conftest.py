"""Shared fixtures: the stand-ins on real sockets, a complete environment, instant retries, and
`world`, the one fixture object most tests need: every stand-in, the environment and the services.
"""

from __future__ import annotations

import base64
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from functions_framework import create_app
from hypothesis import HealthCheck, settings

from notifier import logs
from notifier.errors import RedeliveryRequested
from notifier.logs import JsonFormatter
from notifier.retry import Deadline, Retrier, RetryPolicy
from notifier.run import handle_message, run
from notifier.services import Services
from notifier.state import StateStore
from notifier.state.firestore import open_firestore
from notifier.state.memory import MemoryStore
from notifier.summary import RunSummary
from notifier.transport import Transport
from notifier.variables import NAMES
from sandbox.function import run_summaries
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.secretmanager import SecretManagerStandIn
from sandbox.sendgrid import SendGridStandIn
from sandbox.server import StandIn
from sandbox.slack import SlackStandIn
from sandbox.twilio import ACCOUNT_SID, TwilioStandIn

# A 2-core CI machine is slow to start generating; correctness, not speed, is what these check.
settings.register_profile("notifier", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("notifier")

# Every fake secret carries this marker, so a leak anywhere is one substring search away.
MARKER = "LEAKCHECK-7f3a9c"
MIXPANEL_SECRET = f"mp-{MARKER}"
SENDGRID_KEY = f"SG.{MARKER}"
TWILIO_TOKEN = f"tw-{MARKER}"
SLACK_PATH = f"/services/T0SANDBOX/B0SANDBOX/{MARKER}"  # the webhook's path is its secret
SERVICE_ACCOUNT = "notifier.sa"
PROJECT_ID = 4242
EMAILS = ("growth@example.com", "ceo@example.com")
PHONES = ("+14155550100", "+14155550101")

PUBLISHED = datetime(2026, 11, 28, 9, 0, 42, 123456, tzinfo=UTC)
WINDOW_START = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
WINDOW_END = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
SCHEDULED = b'{"lookback_minutes": 60}'

# What the settings read, plus what the publish command and the Google clients read.
ISOLATED_VARIABLES = (
    *NAMES,
    "PUBSUB_EMULATOR_HOST",
    "PUBSUB_PROJECT_ID",
    "NOTIFIER_TOPIC",
    "GOOGLE_CLOUD_PROJECT",
    "FIRESTORE_EMULATOR_HOST",
)
FAST = RetryPolicy(attempts=4, base_delay=0.5, max_delay=5.0, connect_timeout=2.0, read_timeout=3.0)


@pytest.fixture(autouse=True, scope="session")
def production_logging() -> None:
    """Log as the deployed function does: JSON lines, chatty client libraries held at WARNING."""
    logs.configure()


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads this machine's configuration by accident."""
    for name in ISOLATED_VARIABLES:
        monkeypatch.delenv(name, raising=False)


class LogLines(logging.Handler):
    """Every log record as the JSON line Cloud Logging would get."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def summaries(self) -> list[dict[str, Any]]:
        """The run summaries logged so far, oldest first, as Cloud Logging would read them."""
        return run_summaries("\n".join(self.lines))


@pytest.fixture(autouse=True)
def log_lines() -> Iterator[LogLines]:
    """Every test doubles as a leak check: no log line may carry a fake secret's marker."""
    handler = LogLines()
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)
    leaked = [line for line in handler.lines if MARKER in line]
    assert not leaked, f"a secret reached the log: {leaked[0][:300]}"


def _serve(server: StandIn, *, path_is_secret: bool = False) -> Iterator[StandIn]:
    """Run a stand-in for one test, then check nothing but an auth header ever carried a secret."""
    with server:
        yield server
    for request in server.requests:
        where = request.body.decode("utf-8", "replace") + repr(request.query)
        if not path_is_secret:
            where += request.path
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
def slack() -> Iterator[StandIn]:
    yield from _serve(SlackStandIn(path=SLACK_PATH), path_is_secret=True)


@pytest.fixture
def secret_manager() -> Iterator[StandIn]:
    yield from _serve(SecretManagerStandIn())


@pytest.fixture
def environ(mixpanel: MixpanelStandIn, sendgrid: SendGridStandIn, twilio: TwilioStandIn) -> dict[str, str]:
    """A configuration for email and SMS pointing at the stand-ins, secrets given as values."""
    return {
        "MIXPANEL_PROJECT_ID": str(PROJECT_ID),
        "MIXPANEL_SERVICE_ACCOUNT": SERVICE_ACCOUNT,
        "MIXPANEL_SECRET": MIXPANEL_SECRET,
        "EMAIL_TO": ",".join(EMAILS),
        "EMAIL_FROM": "Notifierator <alerts@example.com>",
        "SENDGRID_API_KEY": SENDGRID_KEY,
        "SMS_TO": ",".join(PHONES),
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


QUICK = RetryPolicy(attempts=3, base_delay=0.01, connect_timeout=1.0, read_timeout=1.0)


# Four instances racing for one Firestore transaction on a loaded machine need a few more tries.
CONTENDED = RetryPolicy(attempts=8, base_delay=0.01, connect_timeout=2.0, read_timeout=5.0)


def retrier(policy: RetryPolicy = QUICK, seconds: float = 30, *, sleep: Sleeps | None = None) -> Retrier:
    """A run's calls for a test: `seconds` of budget, a transport of its own, waits recorded or skipped."""
    return Retrier(policy, Deadline(seconds), Transport(), sleep=sleep or (lambda _s: None))


class Clock:
    """An injected wall clock: `now` for the run, advanced by hand between deliveries."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(PUBLISHED + timedelta(seconds=5))


@pytest.fixture
def services(sleeps: Sleeps, clock: Clock) -> Services:
    """Fresh per-instance services: instant waits, short timeouts, a clock just after PUBLISHED."""
    return Services(policy=FAST, sleep=sleeps, now=clock, rng=random.Random(7))


@dataclass
class World:
    """Every stand-in, the environment that points at them, and one instance's services."""

    mixpanel: MixpanelStandIn
    sendgrid: SendGridStandIn
    twilio: TwilioStandIn
    slack: SlackStandIn
    environ: dict[str, str]
    services: Services
    sleeps: Sleeps
    clock: Clock
    log: LogLines
    examples: int = field(default=0)  # for property tests that need a fresh message per example

    def users(self, *created: str) -> list[str]:
        """Mixpanel gains one profile per `created` ("2026-11-28T08:30:00"); their distinct ids."""
        start = len(self.mixpanel.profiles)
        ids = [f"added-{start + n}" for n in range(len(created))]
        self.mixpanel.profiles += [
            profile(distinct_id, when, name=f"User {distinct_id}", email=f"{distinct_id}@example.com")
            for distinct_id, when in zip(ids, created, strict=True)
        ]
        return ids

    def with_slack(self) -> World:
        """Turn the Slack channel on."""
        self.environ["SLACK_WEBHOOK_URL"] = self.slack.webhook_url
        return self

    def deliver(
        self, data: bytes = SCHEDULED, *, message_id: str = "msg-1", published: datetime = PUBLISHED
    ) -> RunSummary:
        """One delivery of a Pub/Sub message, as the function's handler gets it."""
        message = {
            "data": base64.b64encode(data).decode(),
            "messageId": message_id,
            "publishTime": published.isoformat().replace("+00:00", "Z"),
        }
        return handle_message(message, event_time=None, environ=self.environ, services=self.services)

    def redelivery(
        self, data: bytes = SCHEDULED, *, message_id: str = "msg-1", published: datetime = PUBLISHED
    ) -> dict[str, Any]:
        """One delivery that must ask Pub/Sub for a redelivery; its run summary as logged."""
        with pytest.raises(RedeliveryRequested):
            self.deliver(data, message_id=message_id, published=published)
        return self.log.summaries()[-1]

    def restart(self) -> None:
        """A fresh instance: new services (memory, caches), the same stand-ins and clock."""
        self.services = Services(
            policy=self.services.policy, sleep=self.sleeps, now=self.clock, rng=random.Random(8)
        )

    def emails(self) -> list[dict[str, Any]]:
        """Every accepted email body."""
        return self.sendgrid.mails()

    def inboxes(self) -> list[str]:
        """Every email recipient told, once per email they got."""
        return [p["to"][0]["email"] for mail in self.sendgrid.mails() for p in mail["personalizations"]]

    def texts(self) -> list[str]:
        """Every phone texted, once per text."""
        return [message["To"] for message in self.twilio.messages()]


@pytest.fixture
def world(
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    slack: SlackStandIn,
    environ: dict[str, str],
    services: Services,
    sleeps: Sleeps,
    clock: Clock,
    log_lines: LogLines,
) -> World:
    """Email and SMS configured (Slack with `with_slack()`), one user in the 08:00-09:00 window."""
    world = World(mixpanel, sendgrid, twilio, slack, environ, services, sleeps, clock, log_lines)
    mixpanel.profiles = [profile("u1", "2026-11-28T08:30:00", name="Ada", email="ada@example.com")]
    return world


@pytest.fixture(params=["memory", "firestore"])
def stores(request: pytest.FixtureRequest) -> Callable[[], StateStore]:
    """Makes a run history; for Firestore each call is a fresh client (a new instance), one database."""
    if request.param == "memory":
        memory = MemoryStore()
        return lambda: memory
    request.getfixturevalue("firestore")
    return lambda: open_firestore(database="(default)", retrier=retrier(CONTENDED))


@pytest.fixture(params=["memory", "firestore"])
def backend(request: pytest.FixtureRequest, world: World) -> World:
    """The world, with the run history on each backend in turn (Firestore: the emulator)."""
    if request.param == "firestore":
        world.environ.update({"STATE_STORE": "firestore", **request.getfixturevalue("firestore").environ})
    return world


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


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[Any]:
    """The Firestore emulator for the whole session (about 15 s to start); skipped, loudly, without it."""
    from sandbox.firestore import FirestoreEmulator, emulator_available

    if not emulator_available():
        pytest.skip(
            "the Firestore emulator is not installed (gcloud components install cloud-firestore-emulator; "
            "needs Java 17): the firestore backend is untested here"
        )
    with FirestoreEmulator() as emulator:
        yield emulator


@pytest.fixture
def firestore(firestore_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An empty Firestore history: the emulator cleared, its host and project in the environment."""
    firestore_emulator.clear()
    for name, value in firestore_emulator.environ.items():
        monkeypatch.setenv(name, value)
    return firestore_emulator


class NoteBook:
    """A Journal for channel tests: keeps what a channel notes; `allow` False refuses every send."""

    def __init__(self, *, allow: bool = True) -> None:
        self.allow = allow
        self.requests: list[tuple[str, tuple[str, ...]]] = []  # noted before going out
        self.outcomes: list[Any] = []  # each recipient's Delivery, as noted

    def note_sending(self, channel: str, recipients: tuple[str, ...]) -> bool:
        self.requests.append((channel, recipients))
        return self.allow

    def note_outcome(self, delivery: Any) -> None:
        self.outcomes.append(delivery)
