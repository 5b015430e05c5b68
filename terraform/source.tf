# The zip holds exactly local.source_files (source_files.tf), each file's content read at plan time.
data "archive_file" "source" {
  type        = "zip"
  output_path = "${path.module}/build/source.zip"
  dynamic "source" {
    for_each = local.source_files
    content {
      content  = file("${var.source_dir}/${source.value}")
      filename = source.value
    }
  }
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
