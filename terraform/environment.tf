# What the function is told: its environment variables and the secrets they name.
# No resources here (tests evaluate this file with `terraform console`).
locals {
  # The function's own defaults and limits, generated from notifier/variables.py.
  code_defaults = {
    for line in regexall("(?m)^([A-Z0-9_]+)=(.*)$", file("${path.module}/../deploy/function-defaults.env")) :
    line[0] => line[1]
  }

  # The run history lives in a database of its own, so a (default) database is never touched. Its
  # records in these collection groups carry expire_at, where Firestore's TTL policy deletes them
  # (the singleton coverage document does not expire).
  firestore_database    = var.name
  ttl_collection_groups = ["runs", "reported"]

  # Secret Manager secret ids by the variable that names them. Slack only when enabled: the channel is
  # on whenever SLACK_WEBHOOK_URL is set, and an empty secret would make every run a bad configuration.
  secret_ids = merge(
    {
      MIXPANEL_SECRET   = "${var.name}-mixpanel-secret"
      SENDGRID_API_KEY  = "${var.name}-sendgrid-api-key"
      TWILIO_AUTH_TOKEN = "${var.name}-twilio-auth-token"
    },
    var.slack_enabled ? { SLACK_WEBHOOK_URL = "${var.name}-slack-webhook-url" } : {},
  )

  settings = merge(
    {
      for variable, secret in local.secret_ids :
      variable => "projects/${var.project_id}/secrets/${secret}/versions/latest"
    },
    {
      MIXPANEL_PROJECT_ID      = var.mixpanel_project_id
      MIXPANEL_REGION          = var.mixpanel_region
      MIXPANEL_SERVICE_ACCOUNT = var.mixpanel_service_account
      EMAIL_TO                 = join(",", var.email_to)
      EMAIL_FROM               = var.email_from
      SMS_TO                   = join(",", var.sms_to)
      SMS_FROM                 = var.sms_from
      TWILIO_ACCOUNT_SID       = var.twilio_account_sid
      TIMEZONE                 = var.display_time_zone
      DEFAULT_LOOKBACK_MINUTES = tostring(var.lookback_minutes)
      NOTIFY_WHEN_EMPTY        = tostring(var.notify_when_empty)
      PROJECT_LABEL            = var.project_label
      PROFILE_URL_TEMPLATE     = var.profile_url_template
      EXTRA_PROPERTIES         = join(",", var.extra_properties)
      EXCLUDE_EMAIL_DOMAINS    = join(",", var.exclude_email_domains)
      STATE_STORE              = "firestore"
      FIRESTORE_DATABASE       = local.firestore_database
      MAX_CATCH_UP_MINUTES     = tostring(var.max_catch_up_minutes)
      LATE_ARRIVAL_MINUTES     = tostring(var.late_arrival_minutes)
      EMAIL_ROW_LIMIT          = tostring(var.email_row_limit)
      # The run's own budget ends a minute before the platform would stop it.
      RUN_BUDGET_SECONDS      = tostring(var.timeout_seconds - 60)
      MAX_MESSAGE_AGE_MINUTES = tostring(var.max_message_age_minutes)
    },
  )

  # Only what is set and differs from the function's own default.
  environment = {
    for variable, value in local.settings : variable => value
    if value != null && value != "" && value != lookup(local.code_defaults, variable, "")
  }
}
