"""Slack is deployed only when asked for: its secret, access to that secret alone, and the variable.

The Slack channel is on whenever SLACK_WEBHOOK_URL is set, and an empty secret would make every run a
bad configuration, so with Slack off neither path creates the secret or sets the variable.
"""

from __future__ import annotations

from pathlib import Path

from notifier.settings import Settings
from tests.deploy_script import dry_run, example_settings, flags
from tests.deployment import as_tfvars
from tests.terraform_config import evaluate, resource

WEBHOOK_SECRET = "notifierator-slack-webhook-url"
VERSION_NAME = f"projects/my-growth-project/secrets/{WEBHOOK_SECRET}/versions/latest"


def slack(enabled: bool) -> dict[str, str]:
    return {**example_settings(), "SLACK_ENABLED": "true" if enabled else "false"}


def test_with_slack_off_neither_path_creates_its_secret_or_sets_its_variable(tmp_path: Path) -> None:
    terraform = evaluate(
        "{ secrets = local.secret_ids, environment = local.environment }", as_tfvars(slack(False))
    )
    assert "SLACK_WEBHOOK_URL" not in terraform["secrets"]
    assert "SLACK_WEBHOOK_URL" not in terraform["environment"]
    run = dry_run(slack(False), tmp_path)
    assert not [argv for argv in run.commands if WEBHOOK_SECRET in argv]
    assert "SLACK_WEBHOOK_URL" not in run.function_env()


def test_with_slack_on_both_paths_create_the_secret_and_name_its_latest_version(tmp_path: Path) -> None:
    terraform = evaluate(
        "{ secrets = local.secret_ids, environment = local.environment }", as_tfvars(slack(True))
    )
    assert terraform["secrets"]["SLACK_WEBHOOK_URL"] == WEBHOOK_SECRET
    assert terraform["environment"]["SLACK_WEBHOOK_URL"] == VERSION_NAME
    run = dry_run(slack(True), tmp_path)
    assert run.function_env()["SLACK_WEBHOOK_URL"] == VERSION_NAME
    (create,) = [argv for argv in run.all("gcloud", "secrets", "create") if argv[3] == WEBHOOK_SECRET]
    assert flags(create)["replication-policy"] == "automatic"
    assert Settings.from_environ(run.function_env()).slack is not None  # the function turns Slack on


def test_only_the_function_s_account_may_read_the_webhook_and_only_that_secret(tmp_path: Path) -> None:
    (binding,) = [
        argv
        for argv in dry_run(slack(True), tmp_path).all("gcloud", "secrets", "add-iam-policy-binding")
        if argv[3] == WEBHOOK_SECRET
    ]
    assert flags(binding)["role"] == "roles/secretmanager.secretAccessor"
    assert (
        flags(binding)["member"]
        == "serviceAccount:notifierator-run@my-growth-project.iam.gserviceaccount.com"
    )
    # Terraform binds each secret of local.secret_ids, the webhook's among them, on the secret.
    assert resource("google_secret_manager_secret", "secret")["for_each"] == "${local.secret_ids}"
