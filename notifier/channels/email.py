"""The email channel: one SendGrid v3 mail/send call, one personalization per recipient.

SendGrid's `Mail` model builds the request's JSON; the run's transport posts it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from notifier.channels import NO_TIME, Delivery, DeliveryStatus, Journal, not_sent, refusal, send
from notifier.errors import ChannelError
from notifier.render.email import EmailDigest
from notifier.replies import error_detail
from notifier.retry import Retrier
from notifier.settings import EmailSettings
from notifier.transport import ACCEPT_JSON, Request

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
        if not self.retrier.has_time():
            return not_sent(CHANNEL, recipients, NO_TIME)
        mail = build_mail(self.digest, self.settings, recipients)
        if not journal.note_sending(CHANNEL, recipients):
            return not_sent(CHANNEL, recipients)
        request = sendgrid_request("POST", self.api_key, self.base_url, "mail/send", mail)
        try:
            self.retrier.call(lambda: self._post(request), name="SendGrid mail/send")
            outcome = [Delivery(CHANNEL, address, DeliveryStatus.DELIVERED) for address in recipients]
        except ChannelError as error:
            outcome = [Delivery.failed(CHANNEL, address, error) for address in recipients]
        for delivery in outcome:
            journal.note_outcome(delivery)
        return tuple(outcome)

    def _post(self, request: Request) -> None:
        """One attempt: a 2xx is delivered whatever its body; a lost answer is never sent again."""
        answer = send(self.retrier, request, "SendGrid", CHANNEL)
        if not answer.accepted:
            detail = error_detail(answer.body, sent=request.body)
            raise refusal("SendGrid", CHANNEL, answer, detail, hint=_HINT)


def sendgrid_request(
    method: str, api_key: str, base_url: str | None, path: str, payload: Any = None
) -> Request:
    """A SendGrid v3 API request (``/v3/<path>``); the key travels only as its bearer token."""
    url = f"{(base_url or SENDGRID_DEFAULT_HOST).rstrip('/')}/v3/{path}"
    if payload is None:
        return Request(method, url, headers=ACCEPT_JSON, bearer=api_key)
    return Request.json(method, url, payload, headers=ACCEPT_JSON, bearer=api_key)
