"""Cloud Function entry point: a thin adapter from the Pub/Sub CloudEvent to `notifier.run`."""

from __future__ import annotations

import os

import functions_framework
from cloudevents.http import CloudEvent

from notifier import logs
from notifier.run import Services, handle_message

logs.configure()
# Built once per instance: the HTTP session's connection pool and the secret cache outlive a run.
SERVICES = Services()


@functions_framework.cloud_event
def notify(cloud_event: CloudEvent) -> None:
    """Handle one Pub/Sub message; raising asks Pub/Sub to redeliver it."""
    data = cloud_event.get_data()
    message = data.get("message") if isinstance(data, dict) else None
    handle_message(
        message,  # not a dict (no Pub/Sub message at all) is a bad message, acked
        event_time=cloud_event.get("time"),
        environ=os.environ,
        services=SERVICES,
    )
