variable "project_id" {
  description = "Google Cloud project that hosts the function."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id (6 to 30 lowercase letters, digits or hyphens)."
  }
}

variable "region" {
  description = "Region of the function, its trigger and its source bucket."
  type        = string
  default     = "us-central1"
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Cloud Functions region such as us-central1 or europe-west1."
  }
}

variable "name" {
  description = "Base name of every resource (function, topic, scheduler job, service account)."
  type        = string
  default     = "notifierator"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,20}[a-z0-9]$", var.name))
    error_message = "name must be 4 to 22 lowercase letters, digits or hyphens, starting with a letter."
  }
}

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
    condition     = can(regex("^(UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})$", var.time_zone))
    error_message = "time_zone must be an IANA zone name such as Etc/UTC or Europe/Berlin."
  }
}

variable "lookback_minutes" {
  description = "Window each scheduled run covers; equal to the schedule's interval (60 for hourly)."
  type        = number
  default     = 60
  validation {
    condition     = var.lookback_minutes >= 1 && var.lookback_minutes <= 44640 && floor(var.lookback_minutes) == var.lookback_minutes
    error_message = "lookback_minutes must be a whole number from 1 to 44640 (31 days)."
  }
}

variable "display_time_zone" {
  description = "IANA time zone used to show times in the email and SMS (TIMEZONE)."
  type        = string
  default     = "UTC"
  validation {
    condition     = can(regex("^(UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})$", var.display_time_zone))
    error_message = "display_time_zone must be an IANA zone name such as UTC or America/New_York."
  }
}

variable "mixpanel_project_id" {
  description = "Numeric Mixpanel project id."
  type        = string
  validation {
    condition     = can(regex("^[0-9]+$", var.mixpanel_project_id))
    error_message = "mixpanel_project_id must be the numeric project id."
  }
}

variable "mixpanel_region" {
  description = "Mixpanel data residency: us, eu or in."
  type        = string
  default     = "us"
  validation {
    condition     = contains(["us", "eu", "in"], var.mixpanel_region)
    error_message = "mixpanel_region must be us, eu or in."
  }
}

variable "mixpanel_service_account" {
  description = "Mixpanel service-account username; empty means the secret is the legacy project API secret."
  type        = string
  default     = ""
}

variable "email_to" {
  description = "Email recipients of the digest; empty turns the email channel off."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for address in var.email_to : can(regex("^[^@,\\s]+@[^@,\\s]+\\.[^@,\\s]+$", address))])
    error_message = "email_to must hold plain addresses such as growth@example.com."
  }
}

variable "email_from" {
  description = "Verified SendGrid sender, as address or \"Name <address>\"."
  type        = string
  default     = ""
}

variable "sms_to" {
  description = "E.164 phone numbers for the SMS summary; empty turns the SMS channel off."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for number in var.sms_to : can(regex("^\\+[1-9][0-9]{1,14}$", number))])
    error_message = "sms_to must hold E.164 numbers such as +14155550100."
  }
}

variable "sms_from" {
  description = "E.164 sender number or Twilio Messaging Service SID (MG...)."
  type        = string
  default     = ""
  validation {
    condition     = var.sms_from == "" || can(regex("^(\\+[1-9][0-9]{1,14}|MG[0-9a-fA-F]{32})$", var.sms_from))
    error_message = "sms_from must be an E.164 number or a Messaging Service SID."
  }
}

variable "twilio_account_sid" {
  description = "Twilio account SID (AC...); not a secret."
  type        = string
  default     = ""
  validation {
    condition     = var.twilio_account_sid == "" || can(regex("^AC[0-9a-fA-F]{32}$", var.twilio_account_sid))
    error_message = "twilio_account_sid must be AC followed by 32 hex characters."
  }
}

variable "notify_when_empty" {
  description = "Send a \"no new users\" email and SMS when a window is empty."
  type        = bool
  default     = false
}

variable "alert_email" {
  description = "Who is emailed when runs fail or stop succeeding."
  type        = string
  validation {
    condition     = can(regex("^[^@,\\s]+@[^@,\\s]+\\.[^@,\\s]+$", var.alert_email))
    error_message = "alert_email must be an email address."
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
  description = "Function timeout; a run's own retry budget is this minus 60 seconds."
  type        = number
  default     = 300
  validation {
    condition     = var.timeout_seconds >= 120 && var.timeout_seconds <= 540
    error_message = "timeout_seconds must be between 120 and 540."
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
  description = "Directory holding main.py, notifier/ and requirements.txt."
  type        = string
  default     = ".."
}
