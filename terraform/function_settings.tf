# Generated from notifier/variables.py by `python -m notifier.variables --write`: do not edit.
# Unset (null or empty): the function's own default applies.

variable "mixpanel_project_id" {
  description = "Numeric Mixpanel project id. (MIXPANEL_PROJECT_ID)"
  type        = string
  validation {
    condition     = can(regex(local.facts["MIXPANEL_PROJECT_ID.pattern"], var.mixpanel_project_id))
    error_message = "mixpanel_project_id must be the numeric project id, like 1234567."
  }
}

variable "mixpanel_region" {
  description = "Data residency of the project: the host the function asks. (MIXPANEL_REGION)"
  type        = string
  default     = null
  validation {
    condition     = var.mixpanel_region == null ? true : can(regex(local.facts["MIXPANEL_REGION.pattern"], var.mixpanel_region))
    error_message = "mixpanel_region must be us, eu or in."
  }
}

variable "mixpanel_service_account" {
  description = "Service-account username; unset: MIXPANEL_SECRET is the legacy project API secret. (MIXPANEL_SERVICE_ACCOUNT)"
  type        = string
  default     = null
}

variable "created_property" {
  description = "The profile property that dates a sign-up: $created, $mp_first_event_time or the project's own. (CREATED_PROPERTY)"
  type        = string
  default     = null
  validation {
    condition     = var.created_property == null ? true : can(regex(local.facts["CREATED_PROPERTY.pattern"], var.created_property))
    error_message = "created_property must be a property name of at most 255 characters, without quotes, backslashes or commas."
  }
}

variable "mixpanel_filter" {
  description = "An Engage where expression ANDed with the window, like properties[\"plan\"] == \"pro\". (MIXPANEL_FILTER)"
  type        = string
  default     = null
}

variable "mixpanel_page_concurrency" {
  description = "Engage pages fetched at once after the first (Mixpanel allows 5 queries at once). (MIXPANEL_PAGE_CONCURRENCY)"
  type        = number
  default     = null
  validation {
    condition     = var.mixpanel_page_concurrency == null ? true : var.mixpanel_page_concurrency >= tonumber(local.facts["MIXPANEL_PAGE_CONCURRENCY.min"]) && var.mixpanel_page_concurrency <= tonumber(local.facts["MIXPANEL_PAGE_CONCURRENCY.max"]) && floor(var.mixpanel_page_concurrency) == var.mixpanel_page_concurrency
    error_message = "mixpanel_page_concurrency must be a whole number from 1 to 5."
  }
}

variable "email_to" {
  description = "Comma-separated recipients; the email channel is on when this is set. (EMAIL_TO)"
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for item in var.email_to : can(regex(local.facts["EMAIL_TO.pattern"], item))]) && length(var.email_to) <= tonumber(local.facts["EMAIL_TO.entries"])
    error_message = "email_to must be an email address like growth@example.com."
  }
}

variable "email_from" {
  description = "Verified SendGrid sender, alerts@example.com or Name <alerts@example.com>. (EMAIL_FROM)"
  type        = string
  default     = null
  validation {
    condition     = var.email_from == null ? length(var.email_to) == 0 : can(regex(local.facts["EMAIL_FROM.pattern"], var.email_from))
    error_message = "email_from must be set when email_to is, as an address like alerts@example.com or Name <alerts@example.com>."
  }
}

variable "sms_to" {
  description = "Comma-separated E.164 numbers; the SMS channel is on when this is set. (SMS_TO)"
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for item in var.sms_to : can(regex(local.facts["SMS_TO.pattern"], item))]) && length(var.sms_to) <= tonumber(local.facts["SMS_TO.entries"])
    error_message = "sms_to must be an E.164 number like +14155550100."
  }
}

variable "sms_from" {
  description = "E.164 sender number, or a Twilio Messaging Service SID (MG...). (SMS_FROM)"
  type        = string
  default     = null
  validation {
    condition     = var.sms_from == null ? length(var.sms_to) == 0 : can(regex(local.facts["SMS_FROM.pattern"], var.sms_from))
    error_message = "sms_from must be set when sms_to is, as an E.164 number like +14155550100 or a Messaging Service SID (MG + 32 hex)."
  }
}

variable "twilio_account_sid" {
  description = "Twilio account SID (AC...); not a secret. (TWILIO_ACCOUNT_SID)"
  type        = string
  default     = null
  validation {
    condition     = var.twilio_account_sid == null ? length(var.sms_to) == 0 : can(regex(local.facts["TWILIO_ACCOUNT_SID.pattern"], var.twilio_account_sid))
    error_message = "twilio_account_sid must be set when sms_to is, as a Twilio account SID: AC + 32 hex."
  }
}

variable "sms_quiet_hours" {
  description = "HH:MM-HH:MM in TIMEZONE (may wrap midnight): runs inside send no text; the next one tells all. (SMS_QUIET_HOURS)"
  type        = string
  default     = null
  validation {
    condition     = var.sms_quiet_hours == null ? true : can(regex(local.facts["SMS_QUIET_HOURS.pattern"], var.sms_quiet_hours))
    error_message = "sms_quiet_hours must be two different times like 22:00-07:00."
  }
}

variable "display_time_zone" {
  description = "IANA time zone used to show times to people. (TIMEZONE)"
  type        = string
  default     = null
  validation {
    condition     = var.display_time_zone == null ? true : can(regex(local.facts["TIMEZONE.pattern"], var.display_time_zone))
    error_message = "display_time_zone must be an IANA time zone like Europe/Berlin."
  }
}

variable "notify_when_empty" {
  description = "true sends a \"no new users\" email and SMS; false: an empty window sends nothing. (NOTIFY_WHEN_EMPTY)"
  type        = bool
  default     = null
}

variable "project_label" {
  description = "The name people know the project by, shown in every message; unset: Mixpanel project <id>. (PROJECT_LABEL)"
  type        = string
  default     = null
}

variable "profile_url_template" {
  description = "A URL holding {distinct_id} once, where each listed user links to. (PROFILE_URL_TEMPLATE)"
  type        = string
  default     = null
  validation {
    condition     = var.profile_url_template == null ? true : can(regex(local.facts["PROFILE_URL_TEMPLATE.pattern"], var.profile_url_template))
    error_message = "profile_url_template must be an https URL holding {distinct_id} once, like https://admin.example.com/users/{distinct_id}."
  }
}

variable "extra_properties" {
  description = "Profile properties shown as extra columns in the email, Slack and CSV. (EXTRA_PROPERTIES)"
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for item in var.extra_properties : can(regex(local.facts["EXTRA_PROPERTIES.pattern"], item))]) && length(var.extra_properties) <= tonumber(local.facts["EXTRA_PROPERTIES.entries"])
    error_message = "extra_properties must be a property name like utm_source."
  }
}

variable "exclude_email_domains" {
  description = "Domains whose users (and subdomains') are left out of every message and counted as excluded. (EXCLUDE_EMAIL_DOMAINS)"
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for item in var.exclude_email_domains : can(regex(local.facts["EXCLUDE_EMAIL_DOMAINS.pattern"], item))])
    error_message = "exclude_email_domains must be a domain like acme.com."
  }
}

variable "breakdown_property" {
  description = "A profile property counted per value at the top of the email and in Slack. (BREAKDOWN_PROPERTY)"
  type        = string
  default     = null
  validation {
    condition     = var.breakdown_property == null ? true : can(regex(local.facts["BREAKDOWN_PROPERTY.pattern"], var.breakdown_property))
    error_message = "breakdown_property must be a property name of at most 255 characters, without quotes, backslashes or commas."
  }
}

variable "company_rollup" {
  description = "Work addresses counted by company at the top of the email and in Slack. (COMPANY_ROLLUP)"
  type        = bool
  default     = null
}

variable "email_row_limit" {
  description = "Users listed in the email body; the attached CSV holds everyone. (EMAIL_ROW_LIMIT)"
  type        = number
  default     = null
  validation {
    condition     = var.email_row_limit == null ? true : var.email_row_limit >= tonumber(local.facts["EMAIL_ROW_LIMIT.min"]) && var.email_row_limit <= tonumber(local.facts["EMAIL_ROW_LIMIT.max"]) && floor(var.email_row_limit) == var.email_row_limit
    error_message = "email_row_limit must be a whole number from 1 to 10000."
  }
}

variable "max_catch_up_minutes" {
  description = "How far back a run covers time that no run covered. (MAX_CATCH_UP_MINUTES)"
  type        = number
  default     = null
  validation {
    condition     = var.max_catch_up_minutes == null ? true : var.max_catch_up_minutes >= tonumber(local.facts["MAX_CATCH_UP_MINUTES.min"]) && var.max_catch_up_minutes <= tonumber(local.facts["MAX_CATCH_UP_MINUTES.max"]) && floor(var.max_catch_up_minutes) == var.max_catch_up_minutes
    error_message = "max_catch_up_minutes must be a whole number from 0 to 44640."
  }
}

variable "late_arrival_minutes" {
  description = "How late a profile may reach Mixpanel after its sign-up and still be reported. (LATE_ARRIVAL_MINUTES)"
  type        = number
  default     = null
  validation {
    condition     = var.late_arrival_minutes == null ? true : var.late_arrival_minutes >= tonumber(local.facts["LATE_ARRIVAL_MINUTES.min"]) && var.late_arrival_minutes <= tonumber(local.facts["LATE_ARRIVAL_MINUTES.max"]) && floor(var.late_arrival_minutes) == var.late_arrival_minutes
    error_message = "late_arrival_minutes must be a whole number from 0 to 1440."
  }
}

variable "max_message_age_minutes" {
  description = "A trigger message older than this is logged and acked, not run. (MAX_MESSAGE_AGE_MINUTES)"
  type        = number
  default     = null
  validation {
    condition     = var.max_message_age_minutes == null ? true : var.max_message_age_minutes >= tonumber(local.facts["MAX_MESSAGE_AGE_MINUTES.min"]) && var.max_message_age_minutes <= tonumber(local.facts["MAX_MESSAGE_AGE_MINUTES.max"]) && floor(var.max_message_age_minutes) == var.max_message_age_minutes
    error_message = "max_message_age_minutes must be a whole number from 1 to 10080."
  }
}

locals {
  # The function's settings by the variable the function reads.
  function_settings = {
    MIXPANEL_PROJECT_ID       = var.mixpanel_project_id
    MIXPANEL_REGION           = var.mixpanel_region
    MIXPANEL_SERVICE_ACCOUNT  = var.mixpanel_service_account
    CREATED_PROPERTY          = var.created_property
    MIXPANEL_FILTER           = var.mixpanel_filter
    MIXPANEL_PAGE_CONCURRENCY = var.mixpanel_page_concurrency == null ? null : tostring(var.mixpanel_page_concurrency)
    EMAIL_TO                  = join(",", var.email_to)
    EMAIL_FROM                = var.email_from
    SMS_TO                    = join(",", var.sms_to)
    SMS_FROM                  = var.sms_from
    TWILIO_ACCOUNT_SID        = var.twilio_account_sid
    SMS_QUIET_HOURS           = var.sms_quiet_hours
    TIMEZONE                  = var.display_time_zone
    NOTIFY_WHEN_EMPTY         = var.notify_when_empty == null ? null : tostring(var.notify_when_empty)
    PROJECT_LABEL             = var.project_label
    PROFILE_URL_TEMPLATE      = var.profile_url_template
    EXTRA_PROPERTIES          = join(",", var.extra_properties)
    EXCLUDE_EMAIL_DOMAINS     = join(",", var.exclude_email_domains)
    BREAKDOWN_PROPERTY        = var.breakdown_property
    COMPANY_ROLLUP            = var.company_rollup == null ? null : tostring(var.company_rollup)
    EMAIL_ROW_LIMIT           = var.email_row_limit == null ? null : tostring(var.email_row_limit)
    MAX_CATCH_UP_MINUTES      = var.max_catch_up_minutes == null ? null : tostring(var.max_catch_up_minutes)
    LATE_ARRIVAL_MINUTES      = var.late_arrival_minutes == null ? null : tostring(var.late_arrival_minutes)
    MAX_MESSAGE_AGE_MINUTES   = var.max_message_age_minutes == null ? null : tostring(var.max_message_age_minutes)
  }
}
