# Settings of the function default to null (or an empty list): unset, the function's own default
# applies (deploy/function-defaults.env, generated from notifier/variables.py), and the variable is
# not deployed at all. A value equal to that default is not deployed either (environment.tf).

locals {
  # A coarse check of an address; the function's own check is stricter (python -m notifier check).
  email_pattern     = "[^@,\\s<>\"]+@[^@,\\s<>\"]+\\.[^@,\\s<>\"]+"
  iana_zone_pattern = "^(UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})$"
  max_lookback      = tonumber(local.code_defaults.MAX_LOOKBACK_MINUTES)
  max_extra_props   = tonumber(local.code_defaults.MAX_EXTRA_PROPERTIES)
}

# --- Where and what -------------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project that hosts the function."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id (6 to 30 lowercase letters, digits or hyphens)."
  }
}

variable "region" {
  description = "Region of the function, its trigger, its scheduler job and its source bucket."
  type        = string
  default     = "us-central1"
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Cloud Functions region such as us-central1 or europe-west1."
  }
}

variable "name" {
  description = "Base name of every resource (function, topic, scheduler job, service accounts, secrets, Firestore database)."
  type        = string
  default     = "notifierator"
  validation {
    # Also a valid Firestore database id (4 to 63 characters), which is never "(default)".
    condition     = can(regex("^[a-z][a-z0-9-]{2,20}[a-z0-9]$", var.name))
    error_message = "name must be 4 to 22 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "firestore_location" {
  description = "Location of the Firestore database that holds the run history: a multi-region (nam5, eur3) or a region such as us-central1. It cannot change once the database exists."
  type        = string
  default     = "nam5"
  validation {
    condition     = contains(["nam5", "eur3"], var.firestore_location) || can(regex("^[a-z]+-[a-z]+[0-9]+$", var.firestore_location))
    error_message = "firestore_location must be nam5, eur3 or a region such as us-central1."
  }
}

variable "memory" {
  description = "Function memory; 256M runs 100,000 users with room to spare (README, Performance)."
  type        = string
  default     = "256M"
  validation {
    condition     = contains(["128M", "256M", "512M", "1G"], var.memory)
    error_message = "memory must be 128M, 256M, 512M or 1G."
  }
}

variable "timeout_seconds" {
  description = "Function timeout. A run's own budget (RUN_BUDGET_SECONDS) is this minus 60 seconds, so a run always ends before the platform stops it; at 300 that is the function's default of 240 and is not deployed."
  type        = number
  default     = 300
  validation {
    condition     = var.timeout_seconds >= 120 && var.timeout_seconds <= 540 && floor(var.timeout_seconds) == var.timeout_seconds
    error_message = "timeout_seconds must be a whole number from 120 to 540."
  }
}

variable "max_instances" {
  description = "Most instances at once; 1 keeps runs serial and within Mixpanel's 5 concurrent queries."
  type        = number
  default     = 1
  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 5
    error_message = "max_instances must be between 1 and 5 (Mixpanel allows 5 concurrent queries)."
  }
}

variable "source_dir" {
  description = "Directory holding main.py, notifier/ and requirements.txt (deploy/source.json lists what is uploaded), relative to where terraform runs."
  type        = string
  default     = ".."
}

# --- When -----------------------------------------------------------------------------------------

variable "schedule" {
  description = "Cron schedule of the Cloud Scheduler job; its interval must equal lookback_minutes so windows tile."
  type        = string
  default     = "0 * * * *"
  validation {
    condition     = length(split(" ", trimspace(var.schedule))) == 5
    error_message = "schedule must be a five-field cron expression such as \"0 * * * *\"."
  }
}

variable "time_zone" {
  description = "IANA time zone the schedule is read in (Cloud Scheduler's time_zone)."
  type        = string
  default     = "Etc/UTC"
  validation {
    condition     = can(regex(local.iana_zone_pattern, var.time_zone))
    error_message = "time_zone must be an IANA zone name such as Etc/UTC or Europe/Berlin."
  }
}

variable "lookback_minutes" {
  description = "Window each scheduled run covers: the schedule's interval (60 for hourly). Also sizes the no-successful-run alert (missing_run_alert)."
  type        = number
  default     = 60
  validation {
    condition     = var.lookback_minutes >= 1 && var.lookback_minutes <= local.max_lookback && floor(var.lookback_minutes) == var.lookback_minutes
    error_message = "lookback_minutes must be a whole number from 1 to ${local.max_lookback}."
  }
}

# --- Alerts ---------------------------------------------------------------------------------------

variable "alert_email" {
  description = "Who is emailed when a run fails or runs stop succeeding."
  type        = string
  validation {
    condition     = can(regex("^${local.email_pattern}$", var.alert_email))
    error_message = "alert_email must be an email address."
  }
}

variable "missing_run_alert" {
  description = "Alert when no run has succeeded for two intervals (at least one interval plus 30 minutes, at most 23.5 hours, Cloud Monitoring's longest absence window). A schedule longer than 23 hours (daily) cannot be watched that way: set this to false for it; failed runs still alert."
  type        = bool
  default     = true
  validation {
    condition     = !var.missing_run_alert || var.lookback_minutes + local.absence_slack_minutes <= local.absence_cap_minutes
    error_message = "The no-successful-run alert cannot watch a ${var.lookback_minutes}-minute schedule: Cloud Monitoring waits at most ${local.absence_cap_minutes} minutes for a missing run, which must cover one interval plus ${local.absence_slack_minutes} minutes. Set missing_run_alert = false (failed runs still alert) or use a schedule of at most ${local.absence_cap_minutes - local.absence_slack_minutes} minutes."
  }
}

# --- Mixpanel -------------------------------------------------------------------------------------

variable "mixpanel_project_id" {
  description = "Numeric Mixpanel project id (MIXPANEL_PROJECT_ID)."
  type        = string
  validation {
    condition     = can(regex("^[0-9]+$", var.mixpanel_project_id))
    error_message = "mixpanel_project_id must be the numeric project id."
  }
}

variable "mixpanel_region" {
  description = "Mixpanel data residency, us, eu or in (MIXPANEL_REGION); null: the function's default."
  type        = string
  default     = null
  validation {
    condition     = var.mixpanel_region == null ? true : contains(["us", "eu", "in"], var.mixpanel_region)
    error_message = "mixpanel_region must be us, eu or in."
  }
}

variable "mixpanel_service_account" {
  description = "Mixpanel service-account username (MIXPANEL_SERVICE_ACCOUNT); null: the secret is the legacy project API secret."
  type        = string
  default     = null
}

# --- Channels -------------------------------------------------------------------------------------

variable "email_to" {
  description = "Email recipients of the digest (EMAIL_TO); empty turns the email channel off."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for address in var.email_to : can(regex("^${local.email_pattern}$", address))])
    error_message = "email_to must hold plain addresses such as growth@example.com."
  }
}

variable "email_from" {
  description = "Verified SendGrid sender, \"alerts@example.com\" or \"Name <alerts@example.com>\" (EMAIL_FROM); required when email_to is set."
  type        = string
  default     = null
  validation {
    condition     = var.email_from == null ? length(var.email_to) == 0 : can(regex("^(${local.email_pattern}|[^<>]*<${local.email_pattern}>)$", var.email_from))
    error_message = "email_from must be set when email_to is, as alerts@example.com or \"Name <alerts@example.com>\"."
  }
}

variable "sms_to" {
  description = "E.164 phone numbers for the SMS summary (SMS_TO); empty turns the SMS channel off."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for number in var.sms_to : can(regex(local.code_defaults.E164_PATTERN, number))])
    error_message = "sms_to must hold E.164 numbers such as +14155550100."
  }
}

variable "sms_from" {
  description = "E.164 sender number or Twilio Messaging Service SID, MG... (SMS_FROM); required when sms_to is set."
  type        = string
  default     = null
  validation {
    condition     = var.sms_from == null ? length(var.sms_to) == 0 : can(regex(local.code_defaults.E164_PATTERN, var.sms_from)) || can(regex("^MG[0-9a-fA-F]{32}$", var.sms_from))
    error_message = "sms_from must be set when sms_to is, as an E.164 number or a Messaging Service SID (MG + 32 hex)."
  }
}

variable "twilio_account_sid" {
  description = "Twilio account SID, AC... (TWILIO_ACCOUNT_SID); not a secret; required when sms_to is set."
  type        = string
  default     = null
  validation {
    condition     = var.twilio_account_sid == null ? length(var.sms_to) == 0 : can(regex("^AC[0-9a-fA-F]{32}$", var.twilio_account_sid))
    error_message = "twilio_account_sid must be set when sms_to is, as AC followed by 32 hex characters."
  }
}

variable "slack_enabled" {
  description = "Create the Slack webhook secret and turn the Slack channel on (SLACK_WEBHOOK_URL). Off by default: with the variable set, every run needs the secret's value."
  type        = bool
  default     = false
}

# --- The digest -----------------------------------------------------------------------------------

variable "display_time_zone" {
  description = "IANA time zone used to show times in the messages (TIMEZONE); null: the function's default."
  type        = string
  default     = null
  validation {
    condition     = var.display_time_zone == null ? true : can(regex(local.iana_zone_pattern, var.display_time_zone))
    error_message = "display_time_zone must be an IANA zone name such as UTC or America/New_York."
  }
}

variable "notify_when_empty" {
  description = "Send a \"no new users\" digest when a window is empty (NOTIFY_WHEN_EMPTY); null: the function's default."
  type        = bool
  default     = null
}

variable "project_label" {
  description = "The name people know the Mixpanel project by, shown in every message (PROJECT_LABEL); null: \"Mixpanel project <id>\"."
  type        = string
  default     = null
}

variable "profile_url_template" {
  description = "A URL holding {distinct_id} that each listed user links to (PROFILE_URL_TEMPLATE); null: no links."
  type        = string
  default     = null
  validation {
    condition     = var.profile_url_template == null ? true : can(regex("^https://.*\\{distinct_id\\}", var.profile_url_template))
    error_message = "profile_url_template must be an https:// URL holding {distinct_id}."
  }
}

variable "extra_properties" {
  description = "Mixpanel profile properties shown as extra columns (EXTRA_PROPERTIES)."
  type        = list(string)
  default     = []
  validation {
    condition     = length(var.extra_properties) <= local.max_extra_props
    error_message = "extra_properties holds at most ${local.max_extra_props} names."
  }
}

variable "exclude_email_domains" {
  description = "Domains whose users are left out of every message (EXCLUDE_EMAIL_DOMAINS)."
  type        = list(string)
  default     = []
}

variable "email_row_limit" {
  description = "Rows listed in the email body before the rest go to the attachment only (EMAIL_ROW_LIMIT); null: the function's default."
  type        = number
  default     = null
  validation {
    condition     = var.email_row_limit == null ? true : var.email_row_limit >= 1 && var.email_row_limit <= 10000 && floor(var.email_row_limit) == var.email_row_limit
    error_message = "email_row_limit must be a whole number from 1 to 10000."
  }
}

# --- Run history ----------------------------------------------------------------------------------

variable "max_catch_up_minutes" {
  description = "How far back a run covers missed time (MAX_CATCH_UP_MINUTES); null: the function's default."
  type        = number
  default     = null
  validation {
    condition     = var.max_catch_up_minutes == null ? true : var.max_catch_up_minutes >= 0 && var.max_catch_up_minutes <= local.max_lookback && floor(var.max_catch_up_minutes) == var.max_catch_up_minutes
    error_message = "max_catch_up_minutes must be a whole number from 0 to ${local.max_lookback}."
  }
}

variable "late_arrival_minutes" {
  description = "How late a profile may reach Mixpanel and still be reported (LATE_ARRIVAL_MINUTES); null: the function's default."
  type        = number
  default     = null
  validation {
    condition     = var.late_arrival_minutes == null ? true : var.late_arrival_minutes >= 0 && var.late_arrival_minutes <= 1440 && floor(var.late_arrival_minutes) == var.late_arrival_minutes
    error_message = "late_arrival_minutes must be a whole number from 0 to 1440."
  }
}

variable "max_message_age_minutes" {
  description = "A trigger message older than this is logged and acked, not run (MAX_MESSAGE_AGE_MINUTES); null: the function's default."
  type        = number
  default     = null
  validation {
    condition     = var.max_message_age_minutes == null ? true : var.max_message_age_minutes >= 1 && var.max_message_age_minutes <= 10080 && floor(var.max_message_age_minutes) == var.max_message_age_minutes
    error_message = "max_message_age_minutes must be a whole number from 1 to 10080."
  }
}
