# The function runs as its own account: it reads its secrets (secrets.tf) and its Firestore database
# (firestore.tf), and nothing else.
resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = "${var.name}-run"
  display_name = "Notifierator function runtime"
  depends_on   = [google_project_service.required] # iam.googleapis.com, on a fresh project
}

# Eventarc pushes Pub/Sub messages to the function as this account.
resource "google_service_account" "trigger" {
  project      = var.project_id
  account_id   = "${var.name}-trigger"
  display_name = "Notifierator Pub/Sub trigger"
  depends_on   = [google_project_service.required]
}

resource "google_cloud_run_v2_service_iam_member" "trigger_invokes_function" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.notify.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}
