resource "google_pubsub_topic" "trigger" {
  #checkov:skip=CKV_GCP_83:Messages carry only a lookback or a window, no data worth a customer key; Google-managed encryption applies.
  project                    = var.project_id
  name                       = "${var.name}${local.facts["suffix.topic"]}"
  message_retention_duration = "86400s"
  depends_on                 = [google_project_service.required]
}
