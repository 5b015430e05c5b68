"""The Pub/Sub emulator that ships with gcloud, for end-to-end runs of the real delivery path."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import IO, Any

from sandbox.emulator import Emulator, sdk_root

EMULATOR = Path("platform/pubsub-emulator/bin/cloud-pubsub-emulator")
PROJECT = "local-project"


def emulator_binary() -> Path | None:
    """The emulator's launcher under the gcloud SDK, or None where it (or Java) is not installed."""
    root = sdk_root()
    if root is None or not (root / EMULATOR).exists() or not shutil.which("java"):
        return None
    return root / EMULATOR


class PubSubEmulator(Emulator):
    """`cloud-pubsub-emulator` on a free loopback port, with helpers for topics and push."""

    name = "Pub/Sub"

    def __init__(
        self, *, project: str = PROJECT, log: IO[str] | None = None, port: int | None = None
    ) -> None:
        super().__init__(log=log, port=port)
        self.project = project

    def command(self) -> list[str]:
        binary = emulator_binary()
        if binary is None:
            raise RuntimeError(
                "the Pub/Sub emulator is not installed "
                "(gcloud components install pubsub-emulator; it needs Java)"
            )
        return [str(binary), "--host=127.0.0.1", f"--port={self.port}"]

    @property
    def environ(self) -> dict[str, str]:
        """What google-cloud-pubsub reads to talk to this emulator."""
        return {"PUBSUB_EMULATOR_HOST": self.host, "PUBSUB_PROJECT_ID": self.project}

    def publisher(self) -> Any:
        """A PublisherClient bound to this emulator (plaintext gRPC, no credentials)."""
        import grpc
        from google.cloud.pubsub_v1 import PublisherClient
        from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

        return PublisherClient(transport=PublisherGrpcTransport(channel=grpc.insecure_channel(self.host)))

    def subscriber(self) -> Any:
        """A SubscriberClient bound to this emulator."""
        import grpc
        from google.cloud.pubsub_v1 import SubscriberClient
        from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

        return SubscriberClient(transport=SubscriberGrpcTransport(channel=grpc.insecure_channel(self.host)))

    def push_topic(self, topic: str, endpoint: str, *, ack_deadline: int = 60) -> str:
        """Create `topic` with a push subscription to `endpoint`; return the topic's path."""
        publisher, subscriber = self.publisher(), self.subscriber()
        topic_path = publisher.topic_path(self.project, topic)
        publisher.create_topic(name=topic_path)
        subscriber.create_subscription(
            request={
                "name": subscriber.subscription_path(self.project, f"{topic}-push"),
                "topic": topic_path,
                "push_config": {"push_endpoint": endpoint},
                "ack_deadline_seconds": ack_deadline,
            }
        )
        return str(topic_path)

    def pull_subscription(self, topic: str, name: str) -> str:
        """Create a pull subscription `name` on `topic` (created before it); return its path."""
        publisher, subscriber = self.publisher(), self.subscriber()
        path = str(subscriber.subscription_path(self.project, name))
        subscriber.create_subscription(
            request={"name": path, "topic": publisher.topic_path(self.project, topic)}
        )
        return path

    def pull(self, subscription: str, *, timeout: float = 30.0) -> Any:
        """The next message of a pull subscription, acked (a PubsubMessage: data, id, publish_time)."""
        subscriber = self.subscriber()
        response = subscriber.pull(request={"subscription": subscription, "max_messages": 1}, timeout=timeout)
        if not response.received_messages:
            raise TimeoutError(f"no message on {subscription} within {timeout:g} s")
        received = response.received_messages[0]
        subscriber.acknowledge(request={"subscription": subscription, "ack_ids": [received.ack_id]})
        return received.message

    def publish(self, topic: str, data: bytes) -> str:
        """Publish `data` to `topic`; return the message id."""
        publisher = self.publisher()
        message_id: str = publisher.publish(publisher.topic_path(self.project, topic), data).result(
            timeout=30
        )
        return message_id
