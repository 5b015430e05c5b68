"""The contract every channel keeps (email, SMS, Slack), run against each through its stand-in.

Once a request has gone out, only an explicit 429/5xx answer is retried; a 2xx counts as delivered
whatever its body; a lost answer is `unconfirmed` and never retried; a refusal is not retried; a
redirect is never followed; every request is noted in the journal before it goes out, and each
recipient's outcome after.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier.channels import Channel, Delivery, DeliveryStatus
from notifier.channels.email import EmailChannel
from notifier.channels.slack import SlackChannel
from notifier.channels.sms import SmsChannel
from notifier.plan import SLACK_RECIPIENT
from notifier.render.email import EmailDigest
from notifier.retry import Retrier, RetryPolicy
from notifier.settings import EmailSettings, SecretRef, Sender, SmsSettings
from sandbox.sendgrid import SendGridStandIn
from sandbox.server import Fault, Reply, StandIn
from sandbox.slack import SlackStandIn
from sandbox.twilio import ACCOUNT_SID, TwilioStandIn
from tests.conftest import EMAILS, MARKER, PHONES, SENDGRID_KEY, TWILIO_TOKEN, NoteBook, Sleeps, retrier

DIGEST = EmailDigest(subject="2 new users", html="<p>hi</p>", text="hi", attachment=None)
PAYLOAD = {
    "text": "Acme: 1 new user",
    "blocks": [{"type": "section", "text": {"type": "plain_text", "text": "Ada"}}],
}


@dataclass
class Case:
    """One channel wired to its stand-in: how to build it, who it sends to, what the stand-in took."""

    name: str
    server: StandIn
    build: Callable[[Retrier, str], Channel]  # (retrier, base URL) -> channel
    recipients: tuple[str, ...]
    requests_per_send: int  # requests one successful send makes (SMS: one per number)
    recipients_at: Callable[[str], tuple[str, ...]] | None = None  # Slack: the webhook is the recipient

    def recipients_for(self, url: str) -> tuple[str, ...]:
        """The recipients when the channel is pointed at `url`."""
        return self.recipients_at(url) if self.recipients_at else self.recipients

    def taken(self) -> int:
        """Messages the provider acted on (each recipient of an email counts once)."""
        server = self.server
        if isinstance(server, SendGridStandIn):
            return sum(len(mail["personalizations"]) for mail in server.mails())
        if isinstance(server, TwilioStandIn):
            return len(server.messages())
        assert isinstance(server, SlackStandIn)
        return len(server.messages())


def _email(server: StandIn) -> Case:
    settings = EmailSettings(
        EMAILS, Sender("alerts@example.com"), SecretRef("SENDGRID_API_KEY", SENDGRID_KEY)
    )
    return Case(
        "email", server, lambda r, url: EmailChannel(DIGEST, settings, SENDGRID_KEY, url, r), EMAILS, 1
    )


def _sms(server: StandIn) -> Case:
    settings = SmsSettings(PHONES, "+14155550199", ACCOUNT_SID, SecretRef("TWILIO_AUTH_TOKEN", TWILIO_TOKEN))
    return Case("sms", server, lambda r, url: SmsChannel("hi", settings, TWILIO_TOKEN, url, r), PHONES, 2)


def _slack(server: StandIn) -> Case:
    assert isinstance(server, SlackStandIn)
    path = server.path

    def build(retrier: Retrier, url: str) -> Channel:
        return SlackChannel(PAYLOAD, url + path, retrier)

    def recipients_at(url: str) -> tuple[str, ...]:
        del url  # Slack's one recipient is the webhook, whatever its address
        return (SLACK_RECIPIENT,)

    return Case("slack", server, build, recipients_at(server.url), 1, recipients_at)


@pytest.fixture(params=["email", "sms", "slack"])
def case(request: pytest.FixtureRequest) -> Case:
    server = request.getfixturevalue({"email": "sendgrid", "sms": "twilio", "slack": "slack"}[request.param])
    return {"email": _email, "sms": _sms, "slack": _slack}[request.param](server)


def send(
    case: Case, *, sleeps: Sleeps | None = None, url: str | None = None
) -> tuple[tuple[Delivery, ...], list[Delivery]]:
    """Send once; return the deliveries and the outcomes noted in the journal, in order."""
    notes = NoteBook()
    url = url or case.server.url
    channel = case.build(retrier(sleep=sleeps), url)
    return channel.send(case.recipients_for(url), notes), notes.outcomes


def statuses(deliveries: tuple[Delivery, ...]) -> set[DeliveryStatus]:
    return {d.status for d in deliveries}


def test_a_request_goes_out_only_after_the_journal_noted_it(case: Case) -> None:
    notes = NoteBook()
    case.build(retrier(), case.server.url).send(case.recipients_for(case.server.url), notes)
    assert len(notes.requests) == case.requests_per_send == len(case.server.requests)
    assert sorted(r for _channel, recipients in notes.requests for r in recipients) == sorted(case.recipients)


def test_nothing_goes_out_when_the_journal_cannot_note_it(case: Case) -> None:
    deliveries = case.build(retrier(), case.server.url).send(case.recipients, NoteBook(allow=False))
    assert case.server.requests == []
    assert statuses(deliveries) == {DeliveryStatus.UNAVAILABLE}


def test_every_recipient_is_delivered_and_recorded_once(case: Case) -> None:
    deliveries, recorded = send(case)
    assert statuses(deliveries) == {DeliveryStatus.DELIVERED}
    assert sorted(d.recipient for d in recorded) == sorted(case.recipients)
    assert case.taken() == len(case.recipients)


def test_no_recipients_sends_nothing(case: Case) -> None:
    deliveries = case.build(retrier(), case.server.url).send((), NoteBook())
    assert deliveries == ()
    assert case.server.requests == []


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_is_retried_and_then_delivered(case: Case, status: int, sleeps: Sleeps) -> None:
    case.server.script(Fault.status(status))
    deliveries, _ = send(case, sleeps=sleeps)
    assert statuses(deliveries) == {DeliveryStatus.DELIVERED}
    assert len(sleeps.calls) == 1
    assert case.taken() == len(case.recipients)


def test_a_429_is_retried_after_the_servers_retry_after(case: Case, sleeps: Sleeps) -> None:
    case.server.script(Fault.status(429, retry_after="2"))
    deliveries, _ = send(case, sleeps=sleeps)
    assert statuses(deliveries) == {DeliveryStatus.DELIVERED}
    assert sleeps.calls == [2.0]


def test_still_failing_after_every_attempt_leaves_the_recipients_for_the_redelivery(
    case: Case, sleeps: Sleeps
) -> None:
    case.server.script(*[Fault.status(503)] * 10)
    deliveries, recorded = send(case, sleeps=sleeps)
    assert DeliveryStatus.UNAVAILABLE in statuses(deliveries)
    assert all(d.status is not DeliveryStatus.DELIVERED for d in recorded[:1])


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_a_refusal_is_not_retried(case: Case, status: int, sleeps: Sleeps) -> None:
    case.server.script(*[Fault.status(status)] * len(case.recipients))
    deliveries, recorded = send(case, sleeps=sleeps)
    assert statuses(deliveries) == {DeliveryStatus.REJECTED}
    assert sleeps.calls == []
    assert len(case.server.requests) == case.requests_per_send
    assert {d.status for d in recorded} == {DeliveryStatus.REJECTED}
    assert all(str(status) in (d.detail or "") for d in deliveries)


def test_a_success_status_whose_body_breaks_counts_as_delivered(case: Case, sleeps: Sleeps) -> None:
    # 202/201/200, then the connection closes mid-body: the provider took it; sending again doubles.
    case.server.script(*[Fault.truncated(keep=1)] * len(case.recipients))
    deliveries, _ = send(case, sleeps=sleeps)
    assert statuses(deliveries) == {DeliveryStatus.DELIVERED}
    assert sleeps.calls == []
    assert len(case.server.requests) == case.requests_per_send


@pytest.mark.parametrize(
    "body", [b"", b"null", b"[]", b"<html>proxy</html>", b'{"unexpected": 1}', b"\xff\xfe"]
)
def test_a_success_status_with_an_odd_body_is_never_sent_again(
    case: Case, body: bytes, sleeps: Sleeps
) -> None:
    status = {"email": 202, "sms": 201, "slack": 200}[case.name]
    case.server.script(
        *[Fault(reply=Reply(status, body, {"Content-Type": "application/json"}), accept=True)] * 2
    )
    deliveries, _ = send(case, sleeps=sleeps)
    assert sleeps.calls == []
    if case.name == "slack":
        # Slack answers exactly "ok": any other whole 2xx came from something else on the way.
        assert statuses(deliveries) == {DeliveryStatus.UNCONFIRMED}
    else:
        assert statuses(deliveries) == {DeliveryStatus.DELIVERED}


def test_a_slack_answer_in_a_charset_python_does_not_know_is_delivered(slack: SlackStandIn) -> None:
    slack.script(Fault(reply=Reply(200, b"ok", {"Content-Type": "text/plain; charset=x-bogus"}), accept=True))
    deliveries, _ = send(_slack(slack))
    assert statuses(deliveries) == {DeliveryStatus.DELIVERED}


def test_a_lost_answer_after_the_provider_acted_is_unconfirmed_and_never_retried(
    case: Case, sleeps: Sleeps
) -> None:
    case.server.script(*[Fault.dropped(after_acting=True)] * len(case.recipients))
    deliveries, recorded = send(case, sleeps=sleeps)
    assert statuses(deliveries) == {DeliveryStatus.UNCONFIRMED}
    assert sleeps.calls == []
    assert case.taken() == len(case.recipients)  # the provider did send: nobody gets it twice
    assert {d.status for d in recorded} == {DeliveryStatus.UNCONFIRMED}


def test_a_connection_refused_before_sending_is_retried(case: Case, sleeps: Sleeps) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    deliveries, _ = send(case, sleeps=sleeps, url=f"http://127.0.0.1:{port}")
    assert statuses(deliveries) == {DeliveryStatus.UNAVAILABLE}
    assert len(sleeps.calls) >= 1


class Elsewhere(StandIn):
    """Another host a redirect points to: it must never see a credential or the message."""

    name = "elsewhere"

    def respond(self, request: Any) -> Reply:
        return Reply(200, b"ok")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_never_carries_the_credential_or_the_message_to_another_host(
    case: Case, status: int, sleeps: Sleeps
) -> None:
    with Elsewhere() as elsewhere:
        case.server.script(*[Fault.redirect(elsewhere.url + "/stolen", status)] * len(case.recipients))
        deliveries, _ = send(case, sleeps=sleeps)
    assert elsewhere.requests == []
    assert statuses(deliveries) == {DeliveryStatus.REJECTED}


def test_a_server_trickling_its_answer_past_the_budget_leaves_the_send_unconfirmed(case: Case) -> None:
    # Its status line never arrives within the budget: the request went out, its answer did not.
    case.server.script(*[Fault.trickle(0.2)] * len(case.recipients))
    channel = case.build(retrier(seconds=1.0), case.server.url)
    deliveries = channel.send(case.recipients_for(case.server.url)[:1], NoteBook())
    assert statuses(deliveries) == {DeliveryStatus.UNCONFIRMED}


@pytest.mark.parametrize(
    "fault", [Fault.stalled(30), Fault.trickle(0.2, body_only=True)], ids=["stalled", "trickled"]
)
def test_a_success_status_whose_body_outlasts_the_budget_counts_as_delivered(
    case: Case, fault: Fault
) -> None:
    case.server.script(*[fault] * len(case.recipients))
    patient = RetryPolicy(attempts=3, base_delay=0.01, read_timeout=30)  # the budget, not a timeout, ends it
    channel = case.build(retrier(patient, seconds=1.0), case.server.url)
    deliveries = channel.send(case.recipients_for(case.server.url)[:1], NoteBook())
    assert statuses(deliveries) == {DeliveryStatus.DELIVERED}
    assert case.taken() == 1


def test_no_request_starts_once_the_budget_is_spent(case: Case) -> None:
    channel = case.build(retrier(seconds=0.1), case.server.url)
    notes = NoteBook()
    deliveries = channel.send(case.recipients_for(case.server.url), notes)
    assert statuses(deliveries) == {DeliveryStatus.UNAVAILABLE}  # left for the redelivery
    assert case.server.requests == []
    assert notes.requests == []  # nothing noted as sending either


ODD_BODIES = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=12,
    ).map(lambda value: __import__("json").dumps(value).encode()),
)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=ODD_BODIES, status=st.sampled_from([400, 403, 404, 429, 500, 503]))
def test_an_error_body_of_any_shape_is_read_without_raising(case: Case, body: bytes, status: int) -> None:
    case.server.script(*[Fault(reply=Reply(status, body, {"Content-Type": "application/json"}))] * 10)
    deliveries, _ = send(case)
    assert statuses(deliveries) <= {DeliveryStatus.REJECTED, DeliveryStatus.UNAVAILABLE}
    assert all(MARKER not in (d.detail or "") for d in deliveries)
    case.server.faults.clear()


def test_provider_text_never_carries_a_full_phone_number_or_address(case: Case) -> None:
    text = "The 'To' number +14155550100 (ceo@example.com) is not a valid phone number."
    problem = {"code": 21211, "message": text, "errors": [{"message": text}], "status": 400}
    case.server.script(*[Fault(reply=Reply.json(400, problem))] * len(case.recipients))
    deliveries, _ = send(case)
    details = " ".join(d.detail or "" for d in deliveries)
    assert "4155550100" not in details
    assert "ceo@example.com" not in details
    assert "0100" in details
