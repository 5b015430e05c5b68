"""The Pub/Sub emulator that ships with gcloud, for end-to-end runs of the real delivery path."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from functools import cache
from pathlib import Path
from typing import IO, Any, Self

from sandbox.function import free_port

EMULATOR = Path("platform/pubsub-emulator/bin/cloud-pubsub-emulator")
PROJECT = "local-project"


@cache
def emulator_binary() -> Path | None:
    """The emulator's launcher under the gcloud SDK, or None where it is not installed."""
    roots = [os.environ.get("CLOUDSDK_ROOT_DIR", "")]
    gcloud = shutil.which("gcloud")
    if gcloud:
        # bin/gcloud sits under the SDK root; `gcloud info` is the slower, authoritative answer.
        roots.append(str(Path(gcloud).resolve().parent.parent))
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            info = [gcloud, "info", "--format=value(installation.sdk_root)"]
            roots.append(
                subprocess.run(info, capture_output=True, text=True, timeout=60, check=False).stdout.strip()
            )
    for root in filter(None, roots):
        candidate = Path(root) / EMULATOR
        if candidate.exists() and shutil.which("java"):
            return candidate
    return None


class PubSubEmulator:
    """`cloud-pubsub-emulator` on a free loopback port, with helpers for topics and push."""

    def __init__(self, *, project: str = PROJECT, log: IO[str] | None = None) -> None:
        self.project = project
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> Self:
        """Start the emulator and wait until it accepts connections."""
        binary = emulator_binary()
        if binary is None:
            raise RuntimeError(
                "the Pub/Sub emulator is not installed (gcloud components install pubsub-emulator)"
            )
        self._process = subprocess.Popen(
            [str(binary), "--host=127.0.0.1", f"--port={self.port}"],
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the launcher script starts java
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the Pub/Sub emulator exited with {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"the Pub/Sub emulator did not listen within {timeout}s")

    def stop(self) -> None:
        """End the emulator's process group, found by its PID."""
        if self._process is None:
            return
        try:
            os.killpg(self._process.pid, signal.SIGTERM)
            self._process.wait(timeout=15)
        except ProcessLookupError:
            pass  # already gone
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        self._process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

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

    def publish(self, topic: str, data: bytes) -> str:
        """Publish `data` to `topic`; return the message id."""
        publisher = self.publisher()
        message_id: str = publisher.publish(publisher.topic_path(self.project, topic), data).result(
            timeout=30
        )
        return message_id
