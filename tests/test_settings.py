"""Settings from the environment (SPEC: Configuration): each error names its variable."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.errors import ConfigError
from notifier.filter_expression import why_unbalanced
from notifier.mixpanel import property_reference
from notifier.quiet_hours import QuietHours
from notifier.services import Services
from notifier.settings import MIXPANEL_HOSTS, SecretRef, Settings
from notifier.variables import BY_NAME
from tests.conftest import MARKER, MIXPANEL_SECRET, SENDGRID_KEY, TWILIO_TOKEN, run_once

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
    assert settings.digest.notify_when_empty is False
    assert settings.digest.email_row_limit == 500
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


# -- Every problem at once --------------------------------------------------------------------------


def test_every_problem_is_reported_at_once_each_naming_its_variable() -> None:
    error = error_for(
        {
            "MIXPANEL_SECRET": MIXPANEL_SECRET,
            **EMAIL,
            **SMS,
            "EMAIL_TO": "growth@example.com, " + SENDGRID_KEY,
            "SMS_FROM": "Notifier",
            "MIXPANEL_PAGE_CONCURRENCY": "9",
        }
    )
    assert [problem.variable for problem in error.problems] == [
        "MIXPANEL_PROJECT_ID",
        "MIXPANEL_PAGE_CONCURRENCY",
        "EMAIL_TO",
        "SMS_FROM",
    ]
    text = str(error)
    assert "\n" not in text  # the function logs it as one line
    assert all(f"{problem.variable}: " in text for problem in error.problems)
    assert MARKER not in text
    assert error.variable == "MIXPANEL_PROJECT_ID"
    assert error.log_fields()["variables"] == [problem.variable for problem in error.problems]


def test_one_problem_is_one_error_as_before() -> None:
    error = error_for({**MINIMAL, "TIMEZONE": "Mars/Olympus"})
    assert error.problems == (error,)
    assert str(error) == "TIMEZONE: must be an IANA time zone like Europe/Berlin"


# -- The variables SPEC added -----------------------------------------------------------------------


def test_the_new_variables_have_their_documented_defaults() -> None:
    settings = Settings.from_environ(MINIMAL)
    assert settings.created_property == "$created"
    assert settings.mixpanel_page_concurrency == 3
    assert settings.mixpanel_filter is None
    assert settings.digest.breakdown_property is None
    assert settings.digest.company_rollup is True
    assert settings.sms_quiet_hours is None


def test_the_new_variables_are_read() -> None:
    settings = Settings.from_environ(
        {
            **MINIMAL,
            "CREATED_PROPERTY": "signed_up_at",
            "MIXPANEL_PAGE_CONCURRENCY": "5",
            "MIXPANEL_FILTER": ' properties["plan"] == "pro" ',
            "BREAKDOWN_PROPERTY": "utm_source",
            "COMPANY_ROLLUP": "false",
            "SMS_QUIET_HOURS": "22:00-07:30",
        }
    )
    assert settings.created_property == "signed_up_at"
    assert settings.mixpanel_page_concurrency == 5
    assert settings.mixpanel_filter == 'properties["plan"] == "pro"'
    assert settings.digest.breakdown_property == "utm_source"
    assert settings.digest.company_rollup is False
    assert settings.sms_quiet_hours == QuietHours(start=dt.time(22, 0), end=dt.time(7, 30))


def test_an_empty_created_property_counts_as_unset() -> None:
    assert Settings.from_environ({**MINIMAL, "CREATED_PROPERTY": "  "}).created_property == "$created"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CREATED_PROPERTY", 'signed_up"at'),
        ("CREATED_PROPERTY", "signed_up'at"),
        ("CREATED_PROPERTY", "signed\\up"),
        ("CREATED_PROPERTY", "signed\tup"),
        ("CREATED_PROPERTY", "signed\u0085up"),  # a C1 control
        ("CREATED_PROPERTY", "signed\u202eup"),  # a bidi override
        ("CREATED_PROPERTY", "signed\u2028up"),  # a line separator
        ("CREATED_PROPERTY", "signed\u200bup"),  # zero-width
        ("CREATED_PROPERTY", "x" * 256),
        ("BREAKDOWN_PROPERTY", 'utm"] or true or ["'),
        ("BREAKDOWN_PROPERTY", "a\x7fb"),
        ("MIXPANEL_PAGE_CONCURRENCY", "0"),
        ("MIXPANEL_PAGE_CONCURRENCY", "6"),
        ("MIXPANEL_FILTER", 'properties["plan"] == "pro") or (true'),
        ("MIXPANEL_FILTER", 'properties["plan"] == "pro'),
        ("MIXPANEL_FILTER", 'properties["plan"] == "pro\\") or (true or ("'),
        ("COMPANY_ROLLUP", "sometimes"),
        ("SMS_QUIET_HOURS", "22:00-22:00"),
        ("SMS_QUIET_HOURS", "24:00-07:00"),
        ("SMS_QUIET_HOURS", "22-07"),
        ("SMS_QUIET_HOURS", "10pm-7am"),
    ],
)
def test_each_malformed_spec_variable_is_bad_configuration_naming_it(variable: str, value: str) -> None:
    error = error_for({**MINIMAL, variable: value})
    assert [problem.variable for problem in error.problems] == [variable]
    assert value not in str(error)


@given(st.text(min_size=1, max_size=12))
def test_every_property_name_settings_accept_is_one_the_query_can_name(name: str) -> None:
    for variable in ("CREATED_PROPERTY", "BREAKDOWN_PROPERTY", "EXTRA_PROPERTIES"):
        try:
            settings = Settings.from_environ({**MINIMAL, variable: name})
        except ConfigError:
            continue
        digest = settings.digest
        for accepted in (
            settings.created_property,
            *digest.extra_properties,
            digest.breakdown_property or "x",
        ):
            assert property_reference(accepted)  # raises for what could leave the quoted string


def test_a_created_property_of_255_characters_is_a_property_name() -> None:
    name = "p" * 255
    assert Settings.from_environ({**MINIMAL, "CREATED_PROPERTY": name}).created_property == name


@pytest.mark.parametrize("hours", ["22:00-07:00", "07:00-22:00", "00:00-23:59", "23:59-00:00"])
def test_quiet_hours_may_wrap_midnight(hours: str) -> None:
    quiet = Settings.from_environ({**MINIMAL, "SMS_QUIET_HOURS": hours}).sms_quiet_hours
    assert quiet is not None
    assert f"{quiet.start:%H:%M}-{quiet.end:%H:%M}" == hours


# -- Addresses: email-validator in the function, one coarse pattern in the deploy paths --------------


@pytest.mark.parametrize(
    "address", ["a..b@example.com", ".a@example.com", "a.@example.com", "a@example..com", "a@-example.com"]
)
def test_addresses_sendgrid_would_refuse_are_bad_configuration(address: str) -> None:
    assert error_for({**MINIMAL, **EMAIL, "EMAIL_TO": address}).variable == "EMAIL_TO"
    assert error_for({**MINIMAL, **EMAIL, "EMAIL_FROM": f"Bot <{address}>"}).variable == "EMAIL_FROM"


@given(st.emails())
def test_the_deploy_paths_pattern_never_refuses_an_address_the_function_accepts(address: str) -> None:
    try:
        accepted = Settings.from_environ({**MINIMAL, **EMAIL, "EMAIL_TO": address}).email
    except ConfigError:
        return
    assert accepted is not None
    assert re.search(BY_NAME["EMAIL_TO"].pattern or "", address)
    assert re.search(BY_NAME["EMAIL_FROM"].pattern or "", f"Growth <{address}>")


# -- MIXPANEL_FILTER never widens the query ---------------------------------------------------------

# The filter goes inside parentheses after the window: `<window> and (<filter>)`.
FILTER_TEXT = st.text(alphabet="()[]\"'\\ ortuex=", max_size=30)


def groups_as_one(expression: str, *, escapes: bool) -> bool:
    """Whether `(expression)` is one group: its first parenthesis closes at its last character, with
    every string closed. `escapes`: a backslash escapes the next character inside a string (the other
    reading: it is a character like any other)."""
    wrapped = f"({expression})"
    depth, quote, escaped = 0, "", False
    for position, char in enumerate(wrapped):
        if quote:
            if escaped:
                escaped = False
            elif escapes and char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
            continue
        if char in "\"'":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
            if depth == 0 and position < len(wrapped) - 1:
                return False
    return depth == 0 and not quote


@given(FILTER_TEXT)
def test_a_filter_the_guard_accepts_stays_inside_its_parentheses_however_escapes_are_read(
    expression: str,
) -> None:
    if why_unbalanced(expression) is None:
        assert groups_as_one(expression, escapes=True)
        assert groups_as_one(expression, escapes=False)


@given(FILTER_TEXT)
def test_a_filter_that_would_escape_its_parentheses_is_refused(expression: str) -> None:
    if not (groups_as_one(expression, escapes=True) and groups_as_one(expression, escapes=False)):
        assert why_unbalanced(expression) is not None


@pytest.mark.parametrize(
    "expression",
    [
        'properties["plan"] == "pro"',
        'properties["$country_code"] == "DE" and properties["plan"] in ["pro", "team"]',
        'properties["note"] == "a (b" or properties["note"] == \'c ] d\'',
        '(properties["a"] == \'it"s\') and (true)',
    ],
)
def test_filters_with_brackets_and_quotes_inside_strings_are_accepted(expression: str) -> None:
    assert why_unbalanced(expression) is None
    assert Settings.from_environ({**MINIMAL, "MIXPANEL_FILTER": expression}).mixpanel_filter == expression


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ('properties["plan"] == "pro") or (true', "a ) closes what it did not open"),
        ('properties["plan"] == "pro\\") or (true', "it holds a backslash"),
        ("properties['plan'] == 'pro", "a ' is never closed"),
        ('properties["plan"] == "pro" or (true', "a ( is never closed"),
        ('properties["plan") == "pro"', "a ) closes what it did not open"),
    ],
)
def test_the_guard_says_why_a_filter_does_not_stand_on_its_own(expression: str, reason: str) -> None:
    assert why_unbalanced(expression) == reason
    assert reason in str(error_for({**MINIMAL, "MIXPANEL_FILTER": expression}))


def test_the_function_logs_every_configuration_problem_in_its_one_summary_line(
    environ: dict[str, str], services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    environ.update(SMS_FROM="Notifier", TIMEZONE="Mars/Olympus", EMAIL_TO="growth")
    with caplog.at_level(logging.INFO):
        summary = run_once(environ, services)
    assert summary.outcome == "bad_config"
    (line,) = [record for record in caplog.records if record.levelno >= logging.ERROR]
    fields = line.__dict__["fields"]
    assert fields["variables"] == ["EMAIL_TO", "SMS_FROM", "TIMEZONE"]
    assert all(f"{variable}: " in line.getMessage() for variable in fields["variables"])
    assert "\n" not in line.getMessage()
