"""`python -m notifier run --dry-run`: the real run on the stand-ins, printed; nothing sent or claimed."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from notifier.cli import main
from sandbox.function import free_port
from sandbox.mixpanel import profile
from sandbox.secretmanager import SecretManagerStandIn
from tests.conftest import EMAILS, MARKER, MIXPANEL_SECRET, World
from tests.deploy_script import write_config


def dry_run(world: World, *argv: str) -> tuple[int, str]:
    """`python -m notifier run --dry-run ARGV` against the world's stand-ins; no secret may be printed."""
    out = io.StringIO()
    code = main(["run", "--dry-run", *argv], environ=world.environ, services=world.services, out=out)
    assert MARKER not in out.getvalue()
    return code, out.getvalue()


def test_it_prints_every_channel_s_message_and_sends_nothing(world: World) -> None:
    world.with_slack()
    world.users("2026-11-28T08:45:00")
    code, output = dry_run(world)
    assert code == 0, output
    assert "Window: 2026-11-28T08:00:00+00:00 to 2026-11-28T09:00:00+00:00" in output
    assert "Found: 2 user(s) to report; 1 Mixpanel page(s)" in output
    assert "== Email to 2 recipient(s) ==" in output
    assert "Subject: Mixpanel project 4242: 2 new users, 28 Nov 2026, 08:00–09:00 UTC" in output
    assert "- Ada <ada@example.com>, 08:30" in output  # the text part
    assert (
        "== SMS to 2 number(s) ==\nMixpanel project 4242: 2 new users 28 Nov 08:00-09:00 UTC: Ada" in output
    )
    assert "== Slack ==\nText: Mixpanel project 4242: 2 new users, 28 Nov 2026, 08:00–09:00 UTC" in output
    assert '"type": "header"' in output  # the blocks, as JSON
    assert output.rstrip().endswith("Dry run: nothing was sent, and the run history was not touched.")
    assert world.emails() == []
    assert world.texts() == []
    assert world.slack.messages() == []


def test_nothing_is_claimed_so_the_scheduled_run_still_tells_everyone(world: World) -> None:
    # The history the environment names is never opened: this one would not even answer.
    world.environ.update(STATE_STORE="firestore", FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{free_port()}")
    assert dry_run(world)[0] == 0
    world.environ.update(STATE_STORE="memory")
    assert world.deliver().outcome == "sent"
    assert world.inboxes() == list(EMAILS)


def test_the_window_follows_lookback_or_start_and_end(world: World) -> None:
    world.users("2026-11-28T06:30:00", "2026-11-27T12:00:00")
    code, output = dry_run(world, "--lookback", "180")
    assert code == 0
    assert "Window: 2026-11-28T06:00:00+00:00 to 2026-11-28T09:00:00+00:00" in output
    assert "Found: 2 user(s)" in output
    code, output = dry_run(world, "--start", "2026-11-27T00:00:00Z", "--end", "2026-11-28T00:00:00Z")
    assert code == 0
    assert "Window: 2026-11-27T00:00:00+00:00 to 2026-11-28T00:00:00+00:00" in output
    assert "Found: 1 user(s)" in output
    assert "Subject: Mixpanel project 4242: 1 new user, 27 Nov 2026, 00:00" in output


def test_an_empty_window_says_nothing_would_be_sent(world: World) -> None:
    world.mixpanel.profiles = [profile("old", "2026-11-01T00:00:00", name="Old")]
    code, output = dry_run(world)
    assert code == 0
    assert "Found: 0 user(s) to report" in output
    assert "Nothing would be sent: no users in the window (NOTIFY_WHEN_EMPTY is false)." in output


def test_a_refused_query_is_printed_with_what_to_check(world: World) -> None:
    world.mixpanel.secret = "another-secret"
    code, output = dry_run(world)
    assert code == 1
    assert output.startswith("not run (source_rejected): Mixpanel refused the query with 401")
    assert "MIXPANEL_SECRET" in output


def test_a_bad_window_is_refused_before_anything_is_asked(world: World) -> None:
    code, output = dry_run(world, "--start", "2026-11-27T00:00:00Z")
    assert code == 2
    assert output == "not run: start and end come together: both or neither\n"
    assert world.mixpanel.requests == []


def test_without_dry_run_it_refuses_to_run(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run"], environ=world.environ, services=world.services)
    assert exit_.value.code == 2
    assert "--dry-run" in capsys.readouterr().err
    assert world.mixpanel.requests == []


def test_it_reads_a_deploy_env_and_its_secrets_from_secret_manager(
    world: World, secret_manager: SecretManagerStandIn, tmp_path: Path
) -> None:
    secret_manager.secrets["projects/my-proj/secrets/notifierator-mixpanel-secret/versions/latest"] = (
        MIXPANEL_SECRET
    )
    function = {k: v for k, v in world.environ.items() if k != "MIXPANEL_SECRET"}
    config = write_config(
        {"PROJECT_ID": "my-proj", **function, "SECRET_MANAGER_API_URL": secret_manager.url}, tmp_path
    )
    world.environ = {}
    code, output = dry_run(world, "--env-file", str(config))
    assert code == 0, output
    assert "Found: 1 user(s) to report" in output
    assert secret_manager.reads() == 1  # a dry run reads no channel's secret but Slack's
