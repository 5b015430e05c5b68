# What the function is told: its environment variables and the secrets they name.
# No resources here (tests evaluate this file with `terraform console`).
locals {
  # The variables' table (notifier/variables.py), written to deploy/variables.env: NAME.fact=value.
  facts = {
    for line in regexall("(?m)^([A-Za-z0-9_.]+)=(.*)$", file("${path.module}/../deploy/variables.env")) :
    line[0] => line[1]
  }

  # The run history lives in a database of its own, so a (default) database is never touched. Its
  # records in these collection groups carry expire_at, where Firestore's TTL policy deletes them
  # (the singleton coverage document does not expire).
  firestore_database    = var.name
  ttl_collection_groups = ["runs", "reported"]

  # Secret Manager secret ids by the variable that names them. Slack only when enabled: the channel is
  # on whenever SLACK_WEBHOOK_URL is set, and an empty secret would make every run a bad configuration.
  secret_ids = {
    for key, id in local.facts : trimsuffix(key, ".secret") => "${var.name}-${id}"
    if endswith(key, ".secret") && (var.slack_enabled || key != "SLACK_WEBHOOK_URL.secret")
  }

  settings = merge(
    { for variable, secret in local.secret_ids : variable => "projects/${var.project_id}/secrets/${secret}/versions/latest" },
    local.function_settings, # function_settings.tf
    {
      DEFAULT_LOOKBACK_MINUTES = tostring(local.lookback_minutes) # schedule.tf
      STATE_STORE              = "firestore"
      FIRESTORE_DATABASE       = local.firestore_database
      # The run's own budget ends before the platform would stop it.
      RUN_BUDGET_SECONDS = tostring(var.timeout_seconds - tonumber(local.facts.RUN_BUDGET_MARGIN_SECONDS))
    },
  )

  # Only what is set and differs from the function's own default.
  environment = {
    for variable, value in local.settings : variable => value
    if value != null && value != "" && value != lookup(local.facts, "${variable}.default", "")
  }
}
