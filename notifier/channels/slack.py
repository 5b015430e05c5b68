"""The Slack channel: one incoming-webhook POST per run, through slack-sdk's WebhookClient.

The webhook URL is a secret: it is checked to be Slack's before use and never logged; the
recipient it is recorded as is a hash of it. The SDK's own retry handlers are off: our policy and
run budget decide.
"""

from __future__ import annotations

import http.client
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from notifier.answers import error_detail, refusing_opener, urllib_request_was_sent
from notifier.channels import Delivery, DeliveryStatus, Journal, not_sent, refusal, transport_failure
from notifier.errors import ChannelError, OutcomeUnknown
from notifier.retry import DeadlinePassed, Retrier

CHANNEL = "slack"
_HINT = "(check SLACK_WEBHOOK_URL: the webhook may have been removed or its channel archived)"
# The SDK logs failures with their text and, at DEBUG, the URL: keep it silent; we report ourselves.
_SDK_LOG = logging.getLogger("notifier.channels.slack.sdk")
_SDK_LOG.setLevel(logging.CRITICAL)
_SDK_LOG.propagate = False


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
        if not journal.sending(CHANNEL, (recipient,)):
            return not_sent(CHANNEL, (recipient,))
        try:
            self.retrier.call(self._post, name="Slack webhook")
            delivery = Delivery(CHANNEL, recipient, DeliveryStatus.DELIVERED)
        except ChannelError as error:
            delivery = Delivery.failed(CHANNEL, recipient, error)
        journal.settled(delivery)
        return (delivery,)

    def _post(self) -> None:
        from slack_sdk.webhook import WebhookClient

        _refuse_redirects_in_urlopen()
        client = WebhookClient(
            self.webhook_url,
            timeout=max(1, round(self.retrier.timeout())),
            logger=_SDK_LOG,
            retry_handlers=[],
        )
        # slack-sdk opens a proxy from HTTPS_PROXY with an opener of its own, which follows redirects;
        # without one it calls urlopen, so the opener above, whose ProxyHandler reads the same
        # variables: a proxy is still used, and redirects are still refused.
        client.proxy = None
        with _translate():
            response = self.retrier.bounded(lambda: client.send_dict(self.payload))
            status = int(response.status_code)
            if not 200 <= status < 300:
                raise _from_status(status, response.body, dict(response.headers or {}))
            if str(response.body).strip() != "ok":
                # Slack answers exactly "ok". Anything else came from elsewhere: urllib follows a
                # 301/302 as a bodiless GET, so a 2xx here need not mean Slack took the message.
                raise OutcomeUnknown(
                    f"the webhook answered {status} without Slack's 'ok': it may not have been posted",
                    channel=CHANNEL,
                    status=status,
                )


@contextmanager
def _translate() -> Iterator[None]:
    """The one place that turns what slack-sdk and urllib can raise into channel errors."""
    try:
        yield
    except ChannelError:
        raise
    except DeadlinePassed:
        raise OutcomeUnknown(
            "Slack had not answered when the run's time ran out; the message may have been posted",
            channel=CHANNEL,
        ) from None
    except Exception as error:
        answer = error.__context__ if isinstance(error.__context__, urllib.error.HTTPError) else None
        if answer is not None:
            # The SDK failed reading an error answer's body (cut short, not UTF-8): the status stands.
            raise _from_status(answer.code, b"", dict(answer.headers or {})) from None
        if isinstance(error, http.client.IncompleteRead | UnicodeError | LookupError):
            # A success status came back (urllib raises for any other) and only reading or decoding
            # its body broke (cut short, not UTF-8, a charset Python does not know).
            return
        translated = transport_failure("Slack", CHANNEL, error, sent=urllib_request_was_sent(error))
        if translated is None:
            raise  # not the transport: a bug, for the run's edge to report
        raise translated from None


def _from_status(status: int, body: object, headers: dict[str, str]) -> ChannelError:
    """429 and 5xx are retried; 400/403/404/410 (invalid_payload, channel_not_found...) are refusals."""
    return refusal("Slack", CHANNEL, status, error_detail(body), headers=headers, hint=_HINT)


def _refuse_redirects_in_urlopen() -> None:
    """slack-sdk posts with urllib's `urlopen`, which follows a 301/302 as a bodiless GET to wherever
    it points, and takes no opener of ours. Without an SSL context, urlopen uses the process-wide
    opener (`install_opener`, urllib's documented hook), which nothing else here uses: make it refuse
    redirects, so a redirected webhook is an answer, not a false delivery. Built for each post: its
    ProxyHandler reads the proxy variables when it is made."""
    urllib.request.install_opener(refusing_opener())
