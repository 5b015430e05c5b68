"""Cloud Function entry point: a thin adapter from the Pub/Sub CloudEvent to `notifier.run`."""

from __future__ import annotations

import os

import functions_framework
from cloudevents.http import CloudEvent

from notifier import logs
from notifier.errors import RedeliveryRequested
from notifier.run import handle_message
from notifier.services import Services

logs.configure()
# Built once per instance: the HTTP sessions' connection pools and the secret cache outlive a run.
SERVICES = Services()


@functions_framework.cloud_event
def notify(cloud_event: CloudEvent) -> None:
    """Handle one Pub/Sub message; raising asks Pub/Sub to redeliver it."""
    data = cloud_event.get_data()
    message = data.get("message") if isinstance(data, dict) else None
    try:
        handle_message(
            message,  # not a dict (no Pub/Sub message at all) is a bad message, acked
            event_time=cloud_event.get("time"),
            environ=os.environ,
            services=SERVICES,
        )
    except RedeliveryRequested:
        raise  # the run decided: Pub/Sub delivers the message again
    except Exception as error:  # noqa: BLE001 - a bug past the run's own summary; only the type goes on
        # functions-framework prints what it gets: never the original text, which could quote a key.
        raise RedeliveryRequested(
            f"redelivery requested ({type(error).__name__}): see the run summary"
        ) from None
