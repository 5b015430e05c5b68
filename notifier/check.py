"""`python -m notifier check`: prove the credentials and settings before the first scheduled run.

It reads the function's configuration (the environment, or `--env-file deploy.env`), resolves the
secrets as the function does, and asks each service one harmless question; nothing is sent. One line
per check: PASS, FAIL (with what to do), UNSURE (the service would not say: not a failure) or SKIP.
`--send-test` then sends one marked test message on every channel whose checks passed.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Any

from notifier import sample
from notifier.channels import DeliveryStatus
from notifier.channels.email import sendgrid_request
from notifier.channels.sms import twilio_transport
from notifier.envfile import OPTION, tool_environ
from notifier.errors import ConfigError, NotifierError, SourceUnavailable, TransientError
from notifier.mixpanel import (
    FIRST_SEEN,
    MixpanelAuth,
    MixpanelClient,
    property_reference,
)
from notifier.replies import error_detail, is_transient_status, mask_phone
from notifier.retry import Deadline, Retrier
from notifier.services import Services
from notifier.settings import SecretRef, Settings, SmsSettings, check_slack_webhook_url
from notifier.span import Span
from notifier.state.firestore import open_firestore
from notifier.transport import Answer, Request, Unanswered
from notifier.variables import CHANNEL_VARIABLES

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAIL_SEND = "mail.send"
_AGAIN = "it may be passing: run the check again"


class Verdict(StrEnum):
    """How one check came out."""

    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    FAIL = "FAIL"
    UNSURE = "UNSURE"  # the service would not tell; not a failure
    SKIP = "SKIP"


@dataclass(frozen=True)
class Finding:
    """One line of the check's report; `channel` ties it to the channel it is about."""

    verdict: Verdict
    subject: str
    text: str
    channel: str | None = None

    def line(self) -> str:
        """The finding as printed."""
        return f"{self.verdict.value:<6} {self.subject:<16} {self.text}"


@dataclass(frozen=True)
class Checker:
    """What every check works with; a fresh one (and so a fresh time budget) per check."""

    settings: Settings
    environ: Mapping[str, str]
    services: Services
    retrier: Retrier

    def secret(self, ref: SecretRef) -> str:
        """A secret's value, read as the function reads it (Secret Manager for a version name)."""
        return self.services.secrets.value(ref, self.retrier, api_url=self.settings.endpoints.secret_manager)


Check = Callable[[Checker], list[Finding]]


def add_parser(commands: Any) -> None:
    """The `check` command's arguments."""
    command = commands.add_parser(
        "check", help="check credentials and settings; sends nothing (unless --send-test)"
    )
    command.add_argument(
        OPTION, dest="env_file", help="read the function's settings from this file (deploy.env)"
    )
    command.add_argument(
        "--send-test", action="store_true", help="then send one marked test message on every channel"
    )


def command(args: argparse.Namespace, *, environ: Mapping[str, str], services: Services, out: IO[str]) -> int:
    """Run the checks, one line each; 0 when nothing failed, 1 when something did, 2 for a bad file."""
    try:
        tool = tool_environ(args.env_file, environ)
    except ConfigError as error:
        print(f"not checked: {error}", file=out)
        return 2
    findings: list[Finding] = []

    def show(finding: Finding) -> None:
        findings.append(finding)
        print(finding.line(), file=out, flush=True)

    try:
        settings = Settings.from_environ(tool)
        settings.require_a_channel()  # else every run would be a bad configuration
    except ConfigError as error:
        where = "" if args.env_file else "; it was read from the environment: --env-file reads a file"
        *others, last = error.problems  # each problem on its line; what to do after the last
        for problem in others:
            show(Finding(Verdict.FAIL, "configuration", str(problem)))
        show(Finding(Verdict.FAIL, "configuration", f"{last} (fix it{where}; nothing else was checked)"))
    else:
        show(Finding(Verdict.PASS, "configuration", _describe(settings, args.env_file)))
        for finding in run_checks(settings, tool, services):
            show(finding)
        if args.send_test:
            failed = {f.channel for f in findings if f.verdict is Verdict.FAIL and f.channel}
            for finding in send_tests(settings, tool, services, skip=failed):
                show(finding)
    failures = sum(1 for f in findings if f.verdict is Verdict.FAIL)
    verdict = (
        f"{failures} check(s) failed: fix the FAIL lines and run the check again"
        if failures
        else "every check passed"
    )
    print(verdict + ("" if args.send_test else "; nothing was sent"), file=out)
    return 1 if failures else 0


def run_checks(settings: Settings, environ: Mapping[str, str], services: Services) -> Iterator[Finding]:
    """Every check, in order, each with its own time budget."""
    for check in (check_mixpanel, check_sendgrid, check_twilio, check_slack, check_state):
        yield from _guarded(check, _checker(settings, environ, services))


def _checker(settings: Settings, environ: Mapping[str, str], services: Services) -> Checker:
    deadline = Deadline(settings.run_budget_seconds, services.clock)
    retrier = Retrier(services.policy, deadline, services.transport, sleep=services.sleep, rng=services.rng)
    return Checker(settings, environ, services, retrier)


def _guarded(check: Check, checker: Checker) -> list[Finding]:
    """A check's findings; what it did not expect still becomes one line, without the exception's text."""
    try:
        return check(checker)
    except NotifierError as error:
        return [_failed(check.__name__.removeprefix("check_"), error)]
    except Exception as error:  # noqa: BLE001 - reported as one line; its text could hold a secret
        return [
            Finding(
                Verdict.FAIL,
                check.__name__.removeprefix("check_"),
                f"unexpected {type(error).__name__} (a bug in the check: please report it)",
            )
        ]


def _failed(subject: str, error: NotifierError, channel: str | None = None) -> Finding:
    text = str(error)
    if isinstance(error, TransientError):
        text += f" ({_AGAIN})"
    return Finding(Verdict.FAIL, subject, text, channel)


def _off(subject: str, channel: str) -> Finding:
    variable = CHANNEL_VARIABLES[channel]
    return Finding(Verdict.SKIP, subject, f"the {channel} channel is off ({variable} is not set)", channel)


def _skipped(subject: str, channel: str | None = None) -> Finding:
    return Finding(Verdict.SKIP, subject, "needs the check above, which failed", channel)


def _describe(settings: Settings, env_file: str | None) -> str:
    source = env_file or "the environment"
    channels = ", ".join(c for c in ("email", "sms", "slack") if c in settings.configured_channels)
    store = settings.state.store
    if store == "firestore":
        store += f" database {settings.state.firestore_database}"
    return f"read from {source}: channels {channels or 'none'}; run history in {store}"


# -- Mixpanel -------------------------------------------------------------------------------------
DATED = "sign-up date"
# Fewer than one profile in this many with the created property: the function would find almost no one.
FEW = 10


@dataclass(frozen=True)
class ProfileCounts:
    """Mixpanel's counts of the project's profiles, as `check` asks for them."""

    everyone: int
    dated: int  # with the created property
    found: int | None = None  # what the function's where finds since 1970, when asked
    first_seen: int | None = None  # with $mp_first_event_time, when asked instead

    @property
    def queries(self) -> int:
        """How many Engage queries the counts took (each counts against the 60 an hour)."""
        return 2 + (self.found is not None) + (self.first_seen is not None)


def check_mixpanel(c: Checker) -> list[Finding]:
    """The credentials, region and project, then how many profiles the function can date and find."""
    s = c.settings
    created_property, where_filter = s.created_property, s.mixpanel_filter
    try:
        client = MixpanelClient(
            base_url=s.endpoints.mixpanel,
            project_id=s.mixpanel_project_id,
            auth=MixpanelAuth(s.mixpanel_service_account, c.secret(s.mixpanel_secret)),
            retrier=c.retrier,
            created_property=created_property,
            where_filter=where_filter,
        )
        everyone = client.total(None)
    except NotifierError as error:
        return [_failed("Mixpanel", error), _skipped(DATED)]
    accepted = f"credentials, region {s.mixpanel_region} and project {s.mixpanel_project_id} accepted"
    found = [Finding(Verdict.PASS, "Mixpanel", f"{accepted}: {everyone:,} profiles")]
    try:
        counts = count_profiles(client, everyone, created_property, c.services.now())
    except NotifierError as error:
        return [*found, _failed(DATED, error)]
    return [*found, dated_finding(counts, created_property, where_filter)]


def count_profiles(
    client: MixpanelClient, everyone: int, created_property: str, now: datetime
) -> ProfileCounts:
    """All profiles, those with the created property, then those the function's where finds (or, when
    few have the property, those Mixpanel dates by its own First Seen)."""
    dated = client.total(f"defined({property_reference(created_property)})")
    if everyone == 0:
        return ProfileCounts(everyone, dated)
    if dated * FEW < everyone:
        if created_property == FIRST_SEEN:
            return ProfileCounts(everyone, dated)
        return ProfileCounts(
            everyone, dated, first_seen=client.total(f"defined({property_reference(FIRST_SEEN)})")
        )
    return ProfileCounts(everyone, dated, found=client.total_in([Span.between(EPOCH, now)]))


def dated_finding(counts: ProfileCounts, created_property: str, where_filter: str | None) -> Finding:
    """What the counts mean for the digests, and the fix when they would miss people."""
    queries = f"{counts.queries} Engage queries of the 60 an hour Mixpanel allows"
    name = f"CREATED_PROPERTY {created_property}"
    if counts.everyone == 0:
        text = (
            f"the project has no profiles yet, so there is nothing to count ({queries}); "
            "run the check again after the first sign-up"
        )
        return Finding(Verdict.UNSURE, DATED, text)
    if counts.found is None:
        return Finding(Verdict.FAIL, DATED, _few_dated(counts, created_property) + f" ({queries})")
    without = counts.everyone - counts.dated
    lacking = f"; {without:,} profiles without it are never reported" if without else ""
    if where_filter:
        kept = f"MIXPANEL_FILTER keeps {counts.found:,} of the {counts.dated:,} profiles that have it"
        text = f"{name}: {kept}{lacking} ({queries})"
        return Finding(Verdict.PASS, DATED, text)
    if counts.found >= counts.dated:
        finds = f"the function's where finds all {counts.dated:,} profiles that have it"
        text = f"{name}: {finds}{lacking} ({queries})"
        return Finding(Verdict.PASS, DATED, text)
    return Finding(
        Verdict.FAIL,
        DATED,
        f"{counts.dated:,} profiles have {created_property} but the function's where finds {counts.found:,} "
        f"of them ({queries}): the others would never be reported. Their {created_property} is not a date "
        "Mixpanel compares with datetime(N) (an import that wrote it as text?) or lies in the future: look "
        "at one in Mixpanel's Users page. If people signed up between the queries, run the check again.",
    )


def _few_dated(counts: ProfileCounts, created_property: str) -> str:
    """Why almost no one would be reported, and what to set instead."""
    have = (
        f"only {counts.dated:,} of {counts.everyone:,} profiles have {created_property}, "
        "so the digests would miss almost everyone"
    )
    at_sign_up = "set it on each profile at sign-up (Mixpanel does not set it by itself)"
    if created_property == FIRST_SEEN:
        return (
            f"{have}: Mixpanel sets it from a profile's first event, and profiles made without events lack "
            "it. Set a sign-up date property at sign-up and name it in CREATED_PROPERTY"
        )
    if counts.first_seen:
        return (
            f"{have}: {at_sign_up}, or set CREATED_PROPERTY={FIRST_SEEN} (Mixpanel's First Seen), which "
            f"Mixpanel has for {counts.first_seen:,} of them"
        )
    return f"{have}: {at_sign_up}; {FIRST_SEEN} is no help here, Mixpanel has it for none of them"


# -- SendGrid -------------------------------------------------------------------------------------
def check_sendgrid(c: Checker) -> list[Finding]:
    """The key has the mail.send scope; the sender is verified, where the key may read that."""
    email = c.settings.email
    if email is None:
        return [_off("SendGrid", "email")]
    try:
        key = c.secret(email.api_key)
        status, body = _sendgrid_get(c, key, "scopes")
    except NotifierError as error:
        return [_failed("SendGrid key", error, "email"), _skipped("SendGrid sender", "email")]
    if status != 200:
        text = f"SendGrid answered {status} ({error_detail(body)})"
        if status in (401, 403):
            text += (
                ": it does not accept SENDGRID_API_KEY; create a key (Settings > API Keys) with "
                "Mail Send and add it as the secret's new version"
            )
        elif is_transient_status(status):
            text += f"; {_AGAIN}"
        return [Finding(Verdict.FAIL, "SendGrid key", text, "email"), _skipped("SendGrid sender", "email")]
    scopes = body.get("scopes") if isinstance(body, dict) else None
    if not isinstance(scopes, list) or MAIL_SEND not in scopes:
        text = (
            "SENDGRID_API_KEY lacks the Mail Send permission (mail.send): give the key Mail Send in "
            "SendGrid (Settings > API Keys > Edit), or create one with it"
        )
        return [Finding(Verdict.FAIL, "SendGrid key", text, "email"), _skipped("SendGrid sender", "email")]
    key_ok = Finding(Verdict.PASS, "SendGrid key", "SENDGRID_API_KEY accepted, with mail.send", "email")
    return [key_ok, _sender(email.sender.address, c, key)]


def _sendgrid_get(c: Checker, key: str, path: str) -> tuple[int, Any]:
    """One GET of SendGrid's v3 API through the transport: the status and the parsed body."""
    answer = _ask(c, sendgrid_request("GET", key, c.settings.endpoints.sendgrid, path), "SendGrid")
    try:
        return answer.status, json.loads(answer.body or b"null")
    except ValueError:
        raise SourceUnavailable(
            "SendGrid answered with a body that is not JSON", service="SendGrid"
        ) from None


def _ask(c: Checker, request: Request, service: str) -> Answer:
    """One request of the check's own: its whole answer, or SourceUnavailable."""
    try:
        answer = c.retrier.send(request)
    except Unanswered as error:
        raise SourceUnavailable(f"{service} {error.reason}", service=service) from None
    if not answer.complete:
        raise SourceUnavailable(f"{service} answered, but the answer broke off", service=service)
    return answer


def _sender(address: str, c: Checker, key: str) -> Finding:
    try:
        status, body = _sendgrid_get(c, key, "verified_senders")
    except NotifierError as error:
        return _failed("SendGrid sender", error, "email")
    if status == 403:
        return Finding(
            Verdict.UNSURE,
            "SendGrid sender",
            f"cannot tell whether EMAIL_FROM {address} is verified: this key may not read sender "
            "identities (fine for a Mail Send key); see Settings > Sender Authentication in SendGrid",
            "email",
        )
    results = body.get("results") if isinstance(body, dict) and status == 200 else None
    if not isinstance(results, list):
        return Finding(
            Verdict.FAIL,
            "SendGrid sender",
            f"SendGrid answered {status} ({error_detail(body)}) listing senders; {_AGAIN}",
            "email",
        )
    mine = [
        r for r in results if isinstance(r, dict) and str(r.get("from_email", "")).lower() == address.lower()
    ]
    if any(r.get("verified") is True for r in mine):
        return Finding(Verdict.PASS, "SendGrid sender", f"EMAIL_FROM {address} is a verified sender", "email")
    if mine:
        return Finding(
            Verdict.FAIL,
            "SendGrid sender",
            f"EMAIL_FROM {address} is not verified yet: open the link SendGrid mailed to it, or resend it "
            "from Settings > Sender Authentication",
            "email",
        )
    return Finding(
        Verdict.UNSURE,
        "SendGrid sender",
        f"EMAIL_FROM {address} is not a single verified sender; mail goes out only if its domain is "
        "authenticated (Settings > Sender Authentication), which this check does not read",
        "email",
    )


# -- Twilio ---------------------------------------------------------------------------------------
def check_twilio(c: Checker) -> list[Finding]:
    """The account's credentials, and that SMS_FROM is one of its numbers or Messaging Services."""
    sms = c.settings.sms
    if sms is None:
        return [_off("Twilio", "sms")]
    kind = "Messaging Service" if sms.uses_messaging_service else "number"
    account = f"account {sms.account_sid}"
    try:
        owned = _twilio_owns_sender(sms, c.secret(sms.auth_token), c)
    except NotifierError as error:
        return [_failed("Twilio", error, "sms"), _skipped("Twilio sender", "sms")]
    except _TwilioAnswered as answer:
        if answer.status == 404 and sms.uses_messaging_service:
            owned = False  # the credentials worked: the account has no such service
        else:
            text = f"{answer}; {_AGAIN}" if is_transient_status(answer.status) else str(answer)
            if answer.status == 401:
                text = (
                    f"{answer}: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN do not match; copy both from the "
                    "Twilio Console (Account Info), and add the token as the secret's new version"
                )
            return [Finding(Verdict.FAIL, "Twilio", text, "sms"), _skipped("Twilio sender", "sms")]
    found = [Finding(Verdict.PASS, "Twilio", f"{account}: credentials accepted", "sms")]
    sender = sms.sender if sms.uses_messaging_service else mask_phone(sms.sender)
    if owned:
        text = f"SMS_FROM {sender} is one of the account's {kind}s"
        return [*found, Finding(Verdict.PASS, "Twilio sender", text, "sms")]
    what_to_do = (
        "copy the SID from Messaging > Services in the Twilio Console"
        if sms.uses_messaging_service
        else "buy or port it (Phone Numbers > Manage), or set SMS_FROM to one of the account's numbers"
    )
    text = f"SMS_FROM {sender} is not one of the {account}'s {kind}s: {what_to_do}"
    return [*found, Finding(Verdict.FAIL, "Twilio sender", text, "sms")]


class _TwilioAnswered(Exception):
    """Twilio answered with an error status; the text says what it said, numbers masked."""

    def __init__(self, status: int, body: bytes) -> None:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        code = parsed.get("code") if isinstance(parsed, dict) else None
        said = f", error {code}" if isinstance(code, int) else ""
        super().__init__(f"Twilio answered {status}{said} ({error_detail(body)})")
        self.status = status


def _twilio_owns_sender(sms: SmsSettings, token: str, c: Checker) -> bool:
    """True when the account has SMS_FROM, through the twilio library's client objects."""
    from twilio.rest import Client

    http = twilio_transport(lambda request: _ask(c, request, "Twilio"))
    client = Client(sms.account_sid, token, http_client=http)
    if c.settings.endpoints.twilio:
        # One stand-in answers both APIs; in production they are api. and messaging.twilio.com.
        client.api.base_url = client.messaging.base_url = c.settings.endpoints.twilio
    try:
        if sms.uses_messaging_service:
            client.messaging.v1.services(sms.sender).fetch()
            return True
        numbers = client.api.v2010.accounts(sms.account_sid).incoming_phone_numbers.list(
            phone_number=sms.sender, limit=20
        )
    except NotifierError:
        raise
    except Exception:
        answer = http.last.answer if http.last is not None else None
        if answer is None or answer.accepted:
            raise  # not an error answer: a bug, for the check's edge to report
        raise _TwilioAnswered(answer.status, answer.body) from None
    # PhoneNumber matches partially: only the exact number counts.
    return any(number.phone_number == sms.sender for number in numbers)


# -- Slack and the state store --------------------------------------------------------------------
def check_slack(c: Checker) -> list[Finding]:
    """The webhook URL's shape: a webhook cannot be checked without posting to its channel."""
    slack = c.settings.slack
    if slack is None:
        return [_off("Slack", "slack")]
    try:
        check_slack_webhook_url(c.secret(slack.webhook_url))
    except NotifierError as error:
        return [_failed("Slack", error, "slack")]
    text = "SLACK_WEBHOOK_URL is a Slack incoming-webhook URL (only a post proves it: --send-test posts one)"
    return [Finding(Verdict.PASS, "Slack", text, "slack")]


def check_state(c: Checker) -> list[Finding]:
    """The run history answers a read and a write."""
    state = c.settings.state
    if state.store == "memory":
        text = "STATE_STORE=memory keeps the history in one process only (deployed functions use firestore)"
        return [Finding(Verdict.PASS, "state store", text)]
    try:
        store = open_firestore(database=state.firestore_database, retrier=c.retrier, environ=c.environ)
        store.check()
    except NotifierError as error:
        return [_failed("state store", error)]
    text = f"Firestore database {state.firestore_database} answered a read and a write"
    return [Finding(Verdict.PASS, "state store", text)]


# -- --send-test ----------------------------------------------------------------------------------
def send_tests(
    settings: Settings, environ: Mapping[str, str], services: Services, *, skip: Collection[str]
) -> Iterator[Finding]:
    """One marked test message on every configured channel whose checks did not fail."""
    report = sample.sample_report(settings, services.now())
    for name in ("email", "sms", "slack"):
        if name not in settings.configured_channels:
            continue
        subject = f"test {name}"
        if name in skip:
            yield Finding(Verdict.SKIP, subject, "not sent: its checks above failed", name)
            continue
        c = _checker(settings, environ, services)
        try:
            channel, recipients = sample.channel_for(name, settings, report, c.secret, c.retrier)
        except NotifierError as error:
            yield _failed(subject, error, name)
            continue
        deliveries = sample.send(channel, recipients)
        told = sum(1 for d in deliveries if d.status is DeliveryStatus.DELIVERED)
        problems = "; ".join(dict.fromkeys(d.detail for d in deliveries if d.detail))
        if told == len(deliveries):
            yield Finding(Verdict.PASS, subject, f'sent to {told} recipient(s): "{sample.MARK}"', name)
        elif all(d.status is DeliveryStatus.UNCONFIRMED for d in deliveries):
            yield Finding(Verdict.UNSURE, subject, f"{problems}; look for it", name)
        else:
            yield Finding(Verdict.FAIL, subject, f"sent to {told} of {len(deliveries)}: {problems}", name)
