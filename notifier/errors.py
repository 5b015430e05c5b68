"""What can go wrong in a run, arranged by what the caller should do about it.

    NotifierError                  base of everything the run raises on purpose
    ├── PermanentError             retrying cannot help: log at ERROR and ack the message
    │   ├── BadMessage             the trigger message is malformed or out of range
    │   ├── ConfigError            an environment variable is missing or malformed
    │   ├── StaleMessage           the message is older than the redelivery horizon
    │   ├── SourceRejected         Mixpanel or Secret Manager refused the request (4xx)
    │   └── ChannelRejected        SendGrid or Twilio refused the request (4xx other than 429)
    └── TransientError             retrying may help: retried in the run, then raised for redelivery
        ├── SourceUnavailable      Mixpanel or Secret Manager: timeout, connection error, 429, 5xx
        └── ChannelUnavailable     SendGrid or Twilio: timeout, connection error, 429, 5xx

Messages name the service, the variable or the field, never a secret value.
"""

from __future__ import annotations


class NotifierError(Exception):
    """Base class of every error the notifier raises on purpose."""


class PermanentError(NotifierError):
    """Retrying the same message cannot succeed; the run logs it and acks."""


class BadMessage(PermanentError):
    """The Pub/Sub message is not a valid trigger message."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ConfigError(PermanentError):
    """An environment variable is missing or malformed; `variable` names it."""

    def __init__(self, message: str, *, variable: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class StaleMessage(PermanentError):
    """The message is older than the configured maximum age, so it is acked unprocessed."""


class SourceRejected(PermanentError):
    """A data source (Mixpanel, Secret Manager) refused the request with a 4xx."""

    def __init__(self, message: str, *, service: str, status: int | None = None) -> None:
        super().__init__(message)
        self.service = service
        self.status = status


class ChannelRejected(PermanentError):
    """A channel (SendGrid, Twilio) refused the request with a 4xx other than 429."""

    def __init__(self, message: str, *, channel: str, status: int | None = None) -> None:
        super().__init__(message)
        self.channel = channel
        self.status = status


class TransientError(NotifierError):
    """A call failed in a way that may succeed later; `retry_after` is the server's hint."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SourceUnavailable(TransientError):
    """Mixpanel or Secret Manager did not answer usefully: timeout, connection error, 429, 5xx."""

    def __init__(self, message: str, *, service: str, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.service = service


class ChannelUnavailable(TransientError):
    """SendGrid or Twilio did not answer usefully: timeout, connection error, 429, 5xx."""

    def __init__(self, message: str, *, channel: str, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.channel = channel
