output "function_name" {
  description = "The Cloud Function's name."
  value       = google_cloudfunctions2_function.notify.name
}

output "topic" {
  description = "Publish trigger messages here (gcloud pubsub topics publish, or python -m notifier publish)."
  value       = google_pubsub_topic.trigger.name
}

output "scheduler_job" {
  description = "The Cloud Scheduler job that triggers each window."
  value       = google_cloud_scheduler_job.tick.name
}

output "runtime_service_account" {
  description = "The account the function runs as; it can read only its secrets and its Firestore database."
  value       = google_service_account.runtime.email
}

output "secret_names" {
  description = "Secret Manager secrets to add versions to, by the environment variable that names them."
  value       = { for key, secret in google_secret_manager_secret.secret : key => secret.secret_id }
}

output "firestore_database" {
  description = "The Firestore database that holds the run history (FIRESTORE_DATABASE)."
  value       = google_firestore_database.state.name
}
