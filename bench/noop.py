"""A Cloud Function that does nothing: the cold-start baseline for the benchmark."""

import functions_framework
from cloudevents.http import CloudEvent


@functions_framework.cloud_event
def noop(cloud_event: CloudEvent) -> None:
    """Accept the event and do nothing."""
    del cloud_event
