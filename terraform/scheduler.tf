resource "google_cloud_scheduler_job" "tick" {
  project     = var.project_id
  region      = var.region
  name        = "${var.name}-tick"
  description = "Asks Notifierator for the users of the last ${var.lookback_minutes} minutes."
  schedule    = var.schedule
  time_zone   = var.time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.trigger.id
    data       = base64encode(jsonencode({ lookback_minutes = var.lookback_minutes }))
  }

  retry_config {
    retry_count = 3
  }

  depends_on = [google_project_service.required]
}
