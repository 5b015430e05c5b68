# The run history (SPEC, Durable state) in a Native-mode database of its own, named after the
# deployment (environment.tf), so a (default) database the project may have is never touched.
resource "google_firestore_database" "state" {
  project                 = var.project_id
  name                    = local.firestore_database
  location_id             = var.firestore_location
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  # terraform destroy leaves the database (and its history) in place; delete it by hand if meant.
  deletion_policy = "ABANDON"
  depends_on      = [google_project_service.required]
}

# Records carry expire_at; Firestore's TTL policy deletes them after it, so the history stays small.
resource "google_firestore_field" "expire_at" {
  for_each   = toset(local.ttl_collection_groups)
  project    = var.project_id
  database   = google_firestore_database.state.name
  collection = each.value
  field      = "expire_at"
  ttl_config {}
}

# Firestore has no IAM binding on a database, only on the project. The narrowest grant is
# roles/datastore.user (read and write documents; no database administration) on the project with an
# IAM condition on the database's resource name, so the function's account reaches this database and
# no other one of the project.
resource "google_project_iam_member" "runtime_uses_state" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.runtime.email}"
  condition {
    title       = "${var.name}-state-only"
    description = "Only the ${google_firestore_database.state.name} Firestore database"
    expression  = "resource.name == \"projects/${var.project_id}/databases/${google_firestore_database.state.name}\""
  }
}
