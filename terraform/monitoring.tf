locals {
  # alerting.tf renders these from deploy/alert-*.json.tftpl, the files deploy.sh sends as they are.
  failing           = local.alert_policies.runs_failing
  failing_condition = local.failing.conditions[0]
  missing           = local.alert_policies.runs_missing
  missing_condition = local.missing.conditions[0]
}

resource "google_logging_metric" "runs" {
  for_each    = local.log_metrics
  project     = var.project_id
  name        = "${var.name}/${each.key}"
  description = each.value.description
  filter      = each.value.filter
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
  depends_on = [google_project_service.required]
}

moved {
  from = google_logging_metric.failed_runs
  to   = google_logging_metric.runs["failed_runs"]
}

moved {
  from = google_logging_metric.good_runs
  to   = google_logging_metric.runs["good_runs"]
}

# Alert policies on a log-based metric created seconds earlier fail with "Cannot find metric(s)"
# (Cloud Monitoring can take minutes to see it), so the first apply waits between the two. Should an
# apply still fail that way, running it again finishes the job.
resource "time_sleep" "metrics_visible" {
  create_duration = "180s"
  triggers        = { for key, metric in google_logging_metric.runs : key => metric.id }
}

resource "google_monitoring_notification_channel" "email" {
  project      = var.project_id
  display_name = "${var.name} alerts"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }
  depends_on = [google_project_service.required]
}

resource "google_monitoring_alert_policy" "runs_failing" {
  project      = var.project_id
  display_name = local.failing.displayName
  combiner     = local.failing.combiner
  conditions {
    display_name = local.failing_condition.displayName
    condition_threshold {
      filter                  = local.failing_condition.conditionThreshold.filter
      comparison              = local.failing_condition.conditionThreshold.comparison
      threshold_value         = local.failing_condition.conditionThreshold.thresholdValue
      duration                = local.failing_condition.conditionThreshold.duration
      evaluation_missing_data = local.failing_condition.conditionThreshold.evaluationMissingData
      dynamic "aggregations" {
        for_each = local.failing_condition.conditionThreshold.aggregations
        content {
          alignment_period     = aggregations.value.alignmentPeriod
          per_series_aligner   = aggregations.value.perSeriesAligner
          cross_series_reducer = aggregations.value.crossSeriesReducer
        }
      }
      trigger {
        count = local.failing_condition.conditionThreshold.trigger.count
      }
    }
  }
  alert_strategy {
    auto_close = local.failing.alertStrategy.autoClose
  }
  documentation {
    content   = local.failing.documentation.content
    mime_type = local.failing.documentation.mimeType
  }
  notification_channels = [google_monitoring_notification_channel.email.id]
  depends_on            = [time_sleep.metrics_visible]
}

resource "google_monitoring_alert_policy" "runs_missing" {
  count        = var.missing_run_alert ? 1 : 0
  project      = var.project_id
  display_name = local.missing.displayName
  combiner     = local.missing.combiner
  enabled      = local.missing.enabled
  conditions {
    display_name = local.missing_condition.displayName
    condition_threshold {
      filter                  = local.missing_condition.conditionThreshold.filter
      comparison              = local.missing_condition.conditionThreshold.comparison
      threshold_value         = local.missing_condition.conditionThreshold.thresholdValue
      duration                = local.missing_condition.conditionThreshold.duration
      evaluation_missing_data = local.missing_condition.conditionThreshold.evaluationMissingData
      dynamic "aggregations" {
        for_each = local.missing_condition.conditionThreshold.aggregations
        content {
          alignment_period     = aggregations.value.alignmentPeriod
          per_series_aligner   = aggregations.value.perSeriesAligner
          cross_series_reducer = aggregations.value.crossSeriesReducer
        }
      }
      trigger {
        count = local.missing_condition.conditionThreshold.trigger.count
      }
    }
  }
  documentation {
    content   = local.missing.documentation.content
    mime_type = local.missing.documentation.mimeType
  }
  notification_channels = [google_monitoring_notification_channel.email.id]
  depends_on            = [time_sleep.metrics_visible]
}

moved {
  from = google_monitoring_alert_policy.runs_missing
  to   = google_monitoring_alert_policy.runs_missing[0]
}
