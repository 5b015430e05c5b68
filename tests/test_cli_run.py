"""`python -m notifier run --dry-run`: the real run on the stand-ins, printed; nothing sent or claimed."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from notifier.cli import main
from sandbox.function import ROOT, free_port, silent_port
from sandbox.mixpanel import profile
from sandbox.secretmanager import SecretManagerStandIn
from tests.conftest import EMAILS, MARKER, MIXPANEL_SECRET, World
from tests.deploy_script import write_config

WINDOW = ("--start", "2026-11-28T08:00:00Z", "--end", "2026-11-28T09:00:00Z")


def dry_run(world: World, *argv: str) -> tuple[int, str]:
    """`python -m notifier run --dry-run ARGV` against the world's stand-ins; no secret may be printed."""
    out = io.StringIO()
    code = main(["run", "--dry-run", *argv], environ=world.environ, services=world.services, out=out)
    assert MARKER not in out.getvalue()
    return code, out.getvalue()


def refused(world: World, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """A dry run that could not run: its status and the one line on stderr (stdout stays empty)."""
    code, output = dry_run(world, *argv)
    err = capsys.readouterr().err
    assert output == ""
    assert err.count("\n") == 1, err
    assert MARKER not in err
    return code, err


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


def test_a_refused_query_is_one_line_on_stderr_with_what_to_check(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.mixpanel.secret = "another-secret"
    code, err = refused(world, capsys)
    assert code == 1
    assert err.startswith("not run (source_rejected): Mixpanel refused the query with 401")
    assert "MIXPANEL_SECRET" in err


def test_a_bad_window_is_refused_before_anything_is_asked(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = refused(world, capsys, "--start", "2026-11-27T00:00:00Z")
    assert code == 2
    assert err == "not run: start and end come together: both or neither\n"
    assert world.mixpanel.requests == []


def unreachable(world: World) -> None:
    world.environ["MIXPANEL_API_URL"] = f"http://127.0.0.1:{free_port()}"


def without_project(world: World) -> None:
    del world.environ["MIXPANEL_PROJECT_ID"]


def nothing(world: World) -> None:
    pass


@pytest.mark.parametrize(
    ("argv", "change", "status", "says"),
    [
        (["--lookback", "0"], nothing, 2, "lookback_minutes must be between 1 and 44640"),
        (["--start", "0001-01-01T00:00:00Z", "--end", "0001-01-01T01:00:00Z"], nothing, 2, "year 1"),
        (["--start", "9999-12-31T22:00:00Z", "--end", "9999-12-31T23:00:00Z"], nothing, 2, "year 10000"),
        (["--env-file", "/nonexistent/deploy.env"], nothing, 2, "cannot read /nonexistent/deploy.env"),
        ([], without_project, 1, "MIXPANEL_PROJECT_ID: is required but not set (it was read from the env"),
        (
            [],
            unreachable,
            1,
            "not run (will_retry): Mixpanel is unreachable (ConnectionError); run it again",
        ),
    ],
)
def test_what_stops_a_dry_run_is_one_line_on_stderr_with_the_fix(
    world: World,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    change: Callable[[World], None],
    status: int,
    says: str,
) -> None:
    change(world)
    code, err = refused(world, capsys, *argv)
    assert code == status
    assert says in err
    assert world.sendgrid.requests == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["run", "--dry-run", "--lookback", "abc"], "argument --lookback: invalid int value: 'abc'"),
        (["run"], "the following arguments are required: --dry-run"),
        (["publish"], "the following arguments are required: --project"),
        (["bogus"], "invalid choice: 'bogus'"),
        ([], "the following arguments are required: command"),
    ],
)
def test_a_bad_command_line_is_one_line_pointing_at_help(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv, environ={})
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert says in err
    assert err.rstrip().endswith("(--help lists the options)")


def test_without_dry_run_it_refuses_to_run(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run"], environ=world.environ, services=world.services)
    assert exit_.value.code == 2
    assert "--dry-run" in capsys.readouterr().err
    assert world.mixpanel.requests == []


# -- as a command line runs it ----------------------------------------------------------------------------
def command(world: World, *argv: str) -> subprocess.Popen[str]:
    """`python -m notifier ARGV` in its own process, pointed at the world's stand-ins."""
    return subprocess.Popen(
        [sys.executable, "-m", "notifier", *argv],
        cwd=ROOT,
        env={**world.environ, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_reader_that_goes_away_ends_the_dry_run_quietly(world: World) -> None:
    # `run --dry-run | head`: the reader has gone before anything is written.
    world.with_slack()
    process = command(world, "run", "--dry-run", *WINDOW)
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert err == ""  # no traceback, no "Exception ignored"
    assert world.sendgrid.requests == []


def test_ctrl_c_while_waiting_for_a_service_ends_the_command_quietly(world: World) -> None:
    with silent_port() as port:
        world.environ["MIXPANEL_API_URL"] = f"http://127.0.0.1:{port}"
        process = command(world, "check")
        assert process.stdout is not None
        assert process.stdout.readline().startswith("PASS   configuration")  # now waiting for Mixpanel
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err == "stopped (Ctrl-C)\n"


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
