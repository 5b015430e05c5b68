"""`python -m notifier publish`: messages are checked with the function's parser before publishing.

Publishing itself is tested against the real Pub/Sub emulator in test_pubsub.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from notifier.cli import main, parser
from notifier.publish import DEFAULT_TOPIC, build_message
from sandbox.function import free_port, silent_port
from tests.deploy_script import ROOT, dry_run, example_settings


class NoPublisher:
    """Fails the test if anything is published."""

    def topic_path(self, project: str, topic: str) -> str:
        return f"projects/{project}/topics/{topic}"

    def publish(self, *_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("nothing may be published for an invalid message")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--lookback", "0"], "lookback_minutes"),
        (["--lookback", "44641"], "lookback_minutes"),
        (["--start", "2026-11-01T00:00:00Z"], "both or neither"),
        (["--start", "2026-11-02T00:00:00Z", "--end", "2026-11-01T00:00:00Z"], "before end"),
        (["--start", "2026-11-01", "--end", "2026-11-02T00:00:00Z"], "RFC 3339"),
        (["--channels", "fax"], "channels"),
        (["--channels", ""], "non-empty"),  # not {}: that would mean every channel
        (["--channels", " , "], "non-empty"),
        # publish does not know the function's TIMEZONE: a window must be shown in every zone.
        (["--start", "9999-12-31T22:00:00Z", "--end", "9999-12-31T23:00:00Z"], "year 10000"),
        (["--start", "0001-01-01T00:00:00Z", "--end", "0001-01-01T01:00:00Z"], "year 1"),
    ],
)
def test_an_invalid_message_is_refused_before_publishing(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["publish", "--project", "p", *argv], environ={}, publisher=NoPublisher())
    assert code == 2
    assert says in capsys.readouterr().err


def test_the_message_holds_exactly_what_was_asked() -> None:
    args = parser({}).parse_args(
        [
            "publish",
            "--project",
            "p",
            "--start",
            "2026-11-01T00:00:00Z",
            "--end",
            "2026-11-02T00:00:00Z",
            "--dry-run",
            "--channels",
            "email, sms",
        ]
    )
    assert json.loads(build_message(args)) == {
        "start": "2026-11-01T00:00:00Z",
        "end": "2026-11-02T00:00:00Z",
        "dry_run": True,
        "channels": ["email", "sms"],
    }


def test_no_options_publish_an_empty_object_which_means_the_default_window() -> None:
    assert build_message(parser({}).parse_args(["publish", "--project", "p"])) == b"{}"


def test_project_and_topic_default_from_the_environment() -> None:
    args = parser({"GOOGLE_CLOUD_PROJECT": "from-env"}).parse_args(["publish"])
    assert (args.project, args.topic) == ("from-env", DEFAULT_TOPIC)
    args = parser({"PUBSUB_PROJECT_ID": "emu", "NOTIFIER_TOPIC": "t-x"}).parse_args(["publish"])
    assert (args.project, args.topic) == ("emu", "t-x")


def test_with_the_emulator_the_project_is_the_emulator_s() -> None:
    emulator = {"PUBSUB_EMULATOR_HOST": "127.0.0.1:9106", "PUBSUB_PROJECT_ID": "local-project"}
    args = parser({"GOOGLE_CLOUD_PROJECT": "my-real-project", **emulator}).parse_args(["publish"])
    assert args.project == "local-project"
    args = parser({"GOOGLE_CLOUD_PROJECT": "my-real-project", "PUBSUB_PROJECT_ID": "x"}).parse_args(
        ["publish"]
    )
    assert args.project == "my-real-project"


def test_without_google_credentials_it_says_so_in_one_line_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No metadata-server probe, no gcloud credentials on disk, no emulator.
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    code = main(["publish", "--project", "p", "--lookback", "60"], environ={})
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no Google credentials" in err
    assert "application-default login" in err


def test_the_default_topic_is_the_one_both_deployments_create(tmp_path: Path) -> None:
    created = dry_run(example_settings(), tmp_path).command("gcloud", "pubsub", "topics", "create")
    assert created[4] == DEFAULT_TOPIC == "notifierator-trigger"


def test_the_readme_publishes_to_the_deployed_topic() -> None:
    readme = (ROOT / "README.md").read_text()
    topics = re.findall(r"pubsub topics publish (\S+)", readme) + re.findall(r"--topic (\S+)", readme)
    assert topics
    assert set(topics) == {DEFAULT_TOPIC}


@pytest.mark.parametrize("kind", ["nothing listens", "nothing answers"])
def test_an_unreachable_pubsub_is_one_line_with_the_fix_after_the_wait(
    kind: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with silent_port() as silent:
        host = f"127.0.0.1:{free_port() if kind == 'nothing listens' else silent}"
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", host)
        code = main(["publish", "--project", "p", "--wait", "0.5"], environ={})
    assert code == 1
    err = capsys.readouterr().err
    assert err == (
        f"not published: the Pub/Sub emulator at {host} did not answer within 0.5 s: is `make sandbox` "
        "running? It prints the PUBSUB_EMULATOR_HOST to export\n"
    )


@pytest.mark.parametrize("wait", ["0", "-1", "abc", "nan", "3601"])
def test_the_wait_is_a_number_of_seconds(wait: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["publish", "--project", "p", "--wait", wait], environ={}, publisher=NoPublisher())
    assert exit_.value.code == 2
    assert "--wait: must be a number of seconds above 0, at most 3600" in capsys.readouterr().err
