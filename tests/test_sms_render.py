"""The SMS: always one GSM-7 segment, the project when it fits, no tappable names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.mixpanel import NewUser
from notifier.render.gsm7 import BASIC, SEGMENT_SEPTETS, septets, to_gsm7
from notifier.render.report import Report
from notifier.render.sms import DIALLABLE_DIGITS, render_sms
from notifier.span import Span
from tests.render_helpers import BERLIN, UTC_ZONE, WINDOW, report, user


def test_the_sms_names_the_project_the_count_the_window_and_the_first_names() -> None:
    body = render_sms(report([user(1, "Ada"), user(2, "Bob")], BERLIN, label="Acme iOS"))
    assert body == "Acme iOS: 2 new users 28 Nov 09:00-10:00 CET: Ada, Bob"


def test_a_label_too_long_for_the_segment_gives_way() -> None:
    body = render_sms(report([user(1, "Ada")], label="L" * 60 + " " + "M" * 55))
    assert body == "Mixpanel: 1 new user 28 Nov 08:00-09:00 UTC: Ada"


def test_the_sms_says_how_many_did_not_fit() -> None:
    body = render_sms(report([user(n, f"Person Number {n}") for n in range(50)]))
    shown = body.split(": ", 2)[2].rsplit(" +", 1)[0].split(", ")
    assert body.endswith(f" +{50 - len(shown)} more")
    assert septets(body) <= SEGMENT_SEPTETS


def test_the_sms_for_an_empty_window() -> None:
    assert render_sms(report([])) == "Mixpanel: no new users 28 Nov 08:00-09:00 UTC"


def test_non_gsm_names_are_transliterated_or_dropped() -> None:
    assert to_gsm7("Zoë Łukasz Ångström Müller") == "Zoe Lukasz Ångström Müller"
    assert to_gsm7("Ħana 🎉 李雷") == "Hana"
    assert to_gsm7("Line\nbreak\tname") == "Line break name"
    assert to_gsm7("{[ok]}") == "ok"


names = st.text(alphabet=st.sampled_from("aZ ,é€{}[]~\n\r\x1b") | st.characters(), max_size=80)


@given(
    st.lists(names, max_size=60),
    st.sampled_from(["UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns"]),
    st.text(max_size=70),
)
def test_the_sms_is_always_one_gsm7_segment(names_list: list[str], zone: str, label: str) -> None:
    users = [user(n, name) for n, name in enumerate(names_list)]
    body = render_sms(Report(users, WINDOW, ZoneInfo(zone), label=label or "Acme"))
    assert septets(body) <= SEGMENT_SEPTETS
    assert set(body) <= BASIC
    assert "\n" not in body
    assert f"{len(names_list)} new user" in body if names_list else "no new users" in body


@given(st.integers(min_value=0, max_value=100_000), st.text(max_size=300))
def test_the_sms_fits_for_any_count_up_to_100000_and_very_long_names(count: int, name: str) -> None:
    many = [NewUser(str(n), name, "", WINDOW.start_at) for n in range(min(count, 30))]
    padded = many + [NewUser("x", name, "", WINDOW.start_at)] * (count - len(many))
    body = render_sms(
        Report(padded, Span.between(WINDOW.start_at, WINDOW.start_at + timedelta(days=31)), UTC_ZONE)
    )
    assert septets(body) <= SEGMENT_SEPTETS
    if count:
        assert f"{count:,} new user" in body


def test_emoji_and_cjk_names_still_fit_and_are_counted() -> None:
    body = render_sms(report([user(n, "🎉" * 50 + "李" * 50) for n in range(1000)]))
    assert body == "Mixpanel: 1,000 new users 28 Nov 08:00-09:00 UTC"


@pytest.mark.parametrize("name", ["Reset at evil.com", "https://evil.example/x", "www.evil.co"])
def test_a_name_cannot_become_a_link_in_the_sms(name: str) -> None:
    body = render_sms(report([user(1, name)]))
    assert not re.search(r"\w\.\w|://", body.split(": ", 2)[2])


def test_ordinary_names_keep_their_dots_and_spaces() -> None:
    assert render_sms(report([user(1, "Dr. Ada  Lovelace")])).endswith(": Dr. Ada Lovelace")


def test_a_window_across_midnight_names_both_days() -> None:
    window = Span.between(
        datetime(2026, 11, 27, 22, 0, tzinfo=UTC), datetime(2026, 11, 28, 22, 0, tzinfo=UTC)
    )
    assert render_sms(Report([], window, UTC_ZONE)) == "Mixpanel: no new users 27 Nov 22:00-28 Nov 22:00 UTC"


@pytest.mark.parametrize(
    "name",
    [
        "Call +1 415 555 0100 now",
        "(415) 555-0100",
        "+44 7700 900123",
        "４１５５５５０１００",
        "dial *21*4155550100#",
        "tel:+14155550100",
    ],
)
def test_a_name_cannot_carry_a_number_to_call_in_the_sms(name: str) -> None:
    body = render_sms(report([user(1, name), user(2, "Ada")], label="Acme"))
    assert not re.search(r"\d", names_part(body))


@given(
    st.lists(
        st.text(alphabet=st.characters(codec="ascii") | st.sampled_from("４１５"), max_size=40),
        min_size=1,
        max_size=12,
    )
)
def test_no_name_puts_a_number_or_a_link_in_the_sms(names_list: list[str]) -> None:
    body = render_sms(report([user(n, name) for n, name in enumerate(names_list)], label="Acme"))
    for name in names_part(body).split(", "):
        assert len(re.findall(r"\d", name)) < DIALLABLE_DIGITS, name
        assert not re.search(r"://|\w\.\w", name)


def test_names_keep_their_words_and_a_short_number_when_a_phone_number_goes() -> None:
    assert render_sms(report([user(1, "Call +1 415 555 0100 now")])).endswith(": Call now")
    assert render_sms(report([user(1, "Agent 47"), user(2, "Dial 911")])).endswith(": Agent 47, Dial")


def names_part(body: str) -> str:
    """The names an SMS lists, without its own head and its "+N more"."""
    head, _, names = body.partition("UTC: ")
    assert head.startswith("Acme: ")
    return re.sub(r" \+[\d,]+ more$", "", names)
