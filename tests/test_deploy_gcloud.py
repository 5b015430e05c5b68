"""Every gcloud command deploy.sh can run parses with the installed gcloud.

deploy.sh --dry-run prints its commands (for a fresh project, for a re-run over a deployment, with
Slack on, with the missing-run alert off, daily, and each operation: pause, resume, rollback,
uninstall) and the look-ups it makes first. The SDK's own CLI
executes each of them, in one process, the way `gcloud` does (lib/gcloud.py: gcloud_main.CreateCLI,
then Execute), with a throwaway configuration, no credentials and a proxy that leads nowhere. gcloud
checks its arguments before it needs an account, so an argument error ("Invalid choice",
"unrecognized arguments", exit code 2) fails the test, while the missing account (or a refused
connection) shows that the command got past its parser.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy_script import ROOT, dry_run, example_settings
from tests.deployment import EVERYTHING
from tests.gcloud_sdk import offline_environment, run_sdk_python

ARGUMENT_ERRORS = ("Invalid choice", "unrecognized arguments", "argument ", "Usage:")
PAST_THE_PARSER = (
    "You do not currently have an active account selected",  # no credentials: stopped before any request
    "Failed to establish a new connection",
    "Unable to connect to proxy",
    "ProxyError",
)

# argv[2] is a JSON list of argvs; prints [exit code, what gcloud said] for each.
EXECUTE = """
import contextlib, io, json
from googlecloudsdk import gcloud_main
from googlecloudsdk.core import log
cli = gcloud_main.CreateCLI([])
verdicts = []
for argv in json.loads(sys.argv[2]):
    said = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(said), contextlib.redirect_stdout(io.StringIO()):
        log.Reset(stdout=io.StringIO(), stderr=said)
        try:
            cli.Execute(argv[1:])
        except SystemExit as exit:
            code = exit.code
        except Exception as error:
            code, _ = 1, said.write(repr(error))
    verdicts.append([code, said.getvalue()])
print(json.dumps(verdicts))
"""


def everything_deploy_sh_runs(tmp: Path) -> list[list[str]]:
    """The gcloud commands and look-ups of every kind of dry run, each once."""
    runs = [
        dry_run(example_settings(), tmp / "fresh"),
        dry_run(EVERYTHING, tmp / "slack"),  # every secret, another region and name
        dry_run(EVERYTHING, tmp / "rerun", "--assume-deployed"),
        dry_run({**example_settings(), "MISSING_RUN_ALERT": "false"}, tmp / "off", "--assume-deployed"),
        dry_run({**example_settings(), "SCHEDULE": "0 9 * * *", "LOOKBACK_MINUTES": "1440"}, tmp / "daily"),
        *(
            dry_run(example_settings(), tmp / command, "--assume-deployed", command)
            for command in ("pause", "resume", "rollback", "uninstall")
        ),
    ]
    unique = {shlex.join(argv): argv for run in runs for argv in (*run.commands, *run.queries)}
    return list(unique.values())


def parse_check(commands: list[list[str]], config: Path) -> list[str | None]:
    """For each command: None when gcloud got past its argument parser, else what it said."""
    result = run_sdk_python(EXECUTE, json.dumps(commands), config=config)
    assert result.returncode == 0, result.stderr
    verdicts: list[str | None] = []
    for code, said in json.loads(result.stdout):
        summary = f"exit {code}: {said.strip()[:600]}"
        if code == 2 or any(marker in said for marker in ARGUMENT_ERRORS):
            verdicts.append(summary)
        elif not any(marker in said for marker in PAST_THE_PARSER):
            verdicts.append(f"neither an argument error nor the expected missing account: {summary}")
        else:
            verdicts.append(None)
    return verdicts


def assert_all_parse(commands: list[list[str]], config: Path) -> None:
    verdicts = parse_check(commands, config)
    failures = [
        f"{shlex.join(argv)}\n  {verdict}"
        for argv, verdict in zip(commands, verdicts, strict=True)
        if verdict
    ]
    assert not failures, "\n".join(failures)


def test_every_gcloud_command_of_deploy_sh_parses(tmp_path: Path) -> None:
    commands = everything_deploy_sh_runs(tmp_path)
    assert len(commands) >= 60
    assert_all_parse(commands, tmp_path / "gcloud")


# The command issue 12 found broken, and its fixed form.
BROKEN = ["gcloud", "monitoring", "policies", "list", "--project=my-growth-project"]
FIXED = ["gcloud", "alpha", "monitoring", "policies", "list", "--project=my-growth-project"]


def test_the_check_tells_an_argument_error_from_a_missing_account(tmp_path: Path) -> None:
    broken, fixed = parse_check([BROKEN, FIXED], tmp_path / "gcloud")
    assert broken is not None
    assert "Invalid choice" in broken
    assert fixed is None


def test_the_gcloud_command_itself_says_the_same(tmp_path: Path) -> None:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.skip("gcloud is not installed (README, Prerequisites)")
    for argv, code, said in ((BROKEN, 2, "Invalid choice"), (FIXED, 1, PAST_THE_PARSER[0])):
        (tmp_path / str(code)).mkdir()
        result = subprocess.run(
            [gcloud, *argv[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=offline_environment(tmp_path / str(code)),
        )
        assert (result.returncode, said in result.stderr) == (code, True), result.stderr


DOCS = [ROOT / "README.md", ROOT / "docs" / "deploy.md", ROOT / "docs" / "operations.md"]


def documented_commands() -> list[list[str]]:
    """Every gcloud command the README and the deploy and operations docs show, placeholders filled."""
    lines = [line.strip() for doc in DOCS for line in doc.read_text().splitlines()]
    commands = [line.split("   #")[0] for line in lines if line.startswith("gcloud ")]
    return [shlex.split(command.replace("REVISION", "notifierator-00001-abc")) for command in commands]


def test_every_documented_gcloud_command_names_its_project_and_parses(tmp_path: Path) -> None:
    commands = documented_commands()
    assert len(commands) >= 12
    assert not [argv for argv in commands if not any(arg.startswith("--project=") for arg in argv)]
    assert_all_parse(commands, tmp_path / "gcloud")
