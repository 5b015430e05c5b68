resource "google_pubsub_topic" "trigger" {
  project                    = var.project_id
  name                       = "${var.name}-trigger"
  message_retention_duration = "86400s"
  depends_on                 = [google_project_service.required]
}
