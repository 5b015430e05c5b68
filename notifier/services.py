"""The I/O edges of a run, built once per function instance and shared by its runs."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from notifier.retry import Retrier, RetryPolicy
from notifier.secrets import SecretResolver
from notifier.settings import Settings
from notifier.state import StateStore
from notifier.state.memory import MemoryStore
from notifier.transport import Transport


@dataclass
class Services:
    """The I/O edges of a run, built once per instance and shared by its runs."""

    secrets: SecretResolver = field(default_factory=SecretResolver)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    rng: random.Random = field(default_factory=random.Random)
    memory: MemoryStore = field(default_factory=MemoryStore)
    # Every outbound call's one HTTP stack: its connections outlive a run on a warm instance.
    transport: Transport = field(default_factory=Transport)

    def store(self, settings: Settings, retrier: Retrier, environ: Mapping[str, str]) -> StateStore:
        """The run history STATE_STORE names: this instance's memory, or Firestore."""
        if settings.state.store == "memory":
            return self.memory
        from notifier.state.firestore import open_firestore

        return open_firestore(database=settings.state.firestore_database, retrier=retrier, environ=environ)
