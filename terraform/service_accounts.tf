# The function runs as its own account: it reads its secrets (secrets.tf) and its Firestore database
# (firestore.tf), and nothing else.
resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = "${var.name}${local.facts["suffix.runtime_account"]}"
  display_name = "Notifierator function runtime"
  depends_on   = [google_project_service.required] # iam.googleapis.com, on a fresh project
}

# Eventarc pushes Pub/Sub messages to the function as this account.
resource "google_service_account" "trigger" {
  project      = var.project_id
  account_id   = "${var.name}${local.facts["suffix.trigger_account"]}"
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

# Cloud Build builds the function as this account, named explicitly: a new project's default build
# account (Compute's) often lacks the role, and the build would fail.
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name}${local.facts["suffix.build_account"]}"
  display_name = "Notifierator function build"
  depends_on   = [google_project_service.required]
}

resource "google_project_iam_member" "build_builds" {
  #checkov:skip=CKV_GCP_49:Cloud Build runs builds in the project: the builder role is granted there, to the account that builds this function only.
  project = var.project_id
  role    = "roles/cloudbuild.builds.builder"
  member  = "serviceAccount:${google_service_account.build.email}"
}

# Pub/Sub's service agent mints the tokens Eventarc's push carries, as the trigger's account; projects
# created before April 2021 lack that grant, which gcloud adds on the project. Here it is bound on the
# trigger's account alone.
data "google_project" "this" {
  project_id = var.project_id
  depends_on = [google_project_service.required] # cloudresourcemanager.googleapis.com
}

resource "google_service_account_iam_member" "pubsub_agent_mints_tokens" {
  service_account_id = google_service_account.trigger.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}
