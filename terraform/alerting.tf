# What the alerts watch and say: two log-based metrics on the run summaries, selected by outcome, and
# two alert policies rendered from the JSON files deploy.sh sends as they are (deploy/alert-*.json.tftpl).
# No resources here (tests evaluate this file with `terraform console`); monitoring.tf creates them.
locals {
  # Every run ends with one JSON line, event=run_summary, that names its outcome.
  run_summary_filter = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=\"${var.name}\"",
    "jsonPayload.event=\"run_summary\"",
  ])
  # The outcomes each alert counts (notifier/variables.py says why), as a Logging query.
  outcomes = { for kind in ["need_a_person", "good"] : kind => split(" ", local.facts["outcomes.${kind}"]) }
  outcome_filter = {
    for kind, names in local.outcomes :
    kind => "(${join(" OR ", [for outcome in names : "jsonPayload.outcome=\"${outcome}\""])})"
  }
  log_metrics = {
    failed_runs = {
      description = "${var.name} run summaries that need a person: ${join(", ", local.outcomes.need_a_person)}"
      filter      = "${local.run_summary_filter} AND ${local.outcome_filter.need_a_person}"
    }
    good_runs = {
      description = "${var.name} run summaries of runs that did their job: ${join(", ", local.outcomes.good)}"
      filter      = "${local.run_summary_filter} AND ${local.outcome_filter.good}"
    }
  }

  # "no successful run": no good run in the last interval plus the slack (the window), for as long
  # again (the wait), so that the first run after the alert is switched on has time to arrive.
  alert_slack_minutes  = tonumber(local.facts.ALERT_SLACK_MINUTES)
  alert_window_minutes = min(local.lookback_minutes + local.alert_slack_minutes, tonumber(local.facts.ALERT_WINDOW_CAP_MINUTES))
  alert_wait_minutes   = min(local.lookback_minutes + local.alert_slack_minutes, tonumber(local.facts.ALERT_WAIT_CAP_MINUTES))

  alert_policies = {
    runs_failing = jsondecode(templatefile("${path.module}/../deploy/alert-runs-failing.json.tftpl", {
      name     = var.name
      outcomes = join(", ", local.outcomes.need_a_person)
    }))
    runs_missing = jsondecode(templatefile("${path.module}/../deploy/alert-runs-missing.json.tftpl", {
      name           = var.name
      outcomes       = join(", ", local.outcomes.good)
      window_minutes = local.alert_window_minutes
      window_seconds = local.alert_window_minutes * 60
      wait_minutes   = local.alert_wait_minutes
      wait_seconds   = local.alert_wait_minutes * 60
      # Off while the schedule is paused: nothing runs then, on purpose.
      enabled = !var.schedule_paused
    }))
  }
}
