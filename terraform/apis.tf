locals {
  services = [
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com", # the provider reads the project (its number) through it
    "cloudscheduler.googleapis.com",
    "eventarc.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]
}

# Every resource that needs an API depends on this, so a fresh project works on the first apply.
resource "google_project_service" "required" {
  for_each           = toset(local.services)
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# Enabling Eventarc creates its service agent, whose permissions take a while to reach every region: a
# trigger created right away fails with "Permission denied while using the Eventarc Service Agent"
# (terraform-provider-google #25294, #14584). The function waits this out on a first apply.
resource "time_sleep" "service_agents_ready" {
  create_duration = "120s"
  triggers        = { services = join(",", sort(local.services)) }
  depends_on      = [google_project_service.required]
}
