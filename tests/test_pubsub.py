"""The production delivery path on the real Pub/Sub emulator: topic, push subscription, function.

Skipped, with the reason, where the emulator (a gcloud component needing Java) is not installed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from notifier.cli import main as publish_main
from sandbox.function import FunctionProcess, run_summaries
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.pubsub import PubSubEmulator, emulator_binary
from sandbox.sendgrid import SendGridStandIn
from sandbox.server import Fault
from sandbox.slack import SlackStandIn
from sandbox.twilio import TwilioStandIn
from tests.terraform_config import scheduler_payload

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        emulator_binary() is None,
        reason="the Pub/Sub emulator is not installed (gcloud components install pubsub-emulator, Java 17)",
    ),
]


@pytest.fixture(scope="module")
def emulator() -> Iterator[PubSubEmulator]:
    with PubSubEmulator() as running:
        yield running


@pytest.fixture
def recent_user(mixpanel: MixpanelStandIn) -> None:
    created = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    mixpanel.profiles = [
        profile("u1", created.strftime("%Y-%m-%dT%H:%M:%S"), name="Ada", email="ada@example.com")
    ]


@pytest.fixture
def wired(
    emulator: PubSubEmulator, environ: dict[str, str], slack: SlackStandIn, tmp_path: Path, recent_user: None
) -> Iterator[dict[str, Any]]:
    """The function in its own process, pushed to by a fresh topic's subscription; all three channels."""
    log_path = tmp_path / "function.log"
    environ["RUN_BUDGET_SECONDS"] = "5"
    environ["SLACK_WEBHOOK_URL"] = slack.webhook_url
    with log_path.open("w") as log, FunctionProcess(environ, log=log) as function:
        topic = f"notifier-{uuid.uuid4().hex[:8]}"
        emulator.push_topic(topic, function.url + "/")
        yield {"topic": topic, "log": log_path}


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def summaries(log_path: Path) -> list[dict[str, Any]]:
    return run_summaries(log_path.read_text(encoding="utf-8"))


def test_the_scheduler_payload_reaches_the_function_and_everyone_is_told(
    emulator: PubSubEmulator,
    wired: dict[str, Any],
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    slack: SlackStandIn,
) -> None:
    payload = scheduler_payload()
    assert payload == b'{"lookback_minutes":60}'
    emulator.publish(wired["topic"], payload)
    # The summary is the run's last line: once it is there, every send has happened.
    assert wait_for(lambda: len(summaries(wired["log"])) == 1)
    assert len(twilio.messages()) == 2
    assert len(sendgrid.mails()) == 1
    assert len(slack.messages()) == 1
    assert [s["outcome"] for s in summaries(wired["log"])] == ["sent"]


def test_transient_failures_make_pubsub_redeliver_the_same_window_which_is_sent_once(
    emulator: PubSubEmulator,
    wired: dict[str, Any],
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
) -> None:
    # A Retry-After past the run's budget makes each run give up at once and answer 500.
    mixpanel.script(Fault.status(503, retry_after="3600"), Fault.status(503, retry_after="3600"))
    emulator.publish(wired["topic"], scheduler_payload())
    assert wait_for(lambda: len(summaries(wired["log"])) == 3, timeout=60)
    time.sleep(2)  # room for a wrong extra delivery to show up
    assert len(sendgrid.mails()) == 1
    assert len(twilio.messages()) == 2
    assert [s["outcome"] for s in summaries(wired["log"])] == ["will_retry", "will_retry", "sent"]
    wheres = {r.form()["where"] for r in mixpanel.requests}
    assert len(mixpanel.requests) == 3
    assert len(wheres) == 1  # every delivery asked for the same window
    assert len({json.dumps(s["window"]) for s in summaries(wired["log"])}) == 1


def test_a_bad_message_is_acked_and_not_redelivered(
    emulator: PubSubEmulator, wired: dict[str, Any], mixpanel: MixpanelStandIn
) -> None:
    emulator.publish(wired["topic"], b'{"lookback_minutes": "an hour"}')
    assert wait_for(lambda: len(summaries(wired["log"])) >= 1)
    time.sleep(3)  # the emulator redelivers a failed push within about a second
    assert [s["outcome"] for s in summaries(wired["log"])] == ["bad_message"]
    assert mixpanel.requests == []


def test_the_publish_command_sends_a_validated_message_through_the_emulator(
    emulator: PubSubEmulator,
    wired: dict[str, Any],
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    code = publish_main(
        [
            "publish",
            "--project",
            emulator.project,
            "--topic",
            wired["topic"],
            "--lookback",
            "60",
            "--channels",
            "email",
        ],
        environ={},
    )
    assert code == 0
    assert "message id" in capsys.readouterr().out
    assert wait_for(lambda: len(summaries(wired["log"])) == 1)
    assert twilio.requests == []


def test_publishing_to_a_missing_topic_is_one_line_with_the_fix(
    emulator: PubSubEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    code = publish_main(["publish", "--project", emulator.project, "--topic", "nowhere"], environ={})
    assert code == 1
    assert capsys.readouterr().err == (
        f"not published: projects/{emulator.project}/topics/nowhere does not exist: `make sandbox` creates "
        "it on the emulator, or name the right one with --project and --topic\n"
    )
