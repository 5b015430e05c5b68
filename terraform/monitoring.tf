locals {
  # Every run ends with one JSON line, event=run_summary; ERROR ones need a person.
  run_summary_filter = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=\"${var.name}\"",
    "jsonPayload.event=\"run_summary\"",
  ])
  # Cloud Monitoring caps an absence condition at 23.5 hours.
  silence_seconds = min(2 * var.lookback_minutes * 60, 84600)
}

resource "google_logging_metric" "failed_runs" {
  project = var.project_id
  name    = "${var.name}/failed_runs"
  filter  = "${local.run_summary_filter} AND severity>=ERROR"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_logging_metric" "good_runs" {
  project = var.project_id
  name    = "${var.name}/good_runs"
  filter  = "${local.run_summary_filter} AND severity<ERROR"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_monitoring_notification_channel" "email" {
  project      = var.project_id
  display_name = "Notifierator alerts"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }
}

resource "google_monitoring_alert_policy" "runs_failing" {
  project      = var.project_id
  display_name = "Notifierator: a run failed"
  combiner     = "OR"
  conditions {
    display_name = "a run_summary line at ERROR"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.failed_runs.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }
  documentation {
    content   = "A Notifierator run logged an ERROR run_summary. Its message says what to fix; README, Operations, lists every outcome."
    mime_type = "text/markdown"
  }
  notification_channels = [google_monitoring_notification_channel.email.id]
}

resource "google_monitoring_alert_policy" "runs_missing" {
  project      = var.project_id
  display_name = "Notifierator: no successful run for two intervals"
  combiner     = "OR"
  conditions {
    display_name = "no good run_summary line"
    condition_absent {
      filter   = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.good_runs.name}\" AND resource.type=\"cloud_run_revision\""
      duration = "${local.silence_seconds}s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }
  documentation {
    content   = "No Notifierator run has succeeded for two scheduler intervals: check the scheduler job, the trigger and the function's logs."
    mime_type = "text/markdown"
  }
  notification_channels = [google_monitoring_notification_channel.email.id]
}
