# Secrets are created empty: their values never pass through Terraform or its state.
# Add a version with gcloud (docs/deploy.md, step 4). environment.tf names them (secret_ids).
resource "google_secret_manager_secret" "secret" {
  for_each  = local.secret_ids
  project   = var.project_id
  secret_id = each.value
  replication {
    auto {}
  }
  depends_on = [google_project_service.required]
}

# Bound on each secret, not the project: the function's account reads these and no other secret.
resource "google_secret_manager_secret_iam_member" "runtime_reads" {
  for_each  = google_secret_manager_secret.secret
  project   = var.project_id
  secret_id = each.value.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.runtime.email}"
}
