"""The two alerts tell the truth, and both paths create them from the same JSON files.

- "a run failed" counts the run summaries whose outcome needs a person (never will_retry, which a
  redelivery usually completes), summed across revisions; its incident closes by itself.
- "no successful run" is a threshold on the count of good runs (not in_progress, not dry_run) over
  one interval plus 30 minutes, with missing data counted as a breach, held as long again: it works
  for every schedule from every minute to daily (Cloud Monitoring allows an alignment period of at
  most 25 hours in an alert), and is off while the schedule is paused.
- deploy.sh replaces a policy only when its rendered content changed (a content_sha label), so an
  unchanged re-run touches neither policy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from string import Template
from typing import Any

import pytest

from notifier.outcome import Outcome
from notifier.variables import GOOD_RUNS, NEEDS_A_PERSON
from tests.deploy_script import ROOT, DryRun, dry_run, example_settings, flags
from tests.deployment import REQUIRED, as_tfvars
from tests.gcloud_sdk import sdk_root
from tests.terraform_config import TERRAFORM, evaluate, resource, unquote

TEMPLATES = {
    "runs_failing": ROOT / "deploy" / "alert-runs-failing.json.tftpl",
    "runs_missing": ROOT / "deploy" / "alert-runs-missing.json.tftpl",
}
WINDOW_CAP_MINUTES = 1500  # Cloud Monitoring's longest alignment period in an alert: 25 hours
# (schedule, its interval in minutes), every minute to daily.
SCHEDULES = [
    ("* * * * *", 1),
    ("*/5 * * * *", 5),
    ("0 * * * *", 60),
    ("0 */6 * * *", 360),
    ("0 9 * * *", 1440),
]


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


def minutes(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    assert int(match.group(1)) % 60 == 0, "Cloud Monitoring takes whole minutes"
    return int(match.group(1)) // 60


def condition(policy: dict[str, Any]) -> dict[str, Any]:
    (only,) = policy["conditions"]
    threshold: dict[str, Any] = only["conditionThreshold"]
    return threshold


def terraform_policies(settings: dict[str, str], **extra: Any) -> dict[str, Any]:
    policies: dict[str, Any] = evaluate("local.alert_policies", {**as_tfvars(settings), **extra})
    return policies


@pytest.mark.parametrize(("schedule", "interval"), SCHEDULES)
def test_both_paths_render_the_same_policies_from_the_shared_files(
    schedule: str, interval: int, tmp_path: Path
) -> None:
    settings = {**example_settings(), "SCHEDULE": schedule, "LOOKBACK_MINUTES": ""}
    settings = {key: value for key, value in settings.items() if value}
    # A fresh deploy: the job is paused, and so is the missing-run alert, in both paths.
    terraform = terraform_policies(settings)
    assert rendered_by_deploy_sh(dry_run(settings, tmp_path)) == terraform
    assert terraform["runs_missing"]["enabled"] is False
    window = minutes(condition(terraform["runs_missing"])["aggregations"][0]["alignmentPeriod"])
    wait = minutes(condition(terraform["runs_missing"])["duration"])
    values = {
        "name": "notifierator",
        "window_minutes": window,
        "window_seconds": window * 60,
        "wait_minutes": wait,
        "wait_seconds": wait * 60,
        "enabled": "false",
        "outcomes": "",
    }
    for key, template in TEMPLATES.items():
        expected = json.loads(Template(template.read_text()).substitute(values))
        expected["documentation"] = terraform[key]["documentation"]  # the outcomes are named in it
        assert expected == terraform[key]


@pytest.mark.parametrize(("schedule", "interval"), SCHEDULES)
def test_no_successful_run_works_for_every_schedule_from_every_minute_to_daily(
    schedule: str, interval: int, tmp_path: Path
) -> None:
    missing = condition(terraform_policies({**REQUIRED, "SCHEDULE": schedule})["runs_missing"])
    (aggregation,) = missing["aggregations"]
    window = minutes(aggregation["alignmentPeriod"])
    # One interval plus 30 minutes: a healthy schedule always has a good run inside the window...
    assert window == interval + 30 <= WINDOW_CAP_MINUTES
    # ...and no data at all (the function never ran, or stopped logging) counts as no good run.
    assert missing["evaluationMissingData"] == "EVALUATION_MISSING_DATA_ACTIVE"
    assert (missing["comparison"], missing["thresholdValue"]) == ("COMPARISON_LT", 1)
    assert aggregation == {
        "alignmentPeriod": f"{window * 60}s",
        "perSeriesAligner": "ALIGN_SUM",
        "crossSeriesReducer": "REDUCE_SUM",  # one series, whatever the revision: a redeploy is no gap
    }
    # Held as long again, so the first run after the alert is switched on (resume) has time to come.
    assert minutes(missing["duration"]) == min(interval + 30, 1410)
    assert "conditionAbsent" not in json.dumps(missing)


def test_the_monitoring_api_takes_what_the_alerts_ask_for() -> None:
    messages = (
        sdk_root() / "lib/googlecloudsdk/generated_clients/apis/monitoring/v3/monitoring_v3_messages.py"
    ).read_text()
    # The SDK's copy of the API's own words: the limits the construction above relies on.
    assert "90,000 seconds (25 hours) for alerting policies" in messages
    assert "the value of the duration field must be greater\n      than or equal to 60 seconds" in messages
    for policy in terraform_policies({**REQUIRED, "SCHEDULE": "0 9 * * *"}).values():
        threshold = condition(policy)
        assert minutes(threshold["duration"]) >= 1  # evaluationMissingData needs it
        assert minutes(threshold["aggregations"][0]["alignmentPeriod"]) <= WINDOW_CAP_MINUTES


def test_every_outcome_is_counted_by_at_most_one_alert_and_will_retry_by_none() -> None:
    assert not set(NEEDS_A_PERSON) & set(GOOD_RUNS)
    neither = set(Outcome) - set(NEEDS_A_PERSON) - set(GOOD_RUNS)
    # A transient failure is redelivered; a race, a dry run or an expired message that gave nothing up
    # says nothing of health.
    assert neither == {Outcome.WILL_RETRY, Outcome.IN_PROGRESS, Outcome.DRY_RUN, Outcome.EXPIRED}
    # What opens "a run failed" is exactly what is logged at ERROR.
    assert {o for o in Outcome if o.severity >= logging.ERROR} == set(NEEDS_A_PERSON)


def test_the_metrics_select_run_summaries_by_outcome_in_both_paths(tmp_path: Path) -> None:
    terraform = evaluate("local.log_metrics", as_tfvars(REQUIRED))
    run = dry_run(REQUIRED, tmp_path)
    created = run.all("gcloud", "logging", "metrics", "create")
    assert {argv[4] for argv in created} == {"notifierator/failed_runs", "notifierator/good_runs"}
    for argv in created:
        metric = terraform[argv[4].removeprefix("notifierator/")]
        assert flags(argv)["log-filter"] == metric["filter"]
        assert flags(argv)["description"] == metric["description"]
    failed, good = terraform["failed_runs"]["filter"], terraform["good_runs"]["filter"]
    for outcome in Outcome:
        assert (f'jsonPayload.outcome="{outcome}"' in failed) is (outcome in NEEDS_A_PERSON)
        assert (f'jsonPayload.outcome="{outcome}"' in good) is (outcome in GOOD_RUNS)
    assert "severity" not in failed + good


def test_a_failed_run_incident_closes_by_itself() -> None:
    failing = terraform_policies(REQUIRED)["runs_failing"]
    threshold = condition(failing)
    assert threshold["evaluationMissingData"] == "EVALUATION_MISSING_DATA_INACTIVE"
    assert failing["alertStrategy"]["autoClose"] == "1800s"  # the shortest Cloud Monitoring allows
    assert (threshold["comparison"], threshold["thresholdValue"]) == ("COMPARISON_GT", 0)
    assert "failed_runs" in threshold["filter"]


def test_the_missing_run_alert_is_on_exactly_while_the_schedule_runs() -> None:
    for paused in (True, False):
        missing = terraform_policies(REQUIRED, schedule_paused=paused)["runs_missing"]
        assert missing["enabled"] is not paused
    job = resource("google_cloud_scheduler_job", "tick")
    assert job["paused"] == "${var.schedule_paused}"
    assert resource("google_monitoring_alert_policy", "runs_missing")["enabled"] == "${local.missing.enabled}"


def test_terraform_passes_every_field_of_the_shared_files_on() -> None:
    text = (TERRAFORM / "monitoring.tf").read_text()
    for key, policy in terraform_policies(REQUIRED).items():
        assert len(policy["conditions"]) == 1, f"monitoring.tf maps one condition of {key}"
        for field in set(field_names(policy)):
            assert f".{field}" in text, f"{key}: {field} never reaches google_monitoring_alert_policy"


def field_names(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [name for key, inner in value.items() for name in (key, *field_names(inner))]
    if isinstance(value, list):
        return [name for inner in value for name in field_names(inner)]
    return []


def test_terraform_waits_for_new_metrics_before_creating_the_policies() -> None:
    wait = resource("time_sleep", "metrics_visible")
    assert re.fullmatch(r"\d+s", unquote(wait["create_duration"]))
    assert int(unquote(wait["create_duration"])[:-1]) >= 60
    assert "google_logging_metric.runs" in wait["triggers"]
    for name in ("runs_failing", "runs_missing"):
        assert resource("google_monitoring_alert_policy", name)["depends_on"] == [
            "${time_sleep.metrics_visible}"
        ]


def test_an_unchanged_rerun_of_deploy_sh_replaces_no_policy(tmp_path: Path) -> None:
    rerun = dry_run(example_settings(), tmp_path, "--assume-deployed")
    assert not rerun.all("gcloud", "alpha", "monitoring", "policies", "update")
    assert not rerun.all("gcloud", "alpha", "monitoring", "policies", "create")
    assert not rerun.all("gcloud", "alpha", "monitoring", "policies", "delete")


def test_each_policy_is_labelled_with_a_digest_of_its_content_and_channel(tmp_path: Path) -> None:
    def labels(settings: dict[str, str], tmp: Path) -> dict[str, str]:
        run = dry_run(settings, tmp)
        creates = run.all("gcloud", "alpha", "monitoring", "policies", "create")
        return {
            Path(flags(argv)["policy-from-file"]).stem: flags(argv)["user-labels"].removeprefix(
                "content_sha="
            )
            for argv in creates
        }

    hourly = labels(example_settings(), tmp_path / "a")
    assert hourly == labels(example_settings(), tmp_path / "b")  # the same content, the same label
    daily = labels(
        {**example_settings(), "SCHEDULE": "0 9 * * *", "LOOKBACK_MINUTES": "1440"}, tmp_path / "c"
    )
    assert daily["runs-missing"] != hourly["runs-missing"]  # a re-run with this change replaces it
    assert daily["runs-failing"] == hourly["runs-failing"]
    # What the label digests: the policy as rendered with the alert on, and the channel.
    run = dry_run(example_settings(), tmp_path / "d")
    (create, _) = run.all("gcloud", "alpha", "monitoring", "policies", "create")
    rendered = Path(flags(create)["policy-from-file"]).read_text()
    content = rendered + "projects/my-growth-project/notificationChannels/NEW\n"
    assert hourly["runs-failing"] == hashlib.sha256(content.encode()).hexdigest()[:40]


def test_a_rerun_of_deploy_sh_points_the_alert_channel_at_the_address(tmp_path: Path) -> None:
    settings = {**example_settings(), "ALERT_EMAIL": "new-oncall@example.com"}
    rerun = dry_run(settings, tmp_path, "--assume-deployed")
    (channel,) = rerun.all("gcloud", "beta", "monitoring", "channels", "update")
    assert flags(channel)["update-channel-labels"] == "email_address=new-oncall@example.com"


def test_both_paths_name_the_alert_channel_alike(tmp_path: Path) -> None:
    (create,) = dry_run(REQUIRED, tmp_path).all("gcloud", "beta", "monitoring", "channels", "create")
    terraform = resource("google_monitoring_notification_channel", "email")["display_name"]
    assert flags(create)["display-name"] == unquote(terraform).replace("${var.name}", "notifierator")


def test_turning_the_missing_run_alert_off_deletes_it_in_both_paths(tmp_path: Path) -> None:
    without = {**example_settings(), "MISSING_RUN_ALERT": "false"}
    run = dry_run(without, tmp_path, "--assume-deployed")
    (delete,) = run.all("gcloud", "alpha", "monitoring", "policies", "delete")
    assert delete[5] == "projects/my-growth-project/alertPolicies/DEPLOYED"
    assert list(rendered_by_deploy_sh(dry_run(without, tmp_path / "fresh"))) == ["runs_failing"]
    assert resource("google_monitoring_alert_policy", "runs_missing")["count"] == (
        "${var.missing_run_alert ? 1 : 0}"
    )
