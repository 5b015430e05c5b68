"""The email channel: one SendGrid v3 mail/send call, one personalization per recipient."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from notifier.answers import error_detail, refusing_opener, urllib_request_was_sent
from notifier.channels import Delivery, DeliveryStatus, Journal, not_sent, refusal, transport_failure
from notifier.errors import ChannelError, OutcomeUnknown
from notifier.render.email import EmailDigest
from notifier.retry import DeadlinePassed, Retrier
from notifier.settings import EmailSettings

CHANNEL = "email"
SENDGRID_DEFAULT_HOST = "https://api.sendgrid.com"
_HINT = "(check SENDGRID_API_KEY, that EMAIL_FROM is a verified sender, and EMAIL_TO)"


def build_mail(digest: EmailDigest, settings: EmailSettings, recipients: tuple[str, ...]) -> dict[str, Any]:
    """The v3 mail/send request body; each recipient alone in a personalization."""
    from sendgrid.helpers.mail import (
        Attachment,
        Content,
        Disposition,
        FileContent,
        FileName,
        FileType,
        From,
        Mail,
        Personalization,
        To,
    )

    mail = Mail()
    mail.from_email = From(settings.sender.address, settings.sender.name)
    mail.subject = digest.subject
    for position, address in enumerate(recipients):
        personalization = Personalization()
        personalization.add_to(To(address))
        mail.add_personalization(personalization, index=position)  # the default index 0 reverses
    mail.add_content(Content("text/plain", digest.text))
    mail.add_content(Content("text/html", digest.html))
    if digest.attachment is not None:
        mail.add_attachment(
            Attachment(
                FileContent(base64.b64encode(digest.attachment.content).decode("ascii")),
                FileName(digest.attachment.filename),
                FileType(digest.attachment.mime_type),
                Disposition("attachment"),
            )
        )
    body: dict[str, Any] = mail.get()
    return body


@dataclass(frozen=True)
class EmailChannel:
    """The rendered email, ready for SendGrid."""

    digest: EmailDigest
    settings: EmailSettings
    api_key: str
    base_url: str | None
    retrier: Retrier
    name: str = CHANNEL

    def send(self, recipients: tuple[str, ...], journal: Journal) -> tuple[Delivery, ...]:
        """One request for every recipient, noted in the journal before it goes out and after."""
        if not recipients:
            return ()
        mail = build_mail(self.digest, self.settings, recipients)
        if not journal.sending(CHANNEL, recipients):
            return not_sent(CHANNEL, recipients)
        try:
            self.retrier.call(lambda: self._post(mail), name="SendGrid mail/send")
            outcome = [Delivery(CHANNEL, address, DeliveryStatus.DELIVERED) for address in recipients]
        except ChannelError as error:
            outcome = [Delivery.failed(CHANNEL, address, error) for address in recipients]
        for delivery in outcome:
            journal.settled(delivery)
        return tuple(outcome)

    def _post(self, mail: dict[str, Any]) -> None:
        client = sendgrid_client(self.api_key, self.base_url, "mail", "send")
        with _translate(client):
            self.retrier.bounded(lambda: client.post(request_body=mail, timeout=self.retrier.timeout()))


def sendgrid_client(api_key: str, base_url: str | None, *path: str) -> Any:
    """SendGrid's own HTTP client for ``/v3/<path>``, refusing redirects so the key never leaves SendGrid."""
    from sendgrid import SendGridAPIClient

    host = base_url or SENDGRID_DEFAULT_HOST
    headers = SendGridAPIClient(api_key, host=host).client.request_headers
    return _sendgrid_client_class()(host=host, version=3, request_headers=headers, url_path=list(path))


@contextmanager
def _translate(client: Any) -> Iterator[None]:
    """The one place that turns what SendGrid's HTTP library can raise into channel errors.

    Once the request has gone out only an explicit 429/5xx is retried: a 2xx whose body then breaks
    counts as delivered, and a lost answer is OutcomeUnknown, so nobody gets the email twice.
    """
    from python_http_client.exceptions import HTTPError

    try:
        yield
    except HTTPError as error:
        raise _refusal(int(error.status_code), error.body, dict(error.headers or {})) from None
    except ChannelError:
        raise
    except DeadlinePassed:
        raise OutcomeUnknown(
            "SendGrid had not answered when the run's time ran out; the email may have gone out",
            channel=CHANNEL,
        ) from None
    except Exception as error:
        status = client.seen.status
        if status is not None and 200 <= status < 300:
            return  # accepted; only reading the rest of the answer failed
        if status is not None:
            raise _refusal(status, b"", client.seen.headers) from None
        translated = transport_failure("SendGrid", CHANNEL, error, sent=urllib_request_was_sent(error))
        if translated is None:
            raise  # not the transport: a bug, for the run's edge to report
        raise translated from None


def _refusal(status: int, body: object, headers: dict[str, str]) -> ChannelError:
    return refusal("SendGrid", CHANNEL, status, error_detail(body), headers=headers, hint=_HINT)


@dataclass
class _Seen:
    """The status and headers of the last answer, recorded before its body is read."""

    status: int | None = None
    headers: dict[str, str] | None = None


@cache
def _sendgrid_client_class() -> type:
    # Built on first use: sendgrid is imported only when an email is actually sent.
    import python_http_client

    class GuardedClient(python_http_client.Client):  # type: ignore[misc]
        """SendGrid's own HTTP client, refusing redirects and noting the status before the body.

        `_make_request` is the library's documented seam ("separated ... so we can mock it").
        """

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.seen = _Seen()

        def _make_request(self, opener: Any, request: Any, timeout: float | None = None) -> Any:
            del opener  # the default one follows redirects
            self.seen = _Seen()
            try:
                response = refusing_opener().open(request, timeout=timeout)
            except urllib.error.HTTPError as error:
                self.seen = _Seen(error.code, dict(error.headers or {}))
                from python_http_client.exceptions import handle_error

                raise handle_error(error) from None
            self.seen = _Seen(response.getcode(), dict(response.headers or {}))
            return response

    return GuardedClient
