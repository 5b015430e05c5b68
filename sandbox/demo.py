"""`make demo`: the whole job on this machine, no accounts needed.

Starts the stand-ins for Mixpanel, SendGrid, Twilio and Secret Manager, runs the function in a real
functions-framework process, delivers it the scheduler's message (through the Pub/Sub emulator when
gcloud has it, else as a direct push), and shows what was sent.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox.function import ROOT, FunctionProcess, push_envelope
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.pubsub import PubSubEmulator, emulator_binary
from sandbox.secretmanager import SecretManagerStandIn
from sandbox.sendgrid import SendGridStandIn
from sandbox.twilio import ACCOUNT_SID, SENDER, TwilioStandIn

OUTPUT = ROOT / "demo-output"
PAYLOAD = b'{"lookback_minutes":60}'  # what the Cloud Scheduler job publishes (terraform/scheduler.tf)
SECRETS = {
    "projects/demo/secrets/mixpanel-secret/versions/latest": "demo-mixpanel-secret",
    "projects/demo/secrets/sendgrid-api-key/versions/latest": "SG.demo-key",
    "projects/demo/secrets/twilio-auth-token/versions/latest": "demo-twilio-token",
}


def sample_profiles(window_end: datetime) -> list[dict[str, Any]]:
    """Profiles inside and outside the last hour, with the awkward names real data has."""

    def at(minutes_before_end: float) -> str:
        return (window_end - timedelta(minutes=minutes_before_end)).strftime("%Y-%m-%dT%H:%M:%S")

    return [
        profile("u-1", at(55), name="Ada Lovelace", email="ada@example.com"),
        profile("u-2", at(41), first_name="Grace", last_name="Hopper", email="grace@example.com"),
        profile("u-3", at(30), name="<script>alert('x')</script>", email="mallory@example.com"),
        profile("u-4", at(22), name="Zoë Ångström-Łukasiewicz", email="zoe@example.com"),
        profile("u-5", at(15), name="李雷 🎉", email="li@example.com"),
        profile("u-6", at(9), email="no-name@example.com"),
        profile("u-7", at(3), name="Nomail Person"),
        profile("u-8", at(0.5), name='=HYPERLINK("http://evil.example")', email="formula@example.com"),
        profile("early", at(61), name="Before The Window", email="early@example.com"),
        profile("late", at(-1), name="After The Window", email="late@example.com"),
        {"$distinct_id": "no-created", "$properties": {"$name": "No Created Property"}},
    ]


def sample_stand_ins(
    window_end: datetime,
) -> tuple[MixpanelStandIn, SendGridStandIn, TwilioStandIn, SecretManagerStandIn]:
    """The stand-ins a local run talks to (not started): the sample profiles, the secrets by name."""
    mixpanel = MixpanelStandIn(
        sample_profiles(window_end), username="demo.sa", secret=SECRETS[secret_name("mixpanel-secret")]
    )
    sendgrid = SendGridStandIn(api_key=SECRETS[secret_name("sendgrid-api-key")])
    twilio = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=SECRETS[secret_name("twilio-auth-token")])
    return mixpanel, sendgrid, twilio, SecretManagerStandIn(SECRETS)


def function_environ(
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    secret_manager: SecretManagerStandIn,
) -> dict[str, str]:
    """The function's environment for these stand-ins; secrets are Secret Manager version names."""
    return {
        "MIXPANEL_PROJECT_ID": str(mixpanel.project_id),
        "MIXPANEL_SERVICE_ACCOUNT": mixpanel.username or "",
        "MIXPANEL_SECRET": secret_name("mixpanel-secret"),
        "EMAIL_TO": "growth@example.com,founders@example.com",
        "EMAIL_FROM": "Notifierator <alerts@example.com>",
        "SENDGRID_API_KEY": secret_name("sendgrid-api-key"),
        "SMS_TO": "+14155550100,+447700900123",
        "SMS_FROM": SENDER,
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": secret_name("twilio-auth-token"),
        "MIXPANEL_API_URL": mixpanel.url,
        "SENDGRID_API_URL": sendgrid.url,
        "TWILIO_API_URL": twilio.url,
        "SECRET_MANAGER_API_URL": secret_manager.url,
    }


def main() -> int:
    """Run the demo and print what would be sent."""
    OUTPUT.mkdir(exist_ok=True)
    now = datetime.now(UTC)
    window_end = now.replace(second=0, microsecond=0)
    mixpanel, sendgrid, twilio, secret_manager = sample_stand_ins(window_end)
    log_path = OUTPUT / "function.log"
    with mixpanel, sendgrid, twilio, secret_manager, log_path.open("w") as log:
        environ = {
            **function_environ(mixpanel, sendgrid, twilio, secret_manager),
            "TIMEZONE": "Europe/Berlin",
            "EMAIL_ROW_LIMIT": "5",
        }
        print(
            "Stand-ins: Mixpanel",
            mixpanel.url,
            "| SendGrid",
            sendgrid.url,
            "| Twilio",
            twilio.url,
            "| Secret Manager",
            secret_manager.url,
        )
        with FunctionProcess(environ, log=log) as function:
            print(f"Function: functions-framework on {function.url}")
            if not _through_the_emulator(function, log_path):
                response = function.push(push_envelope(PAYLOAD, publish_time=now))
                print(f"Function answered HTTP {response.status_code}")
        log.flush()
    return _report(sendgrid, twilio, log_path)


def _through_the_emulator(function: FunctionProcess, log_path: Path) -> bool:
    """Publish the scheduler's payload to a topic whose push subscription calls the function.

    False when the emulator is missing or will not start; the caller then pushes directly.
    """
    if emulator_binary() is None:
        print("Pub/Sub emulator not installed: pushing the scheduler's message straight to the function")
        return False
    try:
        return _publish_through_emulator(function, log_path)
    except (RuntimeError, TimeoutError) as error:
        print(f"Pub/Sub emulator did not start ({error}): pushing the message straight to the function")
        return False


def _publish_through_emulator(function: FunctionProcess, log_path: Path) -> bool:
    with (
        (OUTPUT / "pubsub-emulator.log").open("w") as emulator_log,
        PubSubEmulator(log=emulator_log) as emulator,
    ):
        emulator.push_topic("notifierator-trigger", function.url + "/")
        message_id = emulator.publish("notifierator-trigger", PAYLOAD)
        print(f"Pub/Sub emulator on {emulator.host}: published {PAYLOAD.decode()} as message {message_id}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _summary_line(log_path) is None:
            time.sleep(0.2)
    return True


def _report(sendgrid: SendGridStandIn, twilio: TwilioStandIn, log_path: Path) -> int:
    summary = _summary_line(log_path)
    print("\n== Run summary (the function's last log line) ==")
    print(json.dumps(summary, indent=2) if summary else f"(none found; see {log_path})")
    print("\n== SMS ==")
    for message in twilio.messages():
        print(f"to {message['To']}: {message['Body']}  ({len(message['Body'])} chars)")
    mails = sendgrid.mails()
    print("\n== Email ==")
    if not mails:
        print("(no email was sent)")
        return 1
    mail = mails[0]
    html = next(c["value"] for c in mail["content"] if c["type"] == "text/html")
    html_path = OUTPUT / "email.html"
    html_path.write_text(html, encoding="utf-8")
    print("Subject:", mail["subject"])
    print("To (one personalization each):", ", ".join(p["to"][0]["email"] for p in mail["personalizations"]))
    for attachment in mail.get("attachments", []):
        print("Attachment:", attachment["filename"])
    print("Rendered email saved to", html_path)
    print("Function log:", log_path)
    return 0 if summary and summary.get("outcome") == "sent" else 1


def _summary_line(log_path: Path) -> dict[str, Any] | None:
    found = None
    for line in log_path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == "run_summary":
            found = entry
    return found


def secret_name(secret: str) -> str:
    return f"projects/demo/secrets/{secret}/versions/latest"


if __name__ == "__main__":
    sys.exit(main())
