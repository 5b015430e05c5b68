data "archive_file" "source" {
  type             = "zip"
  source_dir       = var.source_dir
  output_path      = "${path.module}/build/source.zip"
  output_file_mode = "0644"
  # Only what the function runs: main.py, notifier/ and requirements.txt.
  excludes = [
    ".git", ".github", ".ci", ".venv", ".venv-checkov", ".mypy_cache", ".ruff_cache", ".pytest_cache",
    ".hypothesis", ".gitignore", ".gcloudignore", "bench", "bench-output", "demo-output", "sandbox",
    "terraform", "tests", "deploy.sh", "deploy.env", "deploy.env.example", "Makefile", "pyproject.toml",
    "requirements-dev.txt", "requirements-checkov.txt", "README.md",
  ]
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Holds only deployable source zips; access logging adds cost and no audit value here.
  #checkov:skip=CKV_GCP_78:Each upload is a new object named by its content hash, so versioning keeps nothing extra.
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type = "Delete"
    }
  }
  depends_on = [google_project_service.required]
}

# Named by content hash: a changed source is a new object, which makes Terraform redeploy.
resource "google_storage_bucket_object" "source" {
  name   = "${var.name}-${data.archive_file.source.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}
