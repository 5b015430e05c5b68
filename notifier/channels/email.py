"""The email channel: one SendGrid v3 mail/send call, one personalization per recipient."""

from __future__ import annotations

import base64
import http.client
import urllib.error
from typing import Any

from notifier.channels import ChannelResult
from notifier.digest import EmailDigest
from notifier.errors import ChannelRejected, ChannelUnavailable
from notifier.retry import Retrier, is_transient_status, parse_retry_after
from notifier.settings import EmailSettings

CHANNEL = "email"
SENDGRID_DEFAULT_HOST = "https://api.sendgrid.com"


def build_mail(digest: EmailDigest, settings: EmailSettings) -> dict[str, Any]:
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
    for position, address in enumerate(settings.to):
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


def send_email(
    mail: dict[str, Any],
    settings: EmailSettings,
    *,
    api_key: str,
    base_url: str | None,
    retrier: Retrier,
) -> ChannelResult:
    """Send `mail` (from build_mail) to every recipient in one call, retrying what is transient."""
    from sendgrid import SendGridAPIClient

    client = SendGridAPIClient(api_key, host=base_url or SENDGRID_DEFAULT_HOST)

    def attempt() -> None:
        _post(client, mail, timeout=retrier.timeout())

    try:
        retrier.call(attempt)
    except ChannelUnavailable as error:
        return ChannelResult.tally(CHANNEL, settings.to, [], [str(error)], retryable=True)
    except ChannelRejected as error:
        return ChannelResult.tally(CHANNEL, settings.to, [], [str(error)], retryable=False)
    return ChannelResult.tally(CHANNEL, settings.to, list(settings.to), [], retryable=False)


def _post(client: Any, body: dict[str, Any], *, timeout: float) -> None:
    from python_http_client.exceptions import HTTPError

    try:
        client.client.mail.send.post(request_body=body, timeout=timeout)
    except HTTPError as error:
        status = int(error.status_code)
        detail = _sendgrid_error(error.body)
        if is_transient_status(status):
            raise ChannelUnavailable(
                f"SendGrid answered {status}: {detail}",
                channel=CHANNEL,
                retry_after=parse_retry_after(dict(error.headers or {})),
            ) from None
        raise ChannelRejected(
            f"SendGrid refused the email with {status}: {detail} "
            "(check SENDGRID_API_KEY, EMAIL_FROM is a verified sender, and EMAIL_TO)",
            channel=CHANNEL,
            status=status,
        ) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as error:
        raise ChannelUnavailable(
            f"SendGrid is unreachable or did not answer in time: {type(error).__name__}",
            channel=CHANNEL,
        ) from None


def _sendgrid_error(body: object) -> str:
    import json

    try:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        errors = json.loads(text).get("errors") or []
        messages = [str(item.get("message", "")) for item in errors if isinstance(item, dict)]
        detail = "; ".join(m for m in messages if m) or text
    except (ValueError, AttributeError):
        detail = str(body)
    return " ".join(detail.split())[:200] or "(empty body)"
