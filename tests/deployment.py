"""One deployment, said to both paths: deploy.env settings and the Terraform variables they match."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from notifier.variables import DEPLOYMENT, SETTINGS, Kind

_SPELLING: dict[Kind, type] = {Kind.TEXT: str, Kind.WHOLE: int, Kind.BOOLEAN: bool, Kind.LIST: list}
# deploy.env setting -> (Terraform variable, how Terraform spells the value), from the variables' table.
TERRAFORM_NAMES: dict[str, tuple[str, type]] = {
    variable.name: (variable.terraform_name, _SPELLING[variable.kind])
    for variable in (*DEPLOYMENT, *SETTINGS)
}
# Terraform's own: where it finds the source (deploy.sh is in it), and the job's state (deploy.sh
# pause and resume say it instead).
TERRAFORM_ONLY = {"source_dir", "schedule_paused"}

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
    "CREATED_PROPERTY": "$mp_first_event_time",
    "MIXPANEL_FILTER": 'properties["plan"] == "pro"',
    "MIXPANEL_PAGE_CONCURRENCY": "2",
    "BREAKDOWN_PROPERTY": "utm_source",
    "COMPANY_ROLLUP": "false",
    "SMS_QUIET_HOURS": "22:00-07:00",
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
