"""One deployment, said to both paths: deploy.env settings and the Terraform variables they match."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# deploy.env setting -> (Terraform variable, how Terraform spells the value)
TERRAFORM_NAMES: dict[str, tuple[str, type]] = {
    "PROJECT_ID": ("project_id", str),
    "REGION": ("region", str),
    "NAME": ("name", str),
    "SCHEDULE": ("schedule", str),
    "SCHEDULE_TIME_ZONE": ("time_zone", str),
    "LOOKBACK_MINUTES": ("lookback_minutes", int),
    "ALERT_EMAIL": ("alert_email", str),
    "MISSING_RUN_ALERT": ("missing_run_alert", bool),
    "FIRESTORE_LOCATION": ("firestore_location", str),
    "SLACK_ENABLED": ("slack_enabled", bool),
    "MEMORY": ("memory", str),
    "TIMEOUT_SECONDS": ("timeout_seconds", int),
    "MAX_INSTANCES": ("max_instances", int),
    "MIXPANEL_PROJECT_ID": ("mixpanel_project_id", str),
    "MIXPANEL_REGION": ("mixpanel_region", str),
    "MIXPANEL_SERVICE_ACCOUNT": ("mixpanel_service_account", str),
    "EMAIL_TO": ("email_to", list),
    "EMAIL_FROM": ("email_from", str),
    "SMS_TO": ("sms_to", list),
    "SMS_FROM": ("sms_from", str),
    "TWILIO_ACCOUNT_SID": ("twilio_account_sid", str),
    "TIMEZONE": ("display_time_zone", str),
    "NOTIFY_WHEN_EMPTY": ("notify_when_empty", bool),
    "PROJECT_LABEL": ("project_label", str),
    "PROFILE_URL_TEMPLATE": ("profile_url_template", str),
    "EXTRA_PROPERTIES": ("extra_properties", list),
    "EXCLUDE_EMAIL_DOMAINS": ("exclude_email_domains", list),
    "MAX_CATCH_UP_MINUTES": ("max_catch_up_minutes", int),
    "LATE_ARRIVAL_MINUTES": ("late_arrival_minutes", int),
    "EMAIL_ROW_LIMIT": ("email_row_limit", int),
    "MAX_MESSAGE_AGE_MINUTES": ("max_message_age_minutes", int),
}

# The settings neither path can do without; everything else has a default.
REQUIRED = {
    "PROJECT_ID": "my-growth-project",
    "MIXPANEL_PROJECT_ID": "1234567",
    "ALERT_EMAIL": "oncall@example.com",
}

# A deployment that sets every setting, each to something other than its default.
EVERYTHING = {
    **REQUIRED,
    "REGION": "europe-west1",
    "NAME": "signups-eu",
    "SCHEDULE": "*/30 * * * *",
    "SCHEDULE_TIME_ZONE": "Europe/Berlin",
    "LOOKBACK_MINUTES": "30",
    "MISSING_RUN_ALERT": "true",
    "FIRESTORE_LOCATION": "eur3",
    "SLACK_ENABLED": "true",
    "MEMORY": "512M",
    "TIMEOUT_SECONDS": "540",
    "MAX_INSTANCES": "2",
    "MIXPANEL_REGION": "eu",
    "MIXPANEL_SERVICE_ACCOUNT": "signups.abc123.mp-service-account",
    "EMAIL_TO": "growth@example.com,founders@example.com",
    "EMAIL_FROM": "Sign-ups <alerts@example.com>",
    "SMS_TO": "+4915123456789,+14155550100",
    "SMS_FROM": "MG" + "0" * 32,
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TIMEZONE": "Europe/Berlin",
    "NOTIFY_WHEN_EMPTY": "true",
    "PROJECT_LABEL": "Acme iOS",
    "PROFILE_URL_TEMPLATE": "https://admin.example.com/users/{distinct_id}",
    "EXTRA_PROPERTIES": "utm_source,plan",
    "EXCLUDE_EMAIL_DOMAINS": "acme.com,example.org",
    "MAX_CATCH_UP_MINUTES": "2880",
    "LATE_ARRIVAL_MINUTES": "120",
    "EMAIL_ROW_LIMIT": "200",
    "MAX_MESSAGE_AGE_MINUTES": "720",
}


def as_tfvars(settings: Mapping[str, str]) -> dict[str, Any]:
    """The Terraform variables that say what these deploy.env settings say."""
    variables: dict[str, Any] = {}
    for name, value in settings.items():
        variable, kind = TERRAFORM_NAMES[name]
        if kind is list:
            variables[variable] = value.split(",") if value else []
        elif kind is bool:
            variables[variable] = {"true": True, "false": False}[value]
        elif kind is int:
            variables[variable] = int(value)
        else:
            variables[variable] = value
    return variables
