"""The deployed entry point, `main.notify`, driven as Cloud Functions drives it: CloudEvents over HTTP."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from sandbox.function import FunctionProcess, push_envelope
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.secretmanager import SecretManagerStandIn
from sandbox.sendgrid import SendGridStandIn
from sandbox.server import Fault
from sandbox.twilio import TwilioStandIn
from tests.conftest import MARKER, MIXPANEL_SECRET, SENDGRID_KEY, TWILIO_TOKEN

# The deployed function checks message age against the real clock, so these messages are fresh.
NOW = datetime.now(UTC)
WINDOW_END = NOW.replace(second=0, microsecond=0)


def minutes_before_end(minutes: float) -> str:
    return (WINDOW_END - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S")


IN_WINDOW = minutes_before_end(30)


def pubsub_cloud_event_headers() -> dict[str, str]:
    return {
        "ce-id": "1234",
        "ce-specversion": "1.0",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/notifier-trigger",
        "ce-time": NOW.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "Content-Type": "application/json",
    }


def test_a_pubsub_cloudevent_sends_the_email_and_the_sms(
    function: FlaskClient,
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
) -> None:
    mixpanel.profiles = [profile("u1", IN_WINDOW, name="Ada", email="ada@example.com")]
    data = {
        "message": {
            "data": base64.b64encode(b'{"lookback_minutes": 60}').decode(),
            "messageId": "1234",
            "publishTime": NOW.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
        "subscription": "projects/p/subscriptions/s",
    }
    response = function.post("/", headers=pubsub_cloud_event_headers(), data=json.dumps(data))
    assert response.status_code == 200
    assert len(sendgrid.mails()) == 1
    assert len(twilio.messages()) == 2


def test_a_raw_pubsub_push_envelope_is_converted_and_handled(
    function: FlaskClient,
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
) -> None:
    mixpanel.profiles = [profile("u1", IN_WINDOW, name="Ada", email="ada@example.com")]
    response = function.post("/", json=push_envelope({"channels": ["email"]}, publish_time=NOW))
    assert response.status_code == 200
    assert len(sendgrid.mails()) == 1


def test_a_bad_message_is_acked_with_200(function: FlaskClient, mixpanel: MixpanelStandIn) -> None:
    response = function.post("/", json=push_envelope(b"not json", publish_time=NOW))
    assert response.status_code == 200
    assert mixpanel.requests == []


@pytest.mark.slow
def test_end_to_end_in_a_functions_framework_process_with_secret_manager(
    environ: dict[str, str],
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    secret_manager: SecretManagerStandIn,
) -> None:
    names = {
        "MIXPANEL_SECRET": ("projects/e2e/secrets/mixpanel/versions/3", MIXPANEL_SECRET),
        "SENDGRID_API_KEY": ("projects/e2e/secrets/sendgrid/versions/1", SENDGRID_KEY),
        "TWILIO_AUTH_TOKEN": ("projects/e2e/secrets/twilio/versions/latest", TWILIO_TOKEN),
    }
    for variable, (name, value) in names.items():
        secret_manager.secrets[name] = value
        environ[variable] = name
    environ["SECRET_MANAGER_API_URL"] = secret_manager.url
    mixpanel.profiles = [
        profile("u1", minutes_before_end(50), name="Ada <b>Lovelace</b>", email="ada@example.com"),
        profile("u2", minutes_before_end(40), name="Grace Hopper", email="grace@example.com"),
        profile("out", minutes_before_end(0), name="Next Window", email="next@example.com"),
    ]
    with FunctionProcess(environ) as function:
        response = function.push(push_envelope({"lookback_minutes": 60}, publish_time=NOW))
        assert response.status_code == 200, response.text
        again = function.push(
            push_envelope({"lookback_minutes": 60, "channels": ["email"]}, publish_time=NOW)
        )
        assert again.status_code == 200
    mails = sendgrid.mails()
    assert len(mails) == 2
    html = mails[0]["content"][1]["value"]
    assert "Ada &lt;b&gt;Lovelace&lt;/b&gt;" in html
    assert "Next Window" not in html
    assert [m["To"] for m in twilio.messages()] == ["+14155550100", "+14155550101"]
    assert twilio.messages()[0]["Body"].startswith("Mixpanel project 4242: 2 new users ")
    assert twilio.messages()[0]["Body"].endswith(": Ada <b>Lovelace</b>, Grace Hopper")
    assert secret_manager.reads() == 3  # two runs in one process, each secret read once


@pytest.mark.slow
def test_a_provider_echoing_every_secret_in_a_503_leaves_none_in_the_functions_output(
    environ: dict[str, str], mixpanel: MixpanelStandIn, tmp_path: Path
) -> None:
    # What functions-framework prints for a redelivery (the raised exception) is outside our log
    # formatter: it must carry no provider words at all.
    echo = f"bad credentials: {environ['MIXPANEL_SECRET']} {environ['SENDGRID_API_KEY']}"
    mixpanel.script(*[Fault.status(503, body={"error": echo})] * 10)
    environ["RUN_BUDGET_SECONDS"] = "2"
    log = tmp_path / "function.log"
    with log.open("w") as stream, FunctionProcess(environ, log=stream) as function:
        response = function.push(push_envelope({"lookback_minutes": 60}, publish_time=NOW))
    assert response.status_code == 500
    output = log.read_text() + response.text
    assert "RedeliveryRequested" in output
    assert MARKER not in output
