"""Terraform and deploy.sh deploy the same function, and it matches what the code reads."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from notifier.settings import SECRET_VARIABLES, VARIABLES, Settings
from notifier.trigger import parse_trigger
from notifier.variables import URL_OVERRIDES
from tests.terraform_config import block, load, resource, scheduler_payload, unquote, variable_default

ROOT = Path(__file__).resolve().parent.parent
DEPLOYED_VARIABLES = set(VARIABLES) - set(URL_OVERRIDES)


class Recording(dict[str, str]):
    """A mapping that remembers which keys were asked for."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


@pytest.fixture(scope="module")
def dry_run() -> list[list[str]]:
    """deploy.sh --dry-run with the committed example configuration, one argv per command."""
    result = subprocess.run(
        ["bash", str(ROOT / "deploy.sh"), "--config", str(ROOT / "deploy.env.example"), "--dry-run"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=ROOT,
    )
    return [shlex.split(line) for line in result.stdout.splitlines() if line.startswith("gcloud ")]


def command(commands: list[list[str]], *prefix: str) -> list[str]:
    matches = [argv for argv in commands if argv[: len(prefix)] == list(prefix)]
    assert len(matches) == 1, f"expected one `{' '.join(prefix)}`, found {len(matches)}"
    return matches[0]


def flags(argv: list[str]) -> dict[str, str]:
    pairs = [arg[2:].partition("=") for arg in argv if arg.startswith("--")]
    return {name: value for name, _, value in pairs}


def deploy_env(commands: list[list[str]]) -> dict[str, str]:
    raw = flags(command(commands, "gcloud", "functions", "deploy"))["set-env-vars"]
    assert raw.startswith("^|^")
    return dict(pair.split("=", 1) for pair in raw[3:].split("|"))


def test_settings_read_exactly_the_listed_variables() -> None:
    environ = Recording(
        {
            "MIXPANEL_PROJECT_ID": "1",
            "MIXPANEL_SECRET": "s",
            "EMAIL_TO": "a@b.co",
            "EMAIL_FROM": "a@b.co",
            "SENDGRID_API_KEY": "k",
            "SMS_TO": "+14155550100",
            "SMS_FROM": "+14155550100",
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "t",
        }
    )
    Settings.from_environ(environ)
    assert environ.asked == set(VARIABLES)


def test_terraform_deploys_the_entry_point_on_python312_from_pubsub_with_retries() -> None:
    function = resource("google_cloudfunctions2_function", "notify")
    build = block(function, "build_config")
    assert (unquote(build["entry_point"]), unquote(build["runtime"])) == ("notify", "python312")
    trigger = block(function, "event_trigger")
    assert unquote(trigger["event_type"]) == "google.cloud.pubsub.topic.v1.messagePublished"
    assert trigger["pubsub_topic"] == "${google_pubsub_topic.trigger.id}"
    assert unquote(trigger["retry_policy"]) == "RETRY_POLICY_RETRY"
    service = block(function, "service_config")
    assert unquote(service["ingress_settings"]) == "ALLOW_INTERNAL_ONLY"
    assert service["max_instance_count"] == "${var.max_instances}"
    assert service["timeout_seconds"] == "${var.timeout_seconds}"
    assert service["service_account_email"] == "${google_service_account.runtime.email}"


def test_deploy_sh_deploys_the_same_function(dry_run: list[list[str]]) -> None:
    deploy = flags(command(dry_run, "gcloud", "functions", "deploy"))
    assert (deploy["entry-point"], deploy["runtime"]) == ("notify", "python312")
    assert "gen2" in deploy
    assert "retry" in deploy
    assert deploy["trigger-topic"] == "notifierator-trigger"
    assert deploy["ingress-settings"] == "internal-only"
    assert deploy["max-instances"] == "1"


def test_both_deployments_set_every_variable_the_code_reads_and_nothing_else(
    dry_run: list[list[str]],
) -> None:
    terraform_names = set(load()["locals"]["environment"])
    assert terraform_names == DEPLOYED_VARIABLES
    assert set(deploy_env(dry_run)) == DEPLOYED_VARIABLES


def test_secrets_are_deployed_as_version_names_never_values(dry_run: list[list[str]]) -> None:
    environment = load()["locals"]["environment"]
    env = deploy_env(dry_run)
    for name in SECRET_VARIABLES:
        assert re.search(
            r"google_secret_manager_secret\.secret\[.*\]\.id\}/versions/latest", environment[name]
        )
        assert re.fullmatch(
            r"projects/my-growth-project/secrets/notifierator-[a-z-]+/versions/latest", env[name]
        )


def test_each_secret_is_readable_by_the_runtime_account_only_and_bound_on_the_secret() -> None:
    binding = resource("google_secret_manager_secret_iam_member", "runtime_reads")
    assert binding["for_each"] == "${google_secret_manager_secret.secret}"
    assert unquote(binding["role"]) == "roles/secretmanager.secretAccessor"
    assert "google_service_account.runtime.email" in binding["member"]
    assert not [key for key in load()["resource"] if key[0].startswith("google_project_iam")]
    assert "secret_data" not in "".join(load()["files"].values())  # values never enter Terraform state


def test_the_scheduler_payload_is_a_valid_trigger_message_for_the_schedule(dry_run: list[list[str]]) -> None:
    payload = scheduler_payload()
    trigger = parse_trigger(
        payload, publish_time=datetime(2026, 11, 28, 9, 0, 3, tzinfo=UTC), default_lookback=1
    )
    assert trigger.window.minutes == variable_default("lookback_minutes") == 60
    job = resource("google_cloud_scheduler_job", "tick")
    assert (job["schedule"], job["time_zone"]) == ("${var.schedule}", "${var.time_zone}")
    scheduler = flags(command(dry_run, "gcloud", "scheduler", "jobs", "create", "pubsub"))
    assert scheduler["message-body"].encode() == payload
    assert scheduler["schedule"] == variable_default("schedule") == "0 * * * *"


def test_constrained_variables_are_validated_and_all_are_described() -> None:
    variables = load()["variable"]
    assert all(unquote(body.get("description", "")) for body in variables.values())
    for name in (
        "schedule",
        "time_zone",
        "lookback_minutes",
        "email_to",
        "sms_to",
        "mixpanel_region",
        "memory",
    ):
        assert "validation" in variables[name], name


def test_provider_versions_are_pinned() -> None:
    (terraform,) = load()["terraform"]
    providers = terraform["required_providers"][0]
    assert unquote(providers["google"]["version"]).startswith("~>")
    assert unquote(providers["archive"]["version"]).startswith("~>")
    assert "required_version" in terraform


def test_the_source_zip_is_named_by_its_content_hash() -> None:
    source = resource("google_storage_bucket_object", "source")
    assert "data.archive_file.source.output_md5" in source["name"]


def test_alerts_cover_failed_runs_and_silence(dry_run: list[list[str]]) -> None:
    failing = resource("google_monitoring_alert_policy", "runs_failing")
    assert "condition_threshold" in block(failing, "conditions")
    missing = resource("google_monitoring_alert_policy", "runs_missing")
    assert "condition_absent" in block(missing, "conditions")
    policies = [
        json.loads(flags(argv)["policy"])
        for argv in dry_run
        if argv[:4] == ["gcloud", "monitoring", "policies", "create"]
    ]
    assert [list(p["conditions"][0]) for p in policies] == [
        ["displayName", "conditionThreshold"],
        ["displayName", "conditionAbsent"],
    ]


def test_deploy_sh_dry_run_prints_no_secret_and_runs_nothing(dry_run: list[list[str]]) -> None:
    text = "\n".join(" ".join(argv) for argv in dry_run)
    assert "versions add" not in text  # secret values are added by a person, never by the script
    assert len(dry_run) >= 15


def test_deploy_sh_refuses_a_missing_configuration(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "deploy.sh"), "--config", str(tmp_path / "none.env"), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "deploy.env.example" in result.stderr


def test_deploy_sh_refuses_an_out_of_range_lookback(tmp_path: Path) -> None:
    config = tmp_path / "deploy.env"
    config.write_text(
        (ROOT / "deploy.env.example").read_text().replace("LOOKBACK_MINUTES=60", "LOOKBACK_MINUTES=0")
    )
    result = subprocess.run(
        ["bash", str(ROOT / "deploy.sh"), "--config", str(config), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "LOOKBACK_MINUTES" in result.stderr


def test_the_terraform_zip_leaves_out_every_tracked_file_the_function_does_not_run() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    excludes = [unquote(item) for item in load()["data"][("archive_file", "source")]["excludes"]]
    shipped = {path for path in tracked if not any(path == e or path.startswith(e + "/") for e in excludes)}
    assert shipped == {
        path
        for path in tracked
        if path == "main.py" or path == "requirements.txt" or path.startswith("notifier/")
    }
