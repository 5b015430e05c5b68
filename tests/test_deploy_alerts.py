"""The two alerts tell the truth, and both paths create them from the same JSON files.

- "a run failed" fires on a run_summary line at ERROR, summed across revisions, and its incident
  closes by itself (no data counts as no failure; auto-close after 30 minutes).
- "no successful run" fires after two intervals without a good run, summed across revisions so a
  redeploy does not fire it, at least one interval plus 30 minutes, at most Cloud Monitoring's 23.5
  hours; a schedule that window cannot cover is refused unless that alert is turned off.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from string import Template
from typing import Any

import pytest

from tests.deploy_script import ROOT, DryRun, dry_run, example_settings, flags
from tests.deploy_script import refusal as deploy_sh_refusal
from tests.deployment import REQUIRED, as_tfvars
from tests.terraform_config import TERRAFORM, evaluate, resource, unquote
from tests.terraform_config import refusal as terraform_refusal

TEMPLATES = {
    "runs_failing": ROOT / "deploy" / "alert-runs-failing.json.tftpl",
    "runs_missing": ROOT / "deploy" / "alert-runs-missing.json.tftpl",
}
CAP_MINUTES = 1410  # Cloud Monitoring's longest absence window, 23.5 hours
SLACK_MINUTES = 30


def rendered_by_deploy_sh(run: DryRun) -> dict[str, Any]:
    """The policy files deploy.sh passes to gcloud, by policy."""
    policies = run.all("gcloud", "alpha", "monitoring", "policies")
    files = [flags(argv)["policy-from-file"] for argv in policies if "policy-from-file" in flags(argv)]
    return {
        key: json.loads(Path(file).read_text())
        for file in files
        for key in TEMPLATES
        if Path(file).name == key.replace("_", "-") + ".json"
    }


def absence_minutes(policy: dict[str, Any]) -> int:
    duration = policy["conditions"][0]["conditionAbsent"]["duration"]
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    seconds = int(match.group(1))
    assert seconds % 60 == 0, "Cloud Monitoring takes whole minutes"
    return seconds // 60


def aggregation(policy: dict[str, Any]) -> dict[str, Any]:
    (condition,) = policy["conditions"]
    (only,) = (condition.get("conditionThreshold") or condition["conditionAbsent"])["aggregations"]
    assert isinstance(only, dict)
    return only


@pytest.mark.parametrize("lookback", [5, 60, 720])
def test_both_paths_render_the_same_policies_from_the_shared_files(lookback: int, tmp_path: Path) -> None:
    settings = {**example_settings(), "LOOKBACK_MINUTES": str(lookback)}
    terraform = evaluate("local.alert_policies", as_tfvars(settings))
    assert rendered_by_deploy_sh(dry_run(settings, tmp_path)) == terraform
    minutes = absence_minutes(terraform["runs_missing"])
    values = {"name": "notifierator", "absence_minutes": minutes, "absence_seconds": minutes * 60}
    for key, template in TEMPLATES.items():
        assert json.loads(Template(template.read_text()).substitute(values)) == terraform[key]


@pytest.mark.parametrize(
    ("lookback", "window"),
    [(5, 35), (60, 120), (600, 1200), (720, CAP_MINUTES), (1380, CAP_MINUTES)],
)
def test_no_successful_run_means_two_intervals_within_what_cloud_monitoring_can_watch(
    lookback: int, window: int, tmp_path: Path
) -> None:
    settings = {**REQUIRED, "LOOKBACK_MINUTES": str(lookback)}
    terraform = evaluate("local.alert_policies.runs_missing", as_tfvars(settings))
    assert absence_minutes(terraform) == window
    assert lookback + SLACK_MINUTES <= window <= CAP_MINUTES  # never between two healthy runs
    assert absence_minutes(rendered_by_deploy_sh(dry_run(settings, tmp_path))["runs_missing"]) == window


def test_a_daily_schedule_is_refused_while_the_absence_alert_cannot_watch_it(tmp_path: Path) -> None:
    daily = {**REQUIRED, "SCHEDULE": "0 6 * * *", "LOOKBACK_MINUTES": "1440"}
    terraform = terraform_refusal(as_tfvars(daily))
    assert terraform is not None
    assert terraform.variables == {"missing_run_alert"}
    assert "Set missing_run_alert = false" in terraform.message
    script = deploy_sh_refusal(daily, tmp_path)
    assert script is not None
    assert "Set MISSING_RUN_ALERT=false" in script
    without = {**daily, "MISSING_RUN_ALERT": "false"}
    assert terraform_refusal(as_tfvars(without)) is None
    run = dry_run(without, tmp_path)
    assert list(rendered_by_deploy_sh(run)) == ["runs_failing"]
    assert resource("google_monitoring_alert_policy", "runs_missing")["count"] == (
        "${var.missing_run_alert ? 1 : 0}"
    )


def test_both_alerts_sum_across_revisions(tmp_path: Path) -> None:
    for policy in evaluate("local.alert_policies", as_tfvars(REQUIRED)).values():
        assert aggregation(policy) == {
            "alignmentPeriod": "300s",
            "perSeriesAligner": "ALIGN_SUM",
            "crossSeriesReducer": "REDUCE_SUM",  # no groupByFields: one series, whatever the revision
        }


def test_a_failed_run_incident_closes_by_itself() -> None:
    failing = evaluate("local.alert_policies.runs_failing", as_tfvars(REQUIRED))
    condition = failing["conditions"][0]["conditionThreshold"]
    assert condition["evaluationMissingData"] == "EVALUATION_MISSING_DATA_INACTIVE"
    assert failing["alertStrategy"]["autoClose"] == "1800s"  # the shortest Cloud Monitoring allows
    assert (condition["comparison"], condition["thresholdValue"]) == ("COMPARISON_GT", 0)


def test_terraform_passes_every_field_of_the_shared_files_on() -> None:
    text = (TERRAFORM / "monitoring.tf").read_text()
    policies = evaluate("local.alert_policies", as_tfvars(REQUIRED))
    for key, policy in policies.items():
        assert len(policy["conditions"]) == 1, f"monitoring.tf maps one condition of {key}"
        for field in set(field_names(policy)):
            assert f".{field}" in text, f"{key}: {field} never reaches google_monitoring_alert_policy"


def field_names(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [name for key, inner in value.items() for name in (key, *field_names(inner))]
    if isinstance(value, list):
        return [name for inner in value for name in field_names(inner)]
    return []


def test_the_metrics_the_alerts_watch_are_the_same_in_both_paths(tmp_path: Path) -> None:
    terraform = evaluate("local.log_metrics", as_tfvars(REQUIRED))
    run = dry_run(REQUIRED, tmp_path)
    for argv in run.all("gcloud", "logging", "metrics", "create"):
        metric = terraform[argv[4].removeprefix("notifierator/")]
        assert flags(argv)["log-filter"] == metric["filter"]
        assert flags(argv)["description"] == metric["description"]
    policies = evaluate("local.alert_policies", as_tfvars(REQUIRED))
    watched = {json.dumps(policy) for policy in policies.values()}
    for name in terraform:
        assert any(f"logging.googleapis.com/user/notifierator/{name}" in policy for policy in watched)


def test_terraform_waits_for_new_metrics_before_creating_the_policies() -> None:
    wait = resource("time_sleep", "metrics_visible")
    assert re.fullmatch(r"\d+s", unquote(wait["create_duration"]))
    assert int(unquote(wait["create_duration"])[:-1]) >= 60
    assert "google_logging_metric.runs" in wait["triggers"]
    for name in ("runs_failing", "runs_missing"):
        assert resource("google_monitoring_alert_policy", name)["depends_on"] == [
            "${time_sleep.metrics_visible}"
        ]


def test_a_rerun_of_deploy_sh_updates_the_alert_address_and_the_policies(tmp_path: Path) -> None:
    settings = {**example_settings(), "ALERT_EMAIL": "new-oncall@example.com"}
    rerun = dry_run(settings, tmp_path, "--assume-deployed")
    (channel,) = rerun.all("gcloud", "beta", "monitoring", "channels", "update")
    assert flags(channel)["update-channel-labels"] == "email_address=new-oncall@example.com"
    updates = rerun.all("gcloud", "alpha", "monitoring", "policies", "update")
    assert len(updates) == 2
    assert all(flags(argv)["set-notification-channels"] == channel[5] for argv in updates)
    assert not rerun.all("gcloud", "alpha", "monitoring", "policies", "create")


def test_both_paths_name_the_alert_channel_alike(tmp_path: Path) -> None:
    (create,) = dry_run(REQUIRED, tmp_path).all("gcloud", "beta", "monitoring", "channels", "create")
    terraform = resource("google_monitoring_notification_channel", "email")["display_name"]
    assert flags(create)["display-name"] == unquote(terraform).replace("${var.name}", "notifierator")
