"""Terraform and deploy.sh deploy the same function, and it matches what the code reads.

Values are compared in tests/test_deploy_parity.py; the upload in test_deploy_source.py; each gcloud
command's arguments in test_deploy_gcloud.py; alerts, state and Slack in their own modules.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from notifier import envfile
from notifier.settings import Settings
from notifier.trigger import parse_trigger
from notifier.variables import BY_NAME, NAMES, SECRET_NAMES
from tests.deploy_script import DryRun, dry_run, example_settings, flags, refusal, run_deploy_sh
from tests.deployment import EVERYTHING, REQUIRED, TERRAFORM_NAMES, TERRAFORM_ONLY, as_tfvars
from tests.terraform_config import (
    block,
    evaluate,
    load,
    resource,
    scheduler_payload,
    unquote,
)


class Recording(dict[str, str]):
    """A mapping that remembers which keys were asked for."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> DryRun:
    """deploy.sh --dry-run with the committed example configuration."""
    return dry_run(example_settings(), tmp_path_factory.mktemp("example"))


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
    assert environ.asked == set(NAMES)


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
    assert service["environment_variables"] == "${local.environment}"


def test_deploy_sh_deploys_the_same_function(example: DryRun) -> None:
    deploy = flags(example.command("gcloud", "functions", "deploy"))
    assert (deploy["entry-point"], deploy["runtime"]) == ("notify", "python312")
    assert "gen2" in deploy
    assert "retry" in deploy
    assert deploy["trigger-topic"] == "notifierator-trigger"
    assert deploy["ingress-settings"] == "internal-only"
    assert deploy["max-instances"] == "1"
    assert deploy["concurrency"] == "1"


def test_secrets_are_deployed_as_version_names_never_values(tmp_path: Path) -> None:
    terraform = evaluate("local.environment", as_tfvars(EVERYTHING))
    script = dry_run(EVERYTHING, tmp_path).function_env()
    version_name = r"projects/my-growth-project/secrets/signups-eu-[a-z-]+/versions/latest"
    for name in SECRET_NAMES:
        assert re.fullmatch(version_name, terraform[name]), name
        assert script[name] == terraform[name]
    text = "".join(load()["files"].values())
    assert "google_secret_manager_secret_version" not in text  # values never enter Terraform state
    assert "secret_data" not in text


def test_each_secret_is_readable_by_the_runtime_account_only_and_bound_on_the_secret() -> None:
    binding = resource("google_secret_manager_secret_iam_member", "runtime_reads")
    assert binding["for_each"] == "${google_secret_manager_secret.secret}"
    assert unquote(binding["role"]) == "roles/secretmanager.secretAccessor"
    assert "google_service_account.runtime.email" in binding["member"]
    project_level = {key[1] for key in load()["resource"] if key[0].startswith("google_project_iam")}
    # The runtime's is conditioned on its database (test_deploy_state); the build account's and the
    # Pub/Sub agent's (on the trigger's account) are the deploy's own (test_deploy_first).
    assert project_level == {"runtime_uses_state", "build_builds"}


@pytest.mark.parametrize(
    ("schedule", "minutes"),
    [("0 * * * *", 60), ("*/15 * * * *", 15), ("* * * * *", 1), ("30 */6 * * *", 360), ("0 9 * * *", 1440)],
)
def test_the_scheduler_payload_asks_for_the_schedule_s_interval(
    schedule: str, minutes: int, tmp_path: Path
) -> None:
    settings = {**REQUIRED, "SCHEDULE": schedule}
    payload = scheduler_payload(as_tfvars(settings))
    trigger = parse_trigger(
        payload, publish_time=datetime(2026, 11, 28, 9, 0, 3, tzinfo=UTC), default_lookback=1
    )
    assert trigger.window.seconds / 60 == minutes
    job = resource("google_cloud_scheduler_job", "tick")
    assert (job["schedule"], job["time_zone"]) == ("${var.schedule}", "${var.time_zone}")
    scheduler = flags(dry_run(settings, tmp_path).command("gcloud", "scheduler", "jobs", "create", "pubsub"))
    assert scheduler["message-body"].encode() == payload
    assert scheduler["schedule"] == schedule
    assert envfile.deployed_environ(settings)["DEFAULT_LOOKBACK_MINUTES"] == str(minutes)


def test_both_paths_retry_a_failed_scheduler_publish_alike(example: DryRun) -> None:
    terraform = block(resource("google_cloud_scheduler_job", "tick"), "retry_config")["retry_count"]
    scheduler = flags(example.command("gcloud", "scheduler", "jobs", "create", "pubsub"))
    assert int(scheduler["max-retry-attempts"]) == terraform == 3


def test_the_apis_come_first_iam_and_firestore_among_them(example: DryRun) -> None:
    terraform = set(map(unquote, load()["locals"]["services"]))
    script = example.command("gcloud", "services", "enable")
    assert {"iam.googleapis.com", "firestore.googleapis.com"} <= terraform
    assert set(script[3:]) - {"--project=my-growth-project"} == terraform
    assert example.commands[0] == script  # before the service accounts, on a fresh project
    for account in ("runtime", "trigger"):
        assert resource("google_service_account", account)["depends_on"] == [
            "${google_project_service.required}"
        ]


def test_constrained_variables_are_validated_and_all_are_described() -> None:
    variables = load()["variable"]
    assert all(unquote(body.get("description", "")) for body in variables.values())
    for setting, (name, _) in TERRAFORM_NAMES.items():
        facts = BY_NAME[setting]
        constrained = facts.pattern is not None or facts.minimum is not None
        assert ("validation" in variables[name]) is constrained, name
    assert not [name for name in TERRAFORM_ONLY if "validation" in variables[name]]


def test_provider_versions_are_pinned() -> None:
    (terraform,) = load()["terraform"]
    providers = terraform["required_providers"][0]
    for provider in ("google", "archive", "time"):
        assert unquote(providers[provider]["version"]).startswith("~>"), provider
    assert "required_version" in terraform


def test_the_source_zip_is_named_by_its_content_hash() -> None:
    source = resource("google_storage_bucket_object", "source")
    assert "data.archive_file.source.output_md5" in source["name"]


def test_deploy_sh_dry_run_prints_no_secret_and_runs_nothing(example: DryRun) -> None:
    text = "\n".join(" ".join(argv) for argv in example.commands)
    assert "versions add" not in text  # secret values are added by a person, never by the script
    assert len(example.commands) >= 20


def test_deploy_sh_refuses_a_missing_configuration(tmp_path: Path) -> None:
    result = run_deploy_sh({}, tmp_path, "--config", str(tmp_path / "none.env"))
    assert result.returncode == 2
    assert "deploy.env.example" in result.stderr


def test_deploy_sh_refuses_a_setting_it_does_not_know(tmp_path: Path) -> None:
    typo = refusal({**example_settings(), "EMAIL_TOO": "growth@example.com"}, tmp_path)
    assert typo is not None
    assert "unknown setting EMAIL_TOO" in typo
    renamed = refusal({**example_settings(), "DISPLAY_TIME_ZONE": "UTC"}, tmp_path)
    assert renamed is not None
    assert "DISPLAY_TIME_ZONE is now called TIMEZONE" in renamed


def test_deploy_sh_reads_only_its_configuration_not_the_caller_s_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROFILE_URL_TEMPLATE", "https://elsewhere.example/{distinct_id}")
    assert "PROFILE_URL_TEMPLATE" not in dry_run(example_settings(), tmp_path).function_env()
