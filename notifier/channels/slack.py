"""The Slack channel: one incoming-webhook POST per run, a JSON body through the run's transport.

The webhook URL is a secret: it is checked to be Slack's before use and never logged; the
recipient it is recorded as is a hash of it. Slack answers exactly `ok` when it took the message;
429 (with Retry-After) and 5xx are retried; 400, 403, 404 and 410 are refusals.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from notifier.answers import error_detail
from notifier.channels import NO_TIME, Delivery, DeliveryStatus, Journal, not_sent, refusal, send
from notifier.errors import ChannelError, OutcomeUnknown
from notifier.retry import Retrier
from notifier.transport import Request

CHANNEL = "slack"
_HINT = "(check SLACK_WEBHOOK_URL: the webhook may have been removed or its channel archived)"


def webhook_recipient(url: str) -> str:
    """How a webhook is named in records and counts: never the URL, which is the secret."""
    return "webhook:" + hashlib.sha256(url.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SlackChannel:
    """The rendered Slack message (Block Kit blocks and a text fallback), ready for the webhook."""

    payload: dict[str, Any]
    webhook_url: str
    retrier: Retrier
    name: str = CHANNEL

    @property
    def recipient(self) -> str:
        """The one recipient of this channel."""
        return webhook_recipient(self.webhook_url)

    def send(self, recipients: tuple[str, ...], journal: Journal) -> tuple[Delivery, ...]:
        """One POST when the webhook is among `recipients`, noted before it goes out and after."""
        if self.recipient not in recipients:
            return ()
        if not self.retrier.has_time():
            return not_sent(CHANNEL, (self.recipient,), NO_TIME)
        if not journal.sending(CHANNEL, (self.recipient,)):
            return not_sent(CHANNEL, (self.recipient,))
        request = Request.json("POST", self.webhook_url, self.payload, secret_url=True)
        try:
            self.retrier.call(lambda: _post(self.retrier, request), name="Slack webhook")
            delivery = Delivery(CHANNEL, self.recipient, DeliveryStatus.DELIVERED)
        except ChannelError as error:
            delivery = Delivery.failed(CHANNEL, self.recipient, error)
        journal.settled(delivery)
        return (delivery,)


def _post(retrier: Retrier, request: Request) -> None:
    """One attempt; Slack's `ok` is delivered, and so is a 2xx whose body broke before it was read."""
    answer = send(retrier, request, "Slack", CHANNEL)
    if not answer.accepted:
        detail = error_detail(answer.body, sent=request.body)
        raise refusal("Slack", CHANNEL, answer, detail, hint=_HINT)
    if answer.complete and answer.body.strip() != b"ok":
        # Slack answers exactly "ok": any other whole 2xx came from something else on the way.
        raise OutcomeUnknown(
            f"the webhook answered {answer.status} without Slack's 'ok': it may not have been posted",
            channel=CHANNEL,
            status=answer.status,
        )
