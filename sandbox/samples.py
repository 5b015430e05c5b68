"""The sample project the demo and `python -m sandbox serve` run: its sign-ups, secrets and settings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.secretmanager import SecretManagerStandIn
from sandbox.sendgrid import SendGridStandIn
from sandbox.slack import SlackStandIn
from sandbox.twilio import ACCOUNT_SID, SENDER, TwilioStandIn

PAYLOAD = b'{"lookback_minutes":60}'  # what the Cloud Scheduler job publishes (terraform/scheduler.tf)
SECRETS = {
    "projects/demo/secrets/mixpanel-secret/versions/latest": "demo-mixpanel-secret",
    "projects/demo/secrets/sendgrid-api-key/versions/latest": "SG.demo-key",
    "projects/demo/secrets/twilio-auth-token/versions/latest": "demo-twilio-token",
}
ODD_NAMES = "<script>, <!channel>, <https://evil.example|Click here> and =HYPERLINK(...)"
# What the digest tells, for the sample project: a segment, a breakdown, companies, quiet hours.
# SMS_QUIET_HOURS is applied only to the demo's night (sandbox/demo.py): on the function itself it
# would make the demo's texts depend on the hour it is run.
DIGEST_SETTINGS = {
    "MIXPANEL_FILTER": 'properties["plan"] != "staff"',
    "BREAKDOWN_PROPERTY": "utm_source",
    "COMPANY_ROLLUP": "true",
    "SMS_QUIET_HOURS": "22:00-07:00",
}
ALWAYS = ("MIXPANEL_FILTER", "BREAKDOWN_PROPERTY", "COMPANY_ROLLUP")


def secret_name(secret: str) -> str:
    """The Secret Manager version name a sample secret is read by."""
    return f"projects/demo/secrets/{secret}/versions/latest"


def sample_profiles(window_end: datetime) -> list[dict[str, Any]]:
    """Profiles inside and outside the last hour, with the awkward names and values real data has:
    work addresses at companies and their subdomains, free-mail and disposable ones, a colleague at
    acme.com whom EXCLUDE_EMAIL_DOMAINS leaves out, and a staff account the MIXPANEL_FILTER leaves out."""

    def at(minutes_before_end: float) -> str:
        return (window_end - timedelta(minutes=minutes_before_end)).strftime("%Y-%m-%dT%H:%M:%S")

    def signed_up(distinct_id: str, minutes: float, plan: str, source: str, **props: Any) -> dict[str, Any]:
        person = profile(distinct_id, at(minutes), **props)
        person["$properties"].update({"plan": plan, "utm_source": source})  # EXTRA_PROPERTIES: no "$"
        return person

    return [
        signed_up("u-1", 55, "pro", "newsletter", name="Ada Lovelace", email="ada@globex.io"),
        signed_up(
            "u-2", 41, "team", "google", first_name="Grace", last_name="Hopper", email="grace@eng.globex.io"
        ),
        signed_up(
            "u-3", 34, "free", "<b>ad</b>", name="<script>alert('x')</script>", email="mallory@mailinator.com"
        ),
        signed_up("u-4", 30, "pro", "google", name="Zoë Ångström-Łukasiewicz", email="zoe@initech.co.uk"),
        signed_up("u-5", 26, "free", "google", name="李雷 🎉", email="li@qq.com"),
        signed_up("u-6", 22, "team", "google", name="Ivy Internal", email="ivy@eng.acme.com"),  # excluded
        signed_up("u-10", 20, "staff", "google", name="Sam Staff", email="sam@globex.io"),  # filtered out
        signed_up("u-7", 15, "free", "", email="no-name@sales.hooli.com"),
        signed_up("u-8", 9, "team", "newsletter", name="<!channel> <https://evil.example|Click here>"),
        signed_up("u-9", 0.5, "free", "=cmd", name='=HYPERLINK("http://evil.example")', email="f@gmail.com"),
        profile("early", at(61), name="Before The Window", email="early@example.com"),
        profile("late", at(-1), name="After The Window", email="late@example.com"),
        {"$distinct_id": "no-created", "$properties": {"$name": "No Created Property"}},
    ]


def sample_stand_ins(
    window_end: datetime,
) -> tuple[MixpanelStandIn, SendGridStandIn, TwilioStandIn, SlackStandIn, SecretManagerStandIn]:
    """The stand-ins a local run talks to (not started): the sample profiles, the secrets by name.

    The Slack webhook URL holds the Slack stand-in's port: add it to the Secret Manager stand-in
    (`secret_name("slack-webhook-url")`) once the stand-in has started.
    """
    mixpanel = MixpanelStandIn(
        sample_profiles(window_end), username="demo.sa", secret=SECRETS[secret_name("mixpanel-secret")]
    )
    sendgrid = SendGridStandIn(api_key=SECRETS[secret_name("sendgrid-api-key")])
    twilio = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=SECRETS[secret_name("twilio-auth-token")])
    return mixpanel, sendgrid, twilio, SlackStandIn(), SecretManagerStandIn(SECRETS)


def function_environ(
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    secret_manager: SecretManagerStandIn,
) -> dict[str, str]:
    """The function's environment for these stand-ins: every channel, the digest settings, and secrets
    as Secret Manager version names."""
    return {
        "MIXPANEL_PROJECT_ID": str(mixpanel.project_id),
        "MIXPANEL_SERVICE_ACCOUNT": mixpanel.username or "",
        "MIXPANEL_SECRET": secret_name("mixpanel-secret"),
        "EMAIL_TO": "growth@example.com,founders@example.com",
        "EMAIL_FROM": "Notifierator <alerts@example.com>",
        "SENDGRID_API_KEY": secret_name("sendgrid-api-key"),
        "SMS_TO": "+14155550100,+447700900123",
        "SMS_FROM": SENDER,
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": secret_name("twilio-auth-token"),
        "SLACK_WEBHOOK_URL": secret_name("slack-webhook-url"),
        "TIMEZONE": "Europe/Berlin",
        "PROJECT_LABEL": "Acme iOS",
        "PROFILE_URL_TEMPLATE": "https://admin.acme.example/users/{distinct_id}",
        "EXTRA_PROPERTIES": "plan,utm_source",
        "EXCLUDE_EMAIL_DOMAINS": "acme.com",
        "EMAIL_ROW_LIMIT": "5",
        "MIXPANEL_API_URL": mixpanel.url,
        "SENDGRID_API_URL": sendgrid.url,
        "TWILIO_API_URL": twilio.url,
        "SECRET_MANAGER_API_URL": secret_manager.url,
        **{name: DIGEST_SETTINGS[name] for name in ALWAYS},
    }
