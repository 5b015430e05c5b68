locals {
  environment = {
    MIXPANEL_PROJECT_ID      = var.mixpanel_project_id
    MIXPANEL_REGION          = var.mixpanel_region
    MIXPANEL_SERVICE_ACCOUNT = var.mixpanel_service_account
    MIXPANEL_SECRET          = "${google_secret_manager_secret.secret["MIXPANEL_SECRET"].id}/versions/latest"
    EMAIL_TO                 = join(",", var.email_to)
    EMAIL_FROM               = var.email_from
    SENDGRID_API_KEY         = "${google_secret_manager_secret.secret["SENDGRID_API_KEY"].id}/versions/latest"
    SMS_TO                   = join(",", var.sms_to)
    SMS_FROM                 = var.sms_from
    TWILIO_ACCOUNT_SID       = var.twilio_account_sid
    TWILIO_AUTH_TOKEN        = "${google_secret_manager_secret.secret["TWILIO_AUTH_TOKEN"].id}/versions/latest"
    TIMEZONE                 = var.display_time_zone
    DEFAULT_LOOKBACK_MINUTES = tostring(var.lookback_minutes)
    NOTIFY_WHEN_EMPTY        = tostring(var.notify_when_empty)
    RUN_BUDGET_SECONDS       = tostring(var.timeout_seconds - 60)
    MAX_MESSAGE_AGE_MINUTES  = "1440"
    EMAIL_ROW_LIMIT          = "500"
  }
}

resource "google_cloudfunctions2_function" "notify" {
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = "Emails and texts the team the Mixpanel users who signed up in each window."

  build_config {
    runtime     = "python312"
    entry_point = "notify"
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = var.memory
    timeout_seconds                  = var.timeout_seconds
    min_instance_count               = 0
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = 1
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.runtime.email
    environment_variables            = local.environment
  }

  event_trigger {
    trigger_region        = var.region
    event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
    pubsub_topic          = google_pubsub_topic.trigger.id
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.trigger.email
  }

  depends_on = [
    google_project_service.required,
    google_secret_manager_secret_iam_member.runtime_reads,
  ]
}
