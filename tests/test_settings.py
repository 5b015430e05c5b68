"""Settings from the environment (SPEC: Configuration): each error names its variable."""

from __future__ import annotations

import pytest

from notifier.errors import ConfigError
from notifier.settings import MIXPANEL_HOSTS, SecretRef, Settings
from tests.conftest import MARKER, MIXPANEL_SECRET, SENDGRID_KEY, TWILIO_TOKEN

MINIMAL = {"MIXPANEL_PROJECT_ID": "4242", "MIXPANEL_SECRET": MIXPANEL_SECRET}
EMAIL = {"EMAIL_TO": "a@example.com", "EMAIL_FROM": "alerts@example.com", "SENDGRID_API_KEY": SENDGRID_KEY}
SMS = {
    "SMS_TO": "+14155550100",
    "SMS_FROM": "+14155550199",
    "TWILIO_ACCOUNT_SID": "AC" + "a" * 32,
    "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
}


def error_for(env: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        Settings.from_environ(env)
    return caught.value


def test_minimal_configuration_has_the_documented_defaults() -> None:
    settings = Settings.from_environ(MINIMAL)
    assert settings.mixpanel_project_id == 4242
    assert settings.mixpanel_region == "us"
    assert settings.endpoints.mixpanel == "https://mixpanel.com"
    assert settings.mixpanel_service_account is None
    assert str(settings.timezone) == "UTC"
    assert settings.default_lookback_minutes == 60
    assert settings.notify_when_empty is False
    assert settings.email_row_limit == 500
    assert settings.configured_channels == frozenset()


def test_full_configuration_turns_both_channels_on() -> None:
    settings = Settings.from_environ({**MINIMAL, **EMAIL, **SMS, "EMAIL_TO": "a@example.com, b@example.com"})
    assert settings.configured_channels == frozenset({"email", "sms"})
    assert settings.email is not None
    assert settings.email.to == ("a@example.com", "b@example.com")
    assert settings.sms is not None
    assert settings.sms.uses_messaging_service is False


@pytest.mark.parametrize(("region", "host"), sorted(MIXPANEL_HOSTS.items()))
def test_each_region_selects_its_data_residency_host(region: str, host: str) -> None:
    settings = Settings.from_environ({**MINIMAL, "MIXPANEL_REGION": region.upper()})
    assert settings.endpoints.mixpanel == host


def test_mixpanel_api_url_overrides_the_region() -> None:
    settings = Settings.from_environ(
        {**MINIMAL, "MIXPANEL_REGION": "eu", "MIXPANEL_API_URL": "http://127.0.0.1:9/"}
    )
    assert settings.endpoints.mixpanel == "http://127.0.0.1:9"


def test_sender_with_a_display_name() -> None:
    settings = Settings.from_environ({**MINIMAL, **EMAIL, "EMAIL_FROM": "Growth Bot <bot@example.com>"})
    assert settings.email is not None
    assert (settings.email.sender.name, settings.email.sender.address) == ("Growth Bot", "bot@example.com")


def test_a_messaging_service_sid_is_a_valid_sms_sender() -> None:
    settings = Settings.from_environ({**MINIMAL, **SMS, "SMS_FROM": "MG" + "0f" * 16})
    assert settings.sms is not None
    assert settings.sms.uses_messaging_service


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MIXPANEL_SECRET": "x"}, "MIXPANEL_PROJECT_ID"),
        ({"MIXPANEL_PROJECT_ID": "4242"}, "MIXPANEL_SECRET"),
        ({**MINIMAL, "MIXPANEL_PROJECT_ID": "my-project"}, "MIXPANEL_PROJECT_ID"),
        ({**MINIMAL, "MIXPANEL_PROJECT_ID": "0"}, "MIXPANEL_PROJECT_ID"),
        ({**MINIMAL, "MIXPANEL_REGION": "asia"}, "MIXPANEL_REGION"),
        ({**MINIMAL, "TIMEZONE": "Mars/Olympus"}, "TIMEZONE"),
        ({**MINIMAL, "DEFAULT_LOOKBACK_MINUTES": "0"}, "DEFAULT_LOOKBACK_MINUTES"),
        ({**MINIMAL, "DEFAULT_LOOKBACK_MINUTES": "44641"}, "DEFAULT_LOOKBACK_MINUTES"),
        ({**MINIMAL, "DEFAULT_LOOKBACK_MINUTES": "1h"}, "DEFAULT_LOOKBACK_MINUTES"),
        ({**MINIMAL, "NOTIFY_WHEN_EMPTY": "maybe"}, "NOTIFY_WHEN_EMPTY"),
        ({**MINIMAL, "EMAIL_ROW_LIMIT": "0"}, "EMAIL_ROW_LIMIT"),
        ({**MINIMAL, **EMAIL, "EMAIL_TO": "not-an-address"}, "EMAIL_TO"),
        ({**MINIMAL, **EMAIL, "EMAIL_TO": "a@example.com,,b@example.com"}, "EMAIL_TO"),
        ({**MINIMAL, **EMAIL, "EMAIL_TO": "a@example.com; b@example.com"}, "EMAIL_TO"),
        ({**MINIMAL, **EMAIL, "EMAIL_TO": ",".join(f"u{n}@example.com" for n in range(1001))}, "EMAIL_TO"),
        ({**MINIMAL, **EMAIL, "EMAIL_FROM": ""}, "EMAIL_FROM"),
        ({**MINIMAL, **EMAIL, "EMAIL_FROM": "Bot <bot@>"}, "EMAIL_FROM"),
        ({**MINIMAL, **EMAIL, "SENDGRID_API_KEY": ""}, "SENDGRID_API_KEY"),
        ({**MINIMAL, **SMS, "SMS_TO": "4155550100"}, "SMS_TO"),
        ({**MINIMAL, **SMS, "SMS_TO": "+1 415 555 0100"}, "SMS_TO"),
        ({**MINIMAL, **SMS, "SMS_FROM": ""}, "SMS_FROM"),
        ({**MINIMAL, **SMS, "SMS_FROM": "Notifier"}, "SMS_FROM"),
        ({**MINIMAL, **SMS, "TWILIO_ACCOUNT_SID": ""}, "TWILIO_ACCOUNT_SID"),
        ({**MINIMAL, **SMS, "TWILIO_ACCOUNT_SID": "AC123"}, "TWILIO_ACCOUNT_SID"),
        ({**MINIMAL, **SMS, "TWILIO_AUTH_TOKEN": " "}, "TWILIO_AUTH_TOKEN"),
        ({**MINIMAL, "MIXPANEL_API_URL": "http://mixpanel.example.com"}, "MIXPANEL_API_URL"),
        ({**MINIMAL, "SENDGRID_API_URL": "http://10.0.0.8:9000"}, "SENDGRID_API_URL"),
        ({**MINIMAL, "TWILIO_API_URL": "ftp://127.0.0.1"}, "TWILIO_API_URL"),
        ({**MINIMAL, "SECRET_MANAGER_API_URL": "https://user:pw@example.com"}, "SECRET_MANAGER_API_URL"),
    ],
)
def test_each_missing_or_malformed_variable_is_named(env: dict[str, str], variable: str) -> None:
    error = error_for(env)
    assert error.variable == variable
    assert str(error).startswith(f"{variable}: ")
    assert MARKER not in str(error)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000", "https://api.example.com"]
)
def test_plain_http_is_accepted_only_for_loopback(url: str) -> None:
    assert Settings.from_environ({**MINIMAL, "SENDGRID_API_URL": url}).endpoints.sendgrid == url


def test_errors_about_secrets_never_repeat_the_secret() -> None:
    # A malformed value in a secret's neighbour must not echo the secret itself.
    error = error_for({**MINIMAL, **EMAIL, "EMAIL_TO": SENDGRID_KEY})
    assert MARKER not in str(error)


def test_secret_refs_hide_literal_values_in_repr() -> None:
    settings = Settings.from_environ({**MINIMAL, **EMAIL, **SMS})
    assert MARKER not in repr(settings)
    assert MARKER not in str(settings.mixpanel_secret)


def test_secret_version_names_are_recognised_and_shown() -> None:
    ref = SecretRef("MIXPANEL_SECRET", "projects/p1/secrets/mixpanel/versions/latest")
    assert ref.is_version_name
    assert "projects/p1/secrets/mixpanel/versions/latest" in repr(ref)
    assert not SecretRef("MIXPANEL_SECRET", "projects/p1/secrets/mixpanel").is_version_name


def test_empty_variables_count_as_unset() -> None:
    settings = Settings.from_environ({**MINIMAL, "EMAIL_TO": "", "SMS_TO": "  ", "TIMEZONE": ""})
    assert settings.configured_channels == frozenset()


def test_the_digest_settings_have_their_defaults() -> None:
    digest = Settings.from_environ(MINIMAL).digest
    assert digest.project_label == "Mixpanel project 4242"
    assert (digest.profile_url_template, digest.extra_properties, digest.exclude_email_domains) == (
        None,
        (),
        (),
    )
    state = Settings.from_environ(MINIMAL).state
    assert (
        state.store,
        state.firestore_database,
        state.max_catch_up_minutes,
        state.late_arrival_minutes,
    ) == (
        "memory",
        "(default)",
        10080,
        60,
    )


def test_the_digest_settings_are_read() -> None:
    digest = Settings.from_environ(
        {
            **MINIMAL,
            "PROJECT_LABEL": "  Acme   iOS ",
            "PROFILE_URL_TEMPLATE": "https://admin.acme.com/users/{distinct_id}?tab=events",
            "EXTRA_PROPERTIES": "utm_source, plan ,utm_source",
            "EXCLUDE_EMAIL_DOMAINS": "Acme.com, @eng.acme.com",
        }
    ).digest
    assert digest.project_label == "Acme iOS"
    assert digest.extra_properties == ("utm_source", "plan")
    assert digest.exclude_email_domains == ("acme.com", "eng.acme.com")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PROFILE_URL_TEMPLATE", "http://admin.acme.com/users/{distinct_id}"),
        ("PROFILE_URL_TEMPLATE", "https://admin.acme.com/users/"),
        ("PROFILE_URL_TEMPLATE", "javascript:alert({distinct_id})"),
        ("PROFILE_URL_TEMPLATE", "https://a.example/{distinct_id}/{distinct_id}"),
        ("PROJECT_LABEL", "x" * 61),
        ("PROJECT_LABEL", "two\nlines"),
        ("EXTRA_PROPERTIES", "a,b,c,d,e,f"),
        ("EXTRA_PROPERTIES", "$email"),
        ("EXCLUDE_EMAIL_DOMAINS", "acme"),
        ("STATE_STORE", "redis"),
        ("FIRESTORE_DATABASE", "Bad_Name"),
        ("MAX_CATCH_UP_MINUTES", "44641"),
        ("LATE_ARRIVAL_MINUTES", "-1"),
        ("SLACK_WEBHOOK_URL", "https://hooks.slack.com.evil.example/services/T/B/x"),
        ("SLACK_WEBHOOK_URL", "http://hooks.slack.com/services/T/B/x"),
        ("MIXPANEL_API_URL", "http://127.0.0.1:99999"),
    ],
)
def test_each_malformed_new_setting_is_named(variable: str, value: str) -> None:
    assert error_for({**MINIMAL, **EMAIL, variable: value}).variable == variable


def test_a_profile_link_may_use_plain_http_on_loopback_for_local_runs() -> None:
    template = "http://127.0.0.1:8000/u/{distinct_id}"
    assert (
        Settings.from_environ({**MINIMAL, "PROFILE_URL_TEMPLATE": template}).digest.profile_url_template
        == template
    )


def test_a_slack_webhook_turns_the_slack_channel_on() -> None:
    settings = Settings.from_environ(
        {**MINIMAL, "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T1/B2/x3"}
    )
    assert settings.configured_channels == frozenset({"slack"})


def test_a_quoted_display_name_is_a_sender() -> None:
    sender = Settings.from_environ(
        {**MINIMAL, **EMAIL, "EMAIL_FROM": '"Growth Team" <alerts@acme.com>'}
    ).email
    assert sender is not None
    assert (sender.sender.name, sender.sender.address) == ("Growth Team", "alerts@acme.com")


def test_recipients_that_differ_only_in_case_are_one_mailbox() -> None:
    email = Settings.from_environ({**MINIMAL, **EMAIL, "EMAIL_TO": "ceo@example.com, CEO@Example.com"}).email
    assert email is not None
    assert email.to == ("ceo@example.com",)
