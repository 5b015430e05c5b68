"""What can go wrong in a run, arranged by what the caller should do about it.

    NotifierError                  base of everything the run raises on purpose; outcome `failed`
    ├── PermanentError             retrying cannot help: log at ERROR and ack the message
    │   ├── BadMessage             the trigger message is malformed or out of range   bad_message
    │   ├── ConfigError            an environment variable or secret is unusable      bad_config
    │   ├── StaleMessage           the message is older than the redelivery horizon   stale_message
    │   │   └── ExpiredMessage     ... and gives nothing up                           expired
    │   └── SourceRejected         Mixpanel refused the query (4xx)                   source_rejected
    ├── TransientError             retrying may help: retried in the run, then redelivered   will_retry
    │   ├── SourceUnavailable      Mixpanel, Secret Manager or the state store did not answer usefully
    │   ├── InProgress             another delivery of this message is running now    in_progress
    │   └── RedeliveryRequested    what main.notify raises to Pub/Sub, words-free
    └── ChannelError               one send went wrong; channels turn these into per-recipient outcomes
        ├── ChannelRejected        the provider refused (4xx other than 429): not retried
        ├── ChannelUnavailable     the request did not get through, or 429/5xx: retried
        └── OutcomeUnknown         the request went out and the answer was lost: never retried

Each class carries the run outcome it leads to. Messages name the service, the variable or the
field, never a secret value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from notifier.outcome import Outcome


class NotifierError(Exception):
    """Base class of every error the notifier raises on purpose."""

    outcome: ClassVar[Outcome] = Outcome.FAILED

    def log_fields(self) -> dict[str, object]:
        """Structured fields for the run summary (service, status, variable, field, channel)."""
        return {}


class PermanentError(NotifierError):
    """Retrying the same message cannot succeed; the run logs it and acks."""


class BadMessage(PermanentError):
    """The Pub/Sub message is not a valid trigger message."""

    outcome = Outcome.BAD_MESSAGE

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def log_fields(self) -> dict[str, object]:
        return {"field": self.field} if self.field else {}


class ConfigError(PermanentError):
    """An environment variable, or the secret it names, is missing or malformed; `variable` names it."""

    outcome = Outcome.BAD_CONFIG

    def __init__(self, message: str, *, variable: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable
        self.detail = message
        self.problems: tuple[ConfigError, ...] = (self,)

    @classmethod
    def every(cls, problems: Sequence[ConfigError]) -> ConfigError:
        """One error carrying every problem found (`problems`), each naming its variable, on one line."""
        first, *others = problems
        if not others:
            return first
        error = cls(first.detail + "".join(f"; {problem}" for problem in others), variable=first.variable)
        error.problems = tuple(problems)
        return error

    def log_fields(self) -> dict[str, object]:
        if len(self.problems) > 1:
            return {"variable": self.variable, "variables": [problem.variable for problem in self.problems]}
        return {"variable": self.variable}


class StaleMessage(PermanentError):
    """The message is older than the configured maximum age, so it is acked unprocessed, giving up
    recipients left untold or time it claimed: a person may want to re-run its window."""

    outcome = Outcome.STALE_MESSAGE


class ExpiredMessage(StaleMessage):
    """A stale message that gives nothing up: nothing of it was claimed, or nobody was told (either
    way the next run catches its time up), or it had ended."""

    outcome = Outcome.EXPIRED


class SourceRejected(PermanentError):
    """Mixpanel refused the request with a 4xx: credentials, project or plan."""

    outcome = Outcome.SOURCE_REJECTED

    def __init__(self, message: str, *, service: str, status: int | None = None) -> None:
        super().__init__(message)
        self.service = service
        self.status = status

    def log_fields(self) -> dict[str, object]:
        return {"service": self.service, **({"status": self.status} if self.status else {})}


class StateRejected(PermanentError):
    """The run history refused a request with a 4xx that is not about access: a bug, for a person."""

    outcome = Outcome.FAILED

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status

    def log_fields(self) -> dict[str, object]:
        return {"service": "Firestore", "status": self.status}


class TransientError(NotifierError):
    """A call failed in a way that may succeed later; `retry_after` is the server's hint."""

    outcome = Outcome.WILL_RETRY

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SourceUnavailable(TransientError):
    """Mixpanel, Secret Manager or the state store: timeout, connection error, 429, 5xx, a broken body."""

    def __init__(
        self, message: str, *, service: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.service = service
        self.status = status

    def log_fields(self) -> dict[str, object]:
        return {"service": self.service, **({"status": self.status} if self.status else {})}


class RedeliveryRequested(TransientError):
    """What the function raises to make Pub/Sub deliver the message again.

    functions-framework prints what a function raises; this text never carries a provider's or a
    library's words (which could echo a key), only a pointer to the run summary that says why.
    """


class InProgress(TransientError):
    """Another delivery of the same message holds its lease: this one waits for a redelivery."""

    outcome = Outcome.IN_PROGRESS


class ChannelError(NotifierError):
    """One send to a provider went wrong; `channel` names it, `status` is the provider's HTTP status."""

    def __init__(
        self, message: str, *, channel: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.channel = channel
        self.status = status
        self.retry_after = retry_after

    def log_fields(self) -> dict[str, object]:
        return {"channel": self.channel, **({"status": self.status} if self.status else {})}


class ChannelRejected(ChannelError):
    """The provider refused the request (4xx other than 429): a redelivery would be refused too."""


class ChannelUnavailable(ChannelError, TransientError):
    """The request did not reach the provider, or it answered 429/5xx: safe to send again."""


class OutcomeUnknown(ChannelError):
    """The request went out and its answer was lost: it may have been delivered, so it is never retried."""
