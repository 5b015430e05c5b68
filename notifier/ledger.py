"""Who this instance has already served for a Pub/Sub message, so a redelivery sends no duplicate.

Pub/Sub delivers at least once: an ack can be lost, or a message redelivered after a run that had
already told some recipients. The ledger is keyed by message id (a manual re-run publishes a new
message, so it sends again) and lives as long as the instance; it is bounded, oldest first out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable


class DeliveryLedger:
    """Recipients delivered per (message id, channel), for the last `capacity` messages."""

    def __init__(self, capacity: int = 512) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, dict[str, set[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def delivered(self, message_id: str | None, channel: str) -> frozenset[str]:
        """Recipients of `channel` already served for this message (empty without an id)."""
        if message_id is None:
            return frozenset()
        with self._lock:
            return frozenset(self._entries.get(message_id, {}).get(channel, set()))

    def record(self, message_id: str | None, channel: str, recipients: Iterable[str]) -> None:
        """Remember that `recipients` of `channel` have been served for this message."""
        if message_id is None:
            return
        with self._lock:
            entry = self._entries.setdefault(message_id, {})
            self._entries.move_to_end(message_id)
            entry.setdefault(channel, set()).update(recipients)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
