"""`make demo`: the whole job on this machine, no accounts needed.

Starts the stand-ins for Mixpanel, SendGrid, Twilio, Slack and Secret Manager, and the Firestore and
Pub/Sub emulators where gcloud has them; runs the function in a real functions-framework process;
delivers it the scheduler's message (through Pub/Sub, else as a direct push), then the same message a
second time, as Pub/Sub does after a lost ack, which sends nothing. Shows what was sent and writes it
to demo-output/: the email (HTML, text, the CSV) and the Slack payload.

The sample project uses what the digest tells (a segment, a breakdown, the companies: its
DIGEST_SETTINGS), so the email shows them; the phone and desktop screenshots are of that email.
Last, a night of quiet hours for texts (SMS_QUIET_HOURS), run through the function's handler with a
clock that walks from 21:00 to 08:00: no text during the night, then one that counts everyone.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import IO, Any, TypeVar
from zoneinfo import ZoneInfo

import requests

from notifier.run import handle_message
from notifier.services import Services
from sandbox.browser import DESKTOP, INSTALL_HINT, PHONE, BrowserError, Chromium, chromium_path
from sandbox.emulator import Emulator
from sandbox.firestore import FirestoreEmulator, emulator_available
from sandbox.function import ROOT, FunctionProcess, push_envelope, run_summaries
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.pubsub import PubSubEmulator, emulator_binary
from sandbox.samples import (
    DIGEST_SETTINGS,
    ODD_NAMES,
    PAYLOAD,
    function_environ,
    sample_stand_ins,
    secret_name,
)
from sandbox.sendgrid import SendGridStandIn
from sandbox.slack import SlackStandIn, as_text
from sandbox.twilio import TwilioStandIn

OUTPUT = ROOT / "demo-output"
TOPIC = "notifierator-trigger"
EmulatorT = TypeVar("EmulatorT", bound=Emulator)


@dataclass
class DemoResult:
    """What the demo saw: each delivery's run summary, and what reached the stand-ins."""

    summaries: list[dict[str, Any]] = field(default_factory=list)
    emails: int = 0
    texts: int = 0
    slack_messages: int = 0
    state_store: str = "memory"
    files: list[Path] = field(default_factory=list)
    morning_text: str = ""  # the first SMS after quiet hours, as the preview renders it

    @property
    def ok(self) -> bool:
        """The first delivery sent everything; the second sent nothing."""
        outcomes = [summary.get("outcome") for summary in self.summaries]
        return outcomes == ["sent", "already_sent"] and self.emails == 1 and self.slack_messages == 1


def main() -> int:
    """Run the demo, print what was sent; 0 when the first delivery sent and the second did not."""
    return 0 if run_demo(OUTPUT).ok else 1


def run_demo(output: Path) -> DemoResult:
    """The demo, writing its files to `output`."""
    output.mkdir(exist_ok=True)
    for stale in output.glob("new-users-*.csv*"):
        stale.unlink()
    print(f"Odd names on purpose: the sample sign-ups include {ODD_NAMES},")
    print("to show every message escaping them (the email's HTML, Slack, the CSV). One internal user")
    print("(ivy@eng.acme.com) is there to be left out by EXCLUDE_EMAIL_DOMAINS=acme.com.\n")
    now = datetime.now(UTC)
    result = DemoResult()
    with ExitStack() as stack:
        # The emulators take seconds (Firestore about 10-15): start them side by side, first.
        firestore, pubsub = _start_emulators(stack, output)
        mixpanel, sendgrid, twilio, slack, secret_manager = sample_stand_ins(
            now.replace(second=0, microsecond=0)
        )
        for stand_in in (mixpanel, sendgrid, twilio, slack, secret_manager):
            stack.enter_context(stand_in)
        secret_manager.secrets[secret_name("slack-webhook-url")] = slack.webhook_url
        environ = function_environ(mixpanel, sendgrid, twilio, secret_manager)
        print("Stand-ins: Mixpanel", mixpanel.url, "| SendGrid", sendgrid.url, "| Twilio", twilio.url)
        print("           Slack", slack.url, "| Secret Manager", secret_manager.url)
        firestore_emulator = firestore.result() if firestore else None
        if firestore_emulator is not None:
            environ.update({"STATE_STORE": "firestore", **firestore_emulator.environ})
            result.state_store = "firestore"
            print(f"Run history: the Firestore emulator on {firestore_emulator.host} (STATE_STORE=firestore)")
        log_path = output / "function.log"
        log = stack.enter_context(log_path.open("w"))
        _deliver_twice(environ, log, log_path, pubsub.result() if pubsub else None, now)
        result.summaries = _summaries(log_path)
        result.emails, result.texts = len(sendgrid.mails()), len(twilio.messages())
        result.slack_messages = len(slack.messages())
        result.files = _report(result, sendgrid, twilio, slack, output)
        result.morning_text = _quiet_night(environ, mixpanel, twilio, now)
    return result


# -- emulators --------------------------------------------------------------------------------------
def _start_emulators(
    stack: ExitStack, output: Path
) -> tuple[Future[FirestoreEmulator | None] | None, Future[PubSubEmulator | None] | None]:
    """Start the Firestore and Pub/Sub emulators in parallel where installed; each says if it is not."""
    pool = stack.enter_context(ThreadPoolExecutor(max_workers=2))
    firestore: Future[FirestoreEmulator | None] | None = None
    pubsub: Future[PubSubEmulator | None] | None = None
    if emulator_available():
        log = stack.enter_context((output / "firestore-emulator.log").open("w"))
        firestore = pool.submit(_start, stack, FirestoreEmulator(log=log))
    else:
        print("Firestore emulator not installed: the run history stays in the function's memory")
        print("  (gcloud components install cloud-firestore-emulator; Java 17)")
    if emulator_binary() is not None:
        log = stack.enter_context((output / "pubsub-emulator.log").open("w"))
        pubsub = pool.submit(_start, stack, PubSubEmulator(log=log))
    else:
        print("Pub/Sub emulator not installed: the scheduler's message is pushed straight to the function")
    return firestore, pubsub


def _start(stack: ExitStack, emulator: EmulatorT) -> EmulatorT | None:
    try:
        emulator.start()
        if isinstance(emulator, FirestoreEmulator):
            # Its JVM answers the first requests in seconds: warm it here, beside Pub/Sub's start,
            # rather than inside the first run.
            emulator.documents("runs")
    except (RuntimeError, TimeoutError, OSError, requests.RequestException) as error:
        fallback = "memory" if isinstance(emulator, FirestoreEmulator) else "a direct push"
        print(f"The {emulator.name} emulator did not start ({error}): using {fallback} instead")
        return None
    stack.callback(emulator.stop)
    return emulator


# -- deliveries -------------------------------------------------------------------------------------
def _deliver_twice(
    environ: dict[str, str], log: IO[str], log_path: Path, pubsub: PubSubEmulator | None, now: datetime
) -> None:
    """The scheduler's message, then the same message again, as Pub/Sub redelivers after a lost ack.

    Firestore's history holds across instances, so there the redelivery goes to a fresh process, as
    after a scale-down; the memory store remembers only on the instance that served the message.
    """
    across_instances = environ.get("STATE_STORE") == "firestore"
    with FunctionProcess(environ, log=log) as function:
        print(f"Function: functions-framework on {function.url}")
        envelope = _first_delivery(function, pubsub, now)
        _wait_for(lambda: len(_summaries(log_path)) >= 1)
        if not across_instances:
            _redeliver(function, envelope, "the same instance: its memory", log_path)
    if across_instances:
        with FunctionProcess(environ, log=log) as fresh:
            _redeliver(
                fresh, envelope, "a fresh instance (a new process): only the Firestore history", log_path
            )


def _first_delivery(
    function: FunctionProcess, pubsub: PubSubEmulator | None, now: datetime
) -> dict[str, Any]:
    """Deliver the scheduler's message, through Pub/Sub when it runs; the message as a push carries it."""
    if pubsub is None:
        envelope = push_envelope(PAYLOAD, publish_time=now, message_id="demo-1")
        response = function.push(envelope)
        print(f"Pushed {PAYLOAD.decode()} to the function: HTTP {response.status_code}")
        return envelope
    pubsub.push_topic(TOPIC, function.url + "/")
    # A second, pull subscription keeps a copy: its id and publishTime make the redelivery.
    copy = pubsub.pull_subscription(TOPIC, f"{TOPIC}-copy")
    message_id = pubsub.publish(TOPIC, PAYLOAD)
    print(f"Pub/Sub emulator on {pubsub.host}: published {PAYLOAD.decode()} as message {message_id}")
    message = pubsub.pull(copy)
    return push_envelope(message.data, publish_time=message.publish_time, message_id=message_id)


def _redeliver(function: FunctionProcess, envelope: dict[str, Any], where: str, log_path: Path) -> None:
    message_id = envelope["message"]["messageId"]
    print(f"\nDelivering message {message_id} again, to {where} keeps it from repeating")
    response = function.push(envelope)
    print(f"Function answered HTTP {response.status_code}")
    _wait_for(lambda: len(_summaries(log_path)) >= 2)


# -- the report -------------------------------------------------------------------------------------
def _report(
    result: DemoResult, sendgrid: SendGridStandIn, twilio: TwilioStandIn, slack: SlackStandIn, output: Path
) -> list[Path]:
    files: list[Path] = []
    first, second = [*result.summaries, {}, {}][:2]
    print("\n== Run summary of the first delivery (the function's last log line) ==")
    print(json.dumps(first, indent=2) if first else "(none found; see function.log)")
    print("\n== Second delivery of the same message ==")
    channels = {name: channel.get("outcome") for name, channel in second.get("channels", {}).items()}
    print(f"outcome {second.get('outcome')}, channels {channels}")
    print(f"emails at the SendGrid stand-in: {result.emails}, Slack messages: {result.slack_messages}")
    print("\n== SMS ==")
    for message in twilio.messages():
        print(f"to {message['To']}: {message['Body']}  ({len(message['Body'])} chars)")
    print("\n== Slack (as it reads in the channel) ==")
    for payload in slack.messages():
        print(as_text(payload))
        files.append(_write(output / "slack.json", json.dumps(payload, indent=2, ensure_ascii=False)))
    print("\n== Email ==")
    mails = sendgrid.mails()
    if not mails:
        print("(no email was sent)")
        return files
    mail = mails[0]
    print("Subject:", mail["subject"])
    print("To (one personalization each):", ", ".join(p["to"][0]["email"] for p in mail["personalizations"]))
    parts = {content["type"]: content["value"] for content in mail["content"]}
    html = parts["text/html"]
    files.append(_write(output / "email.html", html))
    files.append(_write(output / "email.txt", parts["text/plain"]))
    files += _screenshots(html, output)
    for attachment in mail.get("attachments", []):
        path = output / attachment["filename"]
        path.write_bytes(base64.b64decode(attachment["content"]))
        print("Attachment:", attachment["filename"])
        files.append(path)
    print("\nWritten:", ", ".join(str(path.relative_to(output.parent)) for path in files))
    print("Function log:", output / "function.log")
    return files


# -- a night of quiet hours ------------------------------------------------------------------------
NIGHT_SIGN_UPS = ((22, 40), (1, 5), (3, 30), (6, 15), (7, 20))  # local times, from the evening on


def _quiet_night(
    environ: dict[str, str], mixpanel: MixpanelStandIn, twilio: TwilioStandIn, now: datetime
) -> str:
    """Last night's ticks, 21:00 to 08:00 in TIMEZONE, through the function's handler (its own memory
    history, a clock set to each tick): the texts held during SMS_QUIET_HOURS, then the first text."""
    zone = ZoneInfo(environ["TIMEZONE"])
    evening = datetime.combine((now.astimezone(zone) - timedelta(days=1)).date(), clock_time(21), zone)
    for number, (hour, minute) in enumerate(NIGHT_SIGN_UPS):
        when = evening.replace(hour=hour, minute=minute) + timedelta(days=hour < 12)
        created = f"{when.astimezone(UTC):%Y-%m-%dT%H:%M:%S}"
        owl = profile(f"night-{number}", created, name=f"Night owl {number}")
        owl["$properties"]["plan"] = "pro"  # kept by the sample project's MIXPANEL_FILTER
        mixpanel.profiles.append(owl)
    clock = [evening]
    services = Services(now=lambda: clock[0])
    night = {**environ, "SMS_QUIET_HOURS": DIGEST_SETTINGS["SMS_QUIET_HOURS"], "STATE_STORE": "memory"}
    print(f"\n== A night of quiet hours: SMS_QUIET_HOURS={night['SMS_QUIET_HOURS']} in {zone.key} ==")
    texts_before = len(twilio.messages())
    for hours in range(12):
        tick = (evening + timedelta(hours=hours)).astimezone(UTC)
        clock[0] = tick + timedelta(seconds=5)
        message = push_envelope(PAYLOAD, publish_time=tick, message_id=f"night-{hours}")["message"]
        summary = handle_message(message, event_time=None, environ=night, services=services)
        held = f", {summary.texts_held} held for the morning" if summary.texts_held else ""
        texted = len(twilio.messages()) - texts_before
        print(f"{tick.astimezone(zone):%H:%M}: {summary.users} new{held}; texts so far: {texted}")
    morning = [m["Body"] for m in twilio.messages()[texts_before:]]
    print(f"The first text after the night: {morning[0] if morning else '(none)'}")
    return morning[0] if morning else ""


def _screenshots(html: str, output: Path) -> list[Path]:
    """The email's first screenful on a phone (390 px) and a desktop (1,200 px), where Chromium is."""
    if chromium_path() is None:
        print(f"Screenshots skipped: Chromium is not installed ({INSTALL_HINT})")
        return []
    shots = []
    try:
        with Chromium() as browser:
            for name, viewport in (("email-phone.png", PHONE), ("email-desktop.png", DESKTOP)):
                browser.show(html, viewport)
                path = output / name
                path.write_bytes(browser.screenshot())
                shots.append(path)
    except BrowserError as error:
        print(f"Screenshots skipped: {error}")
    return shots


# -- small helpers ----------------------------------------------------------------------------------
def _summaries(log_path: Path) -> list[dict[str, Any]]:
    return run_summaries(log_path.read_text(encoding="utf-8"))


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        time.sleep(0.1)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


if __name__ == "__main__":
    sys.exit(main())
