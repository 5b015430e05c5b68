"""A first deploy into a new project goes through unattended, and nothing runs before `check` passes.

- The function is built by an account of its own holding roles/cloudbuild.builds.builder, named
  explicitly in both paths, so gcloud's prompt about the default build account never comes.
- Eventarc's service agent, slow to get its permissions on a fresh project, is waited out: a bounded
  retry in deploy.sh, a wait before the function in Terraform.
- cloudresourcemanager is enabled, and Pub/Sub's service agent may mint tokens, as gcloud grants it.
- The scheduler job is created paused (before the function, in deploy.sh); resume, pause, rollback and
  uninstall are one command each. deploy.sh is run here for real against a stand-in gcloud.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.deploy_script import DEPLOY_SH, ROOT, dry_run, example_settings, flags, write_config
from tests.deployment import REQUIRED
from tests.gcloud_sdk import run_sdk_python
from tests.terraform_config import block, load, resource, unquote

BUILD_ACCOUNT = "notifierator-build@my-growth-project.iam.gserviceaccount.com"

# gcloud's own check (command_lib/functions/service_account_util.py, called by `functions deploy`):
# it prompts, default No, only when the build account is Compute's default one.
SDK_BUILD_ACCOUNT = """
from googlecloudsdk.command_lib.functions import service_account_util as util
email = util._ExtractServiceAccountEmail(sys.argv[2])
print(email, email == util._GCE_SA.format(project_number="123456789012"))
"""


def test_both_paths_build_with_their_own_account_holding_the_builder_role(tmp_path: Path) -> None:
    run = dry_run(example_settings(), tmp_path)
    deploy = flags(run.command("gcloud", "functions", "deploy"))
    assert deploy["build-service-account"] == f"projects/my-growth-project/serviceAccounts/{BUILD_ACCOUNT}"
    grants = {flags(argv)["role"]: argv for argv in run.all("gcloud", "projects", "add-iam-policy-binding")}
    builder = flags(grants["roles/cloudbuild.builds.builder"])
    assert builder["member"] == f"serviceAccount:{BUILD_ACCOUNT}"
    assert builder["condition"] == "None"  # no prompt for a condition on a project that has one
    build = block(resource("google_cloudfunctions2_function", "notify"), "build_config")
    assert build["service_account"] == "${google_service_account.build.id}"
    grant = resource("google_project_iam_member", "build_builds")
    assert unquote(grant["role"]) == "roles/cloudbuild.builds.builder"
    assert unquote(grant["member"]) == "serviceAccount:${google_service_account.build.email}"


def test_gcloud_does_not_prompt_about_the_build_account_deploy_sh_names(tmp_path: Path) -> None:
    flag = flags(dry_run(REQUIRED, tmp_path).command("gcloud", "functions", "deploy"))[
        "build-service-account"
    ]
    result = run_sdk_python(SDK_BUILD_ACCOUNT, flag, config=tmp_path / "gcloud")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [BUILD_ACCOUNT, "False"]


def test_terraform_waits_for_the_service_agents_before_the_function() -> None:
    wait = resource("time_sleep", "service_agents_ready")
    assert int(unquote(wait["create_duration"]).removesuffix("s")) >= 60
    assert wait["depends_on"] == ["${google_project_service.required}"]
    assert (
        "${time_sleep.service_agents_ready}"
        in resource("google_cloudfunctions2_function", "notify")["depends_on"]
    )


def test_both_paths_enable_cloudresourcemanager_and_let_pubsub_mint_tokens(tmp_path: Path) -> None:
    assert "cloudresourcemanager.googleapis.com" in map(unquote, load()["locals"]["services"])
    run = dry_run(example_settings(), tmp_path)
    assert "cloudresourcemanager.googleapis.com" in run.command("gcloud", "services", "enable")
    (binding,) = run.all("gcloud", "iam", "service-accounts", "add-iam-policy-binding")
    assert binding[4] == "notifierator-trigger@my-growth-project.iam.gserviceaccount.com"
    assert flags(binding)["role"] == "roles/iam.serviceAccountTokenCreator"
    assert flags(binding)["member"].endswith("@gcp-sa-pubsub.iam.gserviceaccount.com")
    grant = resource("google_service_account_iam_member", "pubsub_agent_mints_tokens")
    assert unquote(grant["role"]) == "roles/iam.serviceAccountTokenCreator"
    assert grant["service_account_id"] == "${google_service_account.trigger.name}"
    assert "gcp-sa-pubsub" in grant["member"]


def test_the_job_is_created_paused_before_the_function_exists(tmp_path: Path) -> None:
    run = dry_run(example_settings(), tmp_path)
    order = [" ".join(argv[:4]) for argv in run.commands]
    created = order.index("gcloud scheduler jobs create")
    paused = order.index("gcloud scheduler jobs pause")
    assert created < paused < order.index("gcloud functions deploy notifierator")
    assert not run.all("gcloud", "scheduler", "jobs", "resume")
    # A re-run updates the job and leaves it paused or running, as it is.
    rerun = dry_run(example_settings(), tmp_path / "rerun", "--assume-deployed")
    assert rerun.all("gcloud", "scheduler", "jobs", "update")
    assert not rerun.all("gcloud", "scheduler", "jobs", "pause")
    # Terraform: created paused until schedule_paused = false.
    assert load()["variable"]["schedule_paused"]["default"] is True


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            "resume",
            [["scheduler", "jobs", "resume"], ["alpha", "monitoring", "policies", "update", "--enabled"]],
        ),
        (
            "pause",
            [["scheduler", "jobs", "pause"], ["alpha", "monitoring", "policies", "update", "--no-enabled"]],
        ),
        ("rollback", [["run", "services", "update-traffic"]]),
    ],
)
def test_each_operation_is_one_command(command: str, expected: list[list[str]], tmp_path: Path) -> None:
    run = dry_run(example_settings(), tmp_path, "--assume-deployed", command)
    assert len(run.commands) == len(expected)
    for argv, words in zip(run.commands, expected, strict=True):
        assert all(word in argv for word in words), argv


def test_rollback_sends_all_traffic_to_the_previous_revision(tmp_path: Path) -> None:
    run = dry_run(example_settings(), tmp_path, "--assume-deployed", "rollback")
    (listing,) = [query for query in run.queries if query[:4] == ["gcloud", "run", "revisions", "list"]]
    assert flags(listing)["sort-by"] == "~metadata.creationTimestamp"
    (traffic,) = run.commands
    assert flags(traffic)["to-revisions"] == "notifierator-00001-old=100"  # the second newest


def test_uninstall_keeps_the_run_history_and_the_secrets_and_says_how_to_remove_them(tmp_path: Path) -> None:
    config = write_config(example_settings(), tmp_path)
    result = subprocess.run(
        ["bash", str(DEPLOY_SH), "--config", str(config), "--dry-run", "--assume-deployed", "uninstall"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    commands = [line for line in result.stdout.splitlines() if line.startswith("gcloud ")]
    deleted = {" ".join(line.split()[1:3]) for line in commands if " delete " in line}
    assert deleted >= {
        "scheduler jobs",
        "functions delete",
        "pubsub topics",
        "logging metrics",
        "iam service-accounts",
    }
    assert not [line for line in commands if "firestore" in line or "secrets" in line]
    said = result.stdout
    assert "gcloud firestore databases delete --database=notifierator --project=my-growth-project" in said
    assert "gcloud secrets delete notifierator-mixpanel-secret --project=my-growth-project" in said


# A stand-in for the gcloud CLI: it records each call; nothing exists yet (describe and list find
# nothing); the first `functions deploy` fails as a fresh project's does while Eventarc's service
# agent waits for its permissions. `sleep` is made instant, so the retry's pauses cost nothing.
FAKE_GCLOUD = r"""#!/usr/bin/env bash
echo "$*" >>"$FAKE_LOG"
case "$*" in
  "functions deploy"*)
    if [[ ! -e "$FAKE_LOG.deployed" ]]; then
      touch "$FAKE_LOG.deployed"
      echo "ERROR: (gcloud.functions.deploy) Permission denied while using the Eventarc Service Agent." >&2
      exit 1
    fi ;;
  "beta monitoring channels create"*) echo "projects/my-growth-project/notificationChannels/7" ;;
esac
exit 0
"""


def real_run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gcloud").write_text(FAKE_GCLOUD)
    (bin_dir / "sleep").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("gcloud", "sleep"):
        (bin_dir / tool).chmod(0o755)
    log = tmp_path / "gcloud.log"
    result = subprocess.run(
        ["bash", str(DEPLOY_SH), "--config", str(write_config(example_settings(), tmp_path)), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        env={
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "FAKE_LOG": str(log),
            "TMPDIR": str(tmp_path),
        },
    )
    return result, log.read_text().splitlines() if log.exists() else []


def test_a_first_deploy_waits_out_the_eventarc_agent_and_finishes_unattended(tmp_path: Path) -> None:
    result, calls = real_run(tmp_path)
    assert result.returncode == 0, result.stderr
    deploys = [call for call in calls if call.startswith("functions deploy")]
    assert len(deploys) == 2  # refused once while the agent's permissions spread, then done
    assert "not ready yet (Eventarc Service Agent)" in result.stderr
    assert calls.index(
        "scheduler jobs pause notifierator-tick --project=my-growth-project --location=us-central1"
    ) < (calls.index(deploys[0]))
    assert any(call.startswith("alpha monitoring policies create") for call in calls)
    assert f"./deploy.sh --config {tmp_path / 'deploy.env'} resume" in result.stdout


def test_uninstall_asks_for_yes_before_it_deletes_anything(tmp_path: Path) -> None:
    result, calls = real_run(tmp_path, "uninstall")
    assert result.returncode == 2
    assert "--yes" in result.stderr
    assert calls == []
