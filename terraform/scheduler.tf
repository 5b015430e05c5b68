# Created paused: the secrets have no values yet, and every tick would be a bad configuration. Once
# `python -m notifier check` passes, schedule_paused = false resumes it (docs/deploy.md).
resource "google_cloud_scheduler_job" "tick" {
  project     = var.project_id
  region      = var.region
  name        = "${var.name}${local.facts["suffix.job"]}"
  description = "Asks Notifierator for the users of the last ${local.lookback_minutes} minutes."
  schedule    = var.schedule
  time_zone   = var.time_zone
  paused      = var.schedule_paused

  pubsub_target {
    topic_name = google_pubsub_topic.trigger.id
    data       = base64encode(jsonencode({ lookback_minutes = local.lookback_minutes }))
  }

  retry_config {
    retry_count = 3
  }

  depends_on = [google_project_service.required]
}
