# Secrets are created empty: their values never pass through Terraform or its state.
# Add a version with gcloud (README, Deploy).
locals {
  secrets = {
    MIXPANEL_SECRET   = "${var.name}-mixpanel-secret"
    SENDGRID_API_KEY  = "${var.name}-sendgrid-api-key"
    TWILIO_AUTH_TOKEN = "${var.name}-twilio-auth-token"
  }
}

resource "google_secret_manager_secret" "secret" {
  for_each  = local.secrets
  project   = var.project_id
  secret_id = each.value
  replication {
    auto {}
  }
  depends_on = [google_project_service.required]
}

resource "google_secret_manager_secret_iam_member" "runtime_reads" {
  for_each  = google_secret_manager_secret.secret
  project   = var.project_id
  secret_id = each.value.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.runtime.email}"
}
