"""The Slack channel: one incoming-webhook POST per run, a JSON body through the run's transport.

The webhook URL is a secret: it is checked to be Slack's before use and never logged, and the
channel's one recipient is recorded under a fixed name, never the URL. Slack answers exactly `ok`
when it took the message; 429 (with Retry-After) and 5xx are retried; 400, 403, 404 and 410 are
refusals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from notifier.channels import NO_TIME, Delivery, DeliveryStatus, Journal, not_sent, refusal, send
from notifier.errors import ChannelError, OutcomeUnknown
from notifier.replies import error_detail
from notifier.retry import Retrier
from notifier.transport import Request

CHANNEL = "slack"
_HINT = "(check SLACK_WEBHOOK_URL: the webhook may have been removed or its channel archived)"


@dataclass(frozen=True)
class SlackChannel:
    """The rendered Slack message (Block Kit blocks and a text fallback), ready for the webhook."""

    payload: dict[str, Any]
    webhook_url: str
    retrier: Retrier
    name: str = CHANNEL

    def send(self, recipients: tuple[str, ...], journal: Journal) -> tuple[Delivery, ...]:
        """One POST to the webhook, Slack's one recipient, noted before it goes out and after."""
        if not recipients:
            return ()
        recipient = recipients[0]
        if not self.retrier.has_time():
            return not_sent(CHANNEL, (recipient,), NO_TIME)
        if not journal.note_sending(CHANNEL, (recipient,)):
            return not_sent(CHANNEL, (recipient,))
        request = Request.json("POST", self.webhook_url, self.payload, secret_url=True)
        try:
            self.retrier.call(lambda: _post(self.retrier, request), name="Slack webhook")
            delivery = Delivery(CHANNEL, recipient, DeliveryStatus.DELIVERED)
        except ChannelError as error:
            delivery = Delivery.failed(CHANNEL, recipient, error)
        journal.note_outcome(delivery)
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
