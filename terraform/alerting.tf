# What the alerts watch and say: two log-based metrics on the run summaries, and two alert policies
# rendered from the JSON files deploy.sh sends as they are (deploy/alert-*.json.tftpl).
# No resources here (tests evaluate this file with `terraform console`); monitoring.tf creates them.
locals {
  # Every run ends with one JSON line, event=run_summary; ERROR ones need a person.
  run_summary_filter = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=\"${var.name}\"",
    "jsonPayload.event=\"run_summary\"",
  ])
  log_metrics = {
    failed_runs = {
      description = "${var.name} run summaries at ERROR: runs that need a person"
      filter      = "${local.run_summary_filter} AND severity>=ERROR"
    }
    good_runs = {
      description = "${var.name} run summaries below ERROR: runs that did their job"
      filter      = "${local.run_summary_filter} AND severity<ERROR"
    }
  }

  # Cloud Monitoring waits at most 23.5 hours for a metric that stops arriving.
  absence_cap_minutes = 1410
  # A run logs its summary up to the function's timeout after its tick, and log-based metrics arrive
  # minutes late: a window shorter than one interval plus this would fire between healthy runs.
  absence_slack_minutes = 30
  # Two intervals, at least one interval plus the slack, at most the cap (missing_run_alert refuses
  # schedules the cap cannot cover).
  absence_minutes = min(
    max(2 * var.lookback_minutes, var.lookback_minutes + local.absence_slack_minutes),
    local.absence_cap_minutes,
  )

  alert_policies = {
    runs_failing = jsondecode(templatefile("${path.module}/../deploy/alert-runs-failing.json.tftpl", {
      name = var.name
    }))
    runs_missing = jsondecode(templatefile("${path.module}/../deploy/alert-runs-missing.json.tftpl", {
      name            = var.name
      absence_minutes = local.absence_minutes
      absence_seconds = local.absence_minutes * 60
    }))
  }
}
