"""Terraform and deploy.sh deploy the same values, only those that differ from the function's defaults,
and refuse the same mistakes the function itself would refuse.

Terraform's side is evaluated by the real terraform binary (tests/terraform_config.py), deploy.sh's by
its --dry-run, the function's by notifier.settings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.errors import ConfigError
from notifier.settings import Settings
from notifier.variables import DEFAULTS, MAX_LOOKBACK_MINUTES, NAMES, URL_OVERRIDES, WRITTEN
from tests.deploy_script import ROOT, dry_run, example_settings, flags
from tests.deploy_script import refusal as deploy_sh_refusal
from tests.deployment import EVERYTHING, REQUIRED, TERRAFORM_NAMES, TERRAFORM_ONLY, as_tfvars
from tests.terraform_config import evaluate, example_variables, load, unquote, variable_default
from tests.terraform_config import refusal as terraform_refusal

DEPLOYABLE = set(NAMES) - set(URL_OVERRIDES)
CONFIGURATIONS = {"required only": REQUIRED, "the examples": example_settings(), "everything": EVERYTHING}


def secret(name: str) -> str:
    return f"projects/my-growth-project/secrets/notifierator-{name}/versions/latest"


def terraform_environment(settings: dict[str, str]) -> dict[str, str]:
    environment: dict[str, str] = evaluate("local.environment", as_tfvars(settings))
    return environment


def code_accepts(environment: dict[str, str]) -> Settings:
    """The function's own reading of an environment (secrets stay references; nothing is fetched)."""
    return Settings.from_environ(environment)


@pytest.mark.parametrize("path", WRITTEN)
def test_each_file_written_from_the_table_is_current(path: str) -> None:
    regenerate = ".venv/bin/python -m notifier.variables --write"
    assert (ROOT / path).read_text() == WRITTEN[path](), f"{path} is stale: {regenerate}"


def test_the_two_example_configurations_describe_one_deployment() -> None:
    assert as_tfvars(example_settings()) == example_variables()


def test_every_terraform_variable_has_a_deploy_env_setting() -> None:
    assert {variable for variable, _ in TERRAFORM_NAMES.values()} == set(load()["variable"]) - TERRAFORM_ONLY


@pytest.mark.parametrize("settings", CONFIGURATIONS.values(), ids=CONFIGURATIONS.keys())
def test_both_paths_give_the_function_the_same_environment(settings: dict[str, str], tmp_path: Path) -> None:
    terraform = terraform_environment(settings)
    assert terraform == dry_run(settings, tmp_path).function_env()
    code_accepts(terraform)


def test_a_deployment_of_only_the_required_settings_leaves_everything_else_to_the_function() -> None:
    assert terraform_environment(REQUIRED) == {
        "MIXPANEL_PROJECT_ID": "1234567",
        "MIXPANEL_SECRET": secret("mixpanel-secret"),
        "SENDGRID_API_KEY": secret("sendgrid-api-key"),
        "TWILIO_AUTH_TOKEN": secret("twilio-auth-token"),
        "STATE_STORE": "firestore",
        "FIRESTORE_DATABASE": "notifierator",
    }


def test_a_setting_equal_to_the_function_s_default_is_not_deployed(tmp_path: Path) -> None:
    at_defaults = {name: DEFAULTS[name] for name in TERRAFORM_NAMES if name in DEFAULTS}
    at_defaults |= {"LOOKBACK_MINUTES": DEFAULTS["DEFAULT_LOOKBACK_MINUTES"], "TIMEOUT_SECONDS": "300"}
    settings = {**REQUIRED, **at_defaults}
    assert terraform_environment(settings) == terraform_environment(REQUIRED)
    assert dry_run(settings, tmp_path).function_env() == terraform_environment(REQUIRED)


def test_every_variable_the_function_reads_can_be_deployed_and_nothing_else() -> None:
    assert set(terraform_environment(EVERYTHING)) == DEPLOYABLE


def test_terraform_leaves_the_function_s_settings_to_its_defaults() -> None:
    for name, (variable, _) in TERRAFORM_NAMES.items():
        if name in NAMES:
            assert unquote(load()["variable"][variable].get("default", "required")) in (None, [], "required")
    assert variable_default("lookback_minutes") is None  # the schedule's interval
    assert evaluate("local.lookback_minutes", as_tfvars(REQUIRED)) == int(
        DEFAULTS["DEFAULT_LOOKBACK_MINUTES"]
    )


def test_deploy_sh_defaults_are_terraform_s(tmp_path: Path) -> None:
    run = dry_run(REQUIRED, tmp_path)
    deploy = flags(run.command("gcloud", "functions", "deploy"))
    assert deploy["region"] == variable_default("region")
    assert deploy["memory"] == variable_default("memory")
    assert deploy["timeout"] == f"{variable_default('timeout_seconds')}s"
    assert deploy["max-instances"] == str(variable_default("max_instances"))
    assert run.command("gcloud", "functions", "deploy")[3] == variable_default("name")
    job = flags(run.command("gcloud", "scheduler", "jobs", "create", "pubsub"))
    assert (job["schedule"], job["time-zone"]) == (
        variable_default("schedule"),
        variable_default("time_zone"),
    )
    database = flags(run.command("gcloud", "firestore", "databases", "create"))
    assert database["location"] == variable_default("firestore_location")
    assert "SLACK_WEBHOOK_URL" not in run.function_env()
    assert variable_default("slack_enabled") is False
    assert len(run.all("gcloud", "alpha", "monitoring", "policies", "create")) == 2
    assert variable_default("missing_run_alert") is True


@pytest.mark.parametrize("timeout", [120, 300, 540])
def test_the_run_budget_ends_a_minute_before_the_function_times_out(timeout: int, tmp_path: Path) -> None:
    settings = {**REQUIRED, "TIMEOUT_SECONDS": str(timeout)}
    environment = terraform_environment(settings)
    assert dry_run(settings, tmp_path).function_env() == environment
    budget = int(environment.get("RUN_BUDGET_SECONDS", DEFAULTS["RUN_BUDGET_SECONDS"]))
    assert budget == timeout - 60
    assert code_accepts(environment).run_budget_seconds == budget


# (deploy.env setting, a value both paths and the function must refuse)
MISTAKES = [
    ("LOOKBACK_MINUTES", "0"),
    ("LOOKBACK_MINUTES", str(MAX_LOOKBACK_MINUTES + 1)),
    ("SMS_TO", "4155550100"),
    ("SMS_TO", "+14155550100,+0123"),
    ("SMS_FROM", "+0123"),
    ("TWILIO_ACCOUNT_SID", "SK" + "0" * 32),
    ("EMAIL_TO", "growth"),
    ("EMAIL_FROM", "alerts at example.com"),
    ("MIXPANEL_REGION", "uk"),
    ("MIXPANEL_PROJECT_ID", "acme"),
    ("TIMEZONE", "new york"),
    ("PROFILE_URL_TEMPLATE", "https://admin.example.com/users"),
    ("EXTRA_PROPERTIES", "a,b,c,d,e,f"),
    ("MAX_CATCH_UP_MINUTES", str(MAX_LOOKBACK_MINUTES + 1)),
    ("LATE_ARRIVAL_MINUTES", "1441"),
    ("EMAIL_ROW_LIMIT", "0"),
    ("MAX_MESSAGE_AGE_MINUTES", "10081"),
    ("CREATED_PROPERTY", "signed'up"),
    ("CREATED_PROPERTY", "x" * 256),
    ("BREAKDOWN_PROPERTY", 'utm"] or true or ["'),
    ("MIXPANEL_PAGE_CONCURRENCY", "6"),
    ("SMS_QUIET_HOURS", "10pm-7am"),
    # the deployment's own
    ("NAME", "Notifierator"),
    ("FIRESTORE_LOCATION", "the moon"),
    ("TIMEOUT_SECONDS", "600"),
    ("MEMORY", "2G"),
    ("SCHEDULE", "hourly"),
    ("SCHEDULE", "0 9 * * 1-5"),  # no single interval: windows would not tile
    ("SCHEDULE", "*/7 * * * *"),
    ("REGION", "europe-west"),
    ("ALERT_EMAIL", "oncall"),
]


@pytest.mark.parametrize(("setting", "value"), MISTAKES, ids=[f"{s}={v}" for s, v in MISTAKES])
def test_both_paths_refuse_what_the_function_would_refuse(setting: str, value: str, tmp_path: Path) -> None:
    settings = {**example_settings(), setting: value}
    variable = TERRAFORM_NAMES[setting][0]
    terraform = terraform_refusal(as_tfvars(settings))
    assert terraform is not None
    assert terraform.variables == {variable}
    script = deploy_sh_refusal(settings, tmp_path)
    assert script is not None
    assert script.startswith(f"{setting} ")
    code_name = "DEFAULT_LOOKBACK_MINUTES" if setting == "LOOKBACK_MINUTES" else setting
    if code_name in NAMES:
        with pytest.raises(ConfigError) as refused:
            code_accepts({**terraform_environment(example_settings()), code_name: value})
        assert refused.value.variable == code_name


# A channel's recipients without its sender or account: the function would call it a bad configuration.
CHANNELS = {"EMAIL_TO": ("EMAIL_FROM",), "SMS_TO": ("SMS_FROM", "TWILIO_ACCOUNT_SID")}
MISSING = [(channel, needed) for channel, needs in CHANNELS.items() for needed in needs]


@pytest.mark.parametrize(("channel", "needed"), MISSING, ids=[needed for _, needed in MISSING])
def test_both_paths_refuse_a_channel_without_what_it_needs(channel: str, needed: str, tmp_path: Path) -> None:
    example = example_settings()
    given = [name for name in (channel, *CHANNELS[channel]) if name != needed]
    settings = {**REQUIRED, **{name: example[name] for name in given}}
    terraform = terraform_refusal(as_tfvars(settings))
    assert terraform is not None
    assert terraform.variables == {TERRAFORM_NAMES[needed][0]}
    assert f"must be set when {TERRAFORM_NAMES[channel][0]} is" in terraform.message
    assert deploy_sh_refusal(settings, tmp_path) == f"{needed} is required when {channel} is set"


# (deploy.env setting, lowest and highest value the function accepts)
BOUNDS = [
    ("MIXPANEL_PAGE_CONCURRENCY", 1, 5),
    ("MAX_CATCH_UP_MINUTES", 0, MAX_LOOKBACK_MINUTES),
    ("LATE_ARRIVAL_MINUTES", 0, 1440),
    ("EMAIL_ROW_LIMIT", 1, 10000),
    ("MAX_MESSAGE_AGE_MINUTES", 1, 10080),
]


@pytest.mark.parametrize(("setting", "low", "high"), BOUNDS, ids=[setting for setting, _, _ in BOUNDS])
def test_both_paths_accept_the_function_s_range(setting: str, low: int, high: int, tmp_path: Path) -> None:
    code_name = "DEFAULT_LOOKBACK_MINUTES" if setting == "LOOKBACK_MINUTES" else setting
    # A long lookback cannot be watched for missing runs; that check has its own test (test_deploy_alerts).
    base = {**REQUIRED, "MISSING_RUN_ALERT": "false"}
    for value, accepted in ((low - 1, False), (low, True), (high, True), (high + 1, False)):
        settings = {**base, setting: str(value)}
        assert (terraform_refusal(as_tfvars(settings)) is None) is accepted, (setting, value)
        assert (deploy_sh_refusal(settings, tmp_path) is None) is accepted, (setting, value)
        if value < 0:
            continue  # the environment cannot even spell it
        try:
            code_accepts({**terraform_environment(REQUIRED), code_name: str(value)})
        except ConfigError:
            assert not accepted, (setting, value)
        else:
            assert accepted, (setting, value)


@pytest.mark.parametrize("region", ["europe-west10", "europe-west12", "us-central1", "me-central2"])
def test_both_paths_accept_every_region_spelling(region: str, tmp_path: Path) -> None:
    settings = {**REQUIRED, "REGION": region, "FIRESTORE_LOCATION": region}
    assert terraform_refusal(as_tfvars(settings)) is None
    deploy = flags(dry_run(settings, tmp_path).command("gcloud", "functions", "deploy"))
    assert deploy["region"] == region


# (schedule, its interval: each run's window)
SCHEDULES = [("*/15 * * * *", 15), ("0 * * * *", 60), ("5 */6 * * *", 360), ("0 9 * * *", 1440)]


@pytest.mark.parametrize(("schedule", "minutes"), SCHEDULES)
def test_the_lookback_is_the_schedule_s_interval_in_both_paths(
    schedule: str, minutes: int, tmp_path: Path
) -> None:
    settings = {**REQUIRED, "SCHEDULE": schedule}
    environment = terraform_environment(settings)
    assert dry_run(settings, tmp_path).function_env() == environment
    assert code_accepts(environment).default_lookback_minutes == minutes
    assert terraform_refusal(as_tfvars({**settings, "LOOKBACK_MINUTES": str(minutes)})) is None


@pytest.mark.parametrize(("schedule", "minutes"), SCHEDULES)
def test_a_lookback_that_differs_from_the_schedule_s_interval_is_refused(
    schedule: str, minutes: int, tmp_path: Path
) -> None:
    settings = {**REQUIRED, "SCHEDULE": schedule, "LOOKBACK_MINUTES": str(minutes * 2)}
    terraform = terraform_refusal(as_tfvars(settings))
    assert terraform is not None
    assert terraform.variables == {"lookback_minutes"}
    assert f"the schedule's interval ({minutes} minutes)" in terraform.message
    script = deploy_sh_refusal(settings, tmp_path)
    assert script is not None
    assert script.startswith(f"LOOKBACK_MINUTES must equal the schedule's interval ({minutes} minutes)")
