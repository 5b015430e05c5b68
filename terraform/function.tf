resource "google_cloudfunctions2_function" "notify" {
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = "Tells the team, by email, SMS and Slack, the Mixpanel users who signed up in each window."

  build_config {
    runtime         = "python312"
    entry_point     = "notify"
    service_account = google_service_account.build.id # service_accounts.tf
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
    environment_variables            = local.environment # environment.tf
  }

  event_trigger {
    trigger_region        = var.region
    event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
    pubsub_topic          = google_pubsub_topic.trigger.id
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.trigger.email
  }

  # The environment names secrets and the database by name: they, and the access to them, come first;
  # so do the build account's role and the service agents.
  depends_on = [
    google_project_service.required,
    time_sleep.service_agents_ready, # apis.tf
    google_project_iam_member.build_builds,
    google_service_account_iam_member.pubsub_agent_mints_tokens,
    google_secret_manager_secret_iam_member.runtime_reads,
    google_project_iam_member.runtime_uses_state,
    google_firestore_field.expire_at,
  ]
}
