# The deployment's own settings. The function's settings are in function_settings.tf, generated from
# notifier/variables.py with their checks; the patterns and bounds below are read from
# deploy/variables.env, generated from the same table (environment.tf reads it into local.facts).
# Defaults here are literals, as Terraform requires: tests/test_deploy_parity.py holds them to the table.

# --- Where and what -------------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project that hosts the function."
  type        = string
  validation {
    condition     = can(regex(local.facts["PROJECT_ID.pattern"], var.project_id))
    error_message = "project_id must be a Google Cloud project id (6 to 30 lowercase letters, digits or hyphens)."
  }
}

variable "region" {
  description = "Region of the function, its trigger, its scheduler job and its source bucket."
  type        = string
  default     = "us-central1"
  validation {
    condition     = can(regex(local.facts["REGION.pattern"], var.region))
    error_message = "region must be a Cloud Functions region such as us-central1 or europe-west10."
  }
}

variable "name" {
  description = "Base name of every resource (function, topic, scheduler job, service accounts, secrets, Firestore database)."
  type        = string
  default     = "notifierator"
  validation {
    # Also a valid Firestore database id (4 to 63 characters), which is never "(default)".
    condition     = can(regex(local.facts["NAME.pattern"], var.name))
    error_message = "name must be 4 to 22 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "firestore_location" {
  description = "Location of the Firestore database that holds the run history: a multi-region (nam5, eur3) or a region such as us-central1. It cannot change once the database exists."
  type        = string
  default     = "nam5"
  validation {
    condition     = can(regex(local.facts["FIRESTORE_LOCATION.pattern"], var.firestore_location))
    error_message = "firestore_location must be nam5, eur3 or a region such as us-central1."
  }
}

variable "memory" {
  description = "Function memory; 256M runs 100,000 users with room to spare (docs/performance.md)."
  type        = string
  default     = "256M"
  validation {
    condition     = can(regex(local.facts["MEMORY.pattern"], var.memory))
    error_message = "memory must be 128M, 256M, 512M or 1G."
  }
}

variable "timeout_seconds" {
  description = "Function timeout. A run's own budget (RUN_BUDGET_SECONDS) is this minus 60 seconds, so a run always ends before the platform stops it; at 300 that is the function's default of 240 and is not deployed."
  type        = number
  default     = 300
  validation {
    condition     = var.timeout_seconds >= tonumber(local.facts["TIMEOUT_SECONDS.min"]) && var.timeout_seconds <= tonumber(local.facts["TIMEOUT_SECONDS.max"]) && floor(var.timeout_seconds) == var.timeout_seconds
    error_message = "timeout_seconds must be a whole number from 120 to 540."
  }
}

variable "max_instances" {
  description = "Most instances at once; 1 keeps runs serial and within Mixpanel's 5 concurrent queries."
  type        = number
  default     = 1
  validation {
    condition     = var.max_instances >= tonumber(local.facts["MAX_INSTANCES.min"]) && var.max_instances <= tonumber(local.facts["MAX_INSTANCES.max"]) && floor(var.max_instances) == var.max_instances
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
  description = "Cron schedule of the Cloud Scheduler job: every N minutes (N divides 60, \"*/15 * * * *\"), hourly (\"0 * * * *\"), every N hours (N divides 24, \"0 */6 * * *\") or daily (\"0 9 * * *\"). Its interval is each run's window, so the windows tile time."
  type        = string
  default     = "0 * * * *"
  validation {
    condition     = can(regex(local.facts["SCHEDULE.pattern"], join(" ", regexall("[^ ]+", var.schedule))))
    error_message = "schedule must be a schedule that repeats at a fixed interval, so windows tile time: \"*/15 * * * *\", \"0 * * * *\", \"0 */6 * * *\" or \"0 9 * * *\"."
  }
}

variable "time_zone" {
  description = "IANA time zone the schedule is read in (Cloud Scheduler's time_zone)."
  type        = string
  default     = "Etc/UTC"
  validation {
    condition     = can(regex(local.facts["SCHEDULE_TIME_ZONE.pattern"], var.time_zone))
    error_message = "time_zone must be an IANA zone name such as Etc/UTC or Europe/Berlin."
  }
}

variable "lookback_minutes" {
  description = "Window each scheduled run covers; null: the schedule's interval, which it must equal (60 for hourly)."
  type        = number
  default     = null
  validation {
    condition     = var.lookback_minutes == null ? true : var.lookback_minutes >= tonumber(local.facts["LOOKBACK_MINUTES.min"]) && var.lookback_minutes <= tonumber(local.facts["LOOKBACK_MINUTES.max"]) && floor(var.lookback_minutes) == var.lookback_minutes
    error_message = "lookback_minutes must be a whole number from 1 to 44640."
  }
  validation {
    condition     = var.lookback_minutes == null || local.schedule_minutes == null ? true : var.lookback_minutes == local.schedule_minutes
    error_message = "lookback_minutes must equal the schedule's interval (${coalesce(local.schedule_minutes, 0)} minutes), or be left out: a longer window reports users twice, a shorter one never reports some."
  }
}

variable "schedule_paused" {
  description = "Keep the scheduler job paused, and the no-successful-run alert off with it. A first deploy is paused until `python -m notifier check` passes; then set this to false and apply again (docs/deploy.md)."
  type        = bool
  default     = true
}

# --- Alerts ---------------------------------------------------------------------------------------

variable "alert_email" {
  description = "Who is emailed when a run needs a person or runs stop succeeding."
  type        = string
  validation {
    condition     = can(regex(local.facts["ALERT_EMAIL.pattern"], var.alert_email))
    error_message = "alert_email must be an email address."
  }
}

variable "missing_run_alert" {
  description = "Alert when no run has succeeded for two intervals (at least one interval plus 30 minutes, at most 25 hours): works for every schedule from every minute to daily."
  type        = bool
  default     = true
}

variable "slack_enabled" {
  description = "Create the Slack webhook secret and turn the Slack channel on (SLACK_WEBHOOK_URL). Off by default: with the variable set, every run needs the secret's value."
  type        = bool
  default     = false
}
