"""Rendering (SPEC: What is sent): subject, escaped HTML, text, CSV past the limit, one-segment SMS."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.digest import (
    Report,
    describe_window,
    email_subject,
    neutralise_cell,
    render_csv,
    render_email,
    render_sms,
    sort_users,
)
from notifier.mixpanel import NewUser
from notifier.sms_text import BASIC, SEGMENT_SEPTETS, septets, to_gsm7
from notifier.trigger import Window
from tests.conftest import WINDOW_END, WINDOW_START

WINDOW = Window(WINDOW_START, WINDOW_END)
UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def user(n: int, name: str = "", email: str = "") -> NewUser:
    return NewUser(
        f"id-{n}", name or f"User {n}", email or f"user{n}@example.com", WINDOW_START + timedelta(seconds=n)
    )


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_html_escapes_a_script_name_and_email() -> None:
    digest = render_email(
        Report([user(1, "<script>alert(1)</script>", 'x@y.com"><img src=x>')], WINDOW, UTC_ZONE),
        row_limit=500,
    )
    assert "<script>" not in digest.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in digest.html
    assert "<img" not in digest.html


@given(st.text(min_size=1, max_size=40))
def test_no_name_can_open_a_tag_in_the_html(name: str) -> None:
    html = render_email(Report([user(1, name)], WINDOW, UTC_ZONE), row_limit=500).html
    cell = re.search(r"<tr style=\"border-bottom: 1px solid #eaeef2;\"><td>(.*?)</td>", html, re.S)
    assert cell is not None
    assert "<" not in cell.group(1)
    assert ">" not in cell.group(1)


def test_the_subject_names_the_count_and_the_window_in_the_time_zone_and_no_user() -> None:
    users = [user(1, "Mallory Subject-Injector")]
    subject = render_email(Report(users, WINDOW, BERLIN), row_limit=500).subject
    assert subject == "1 new Mixpanel user, 28 Nov 2026 09:00–10:00 CET"
    assert "Mallory" not in subject
    assert email_subject(1234, WINDOW, UTC_ZONE) == "1,234 new Mixpanel users, 28 Nov 2026 08:00–09:00 UTC"


@given(st.lists(st.text(max_size=20), max_size=5))
def test_names_never_reach_the_subject(names: list[str]) -> None:
    users = [user(n, f"zq{name}") for n, name in enumerate(names)]
    subject = render_email(Report(users, WINDOW, UTC_ZONE), row_limit=500).subject
    assert "zq" not in subject


def test_both_parts_list_every_user_with_name_email_and_local_created_time() -> None:
    users = sort_users([user(2, "Bob"), user(1, "Ada")])
    digest = render_email(Report(users, WINDOW, BERLIN), row_limit=500)
    for part in (digest.html, digest.text):
        assert part.index("Ada") < part.index("Bob")
        assert "user1@example.com" in part
        assert "2026-11-28 09:00:01 CET" in part
    assert digest.attachment is None


def test_users_without_a_name_or_email_are_shown_as_such() -> None:
    nameless = NewUser("x", "", "", WINDOW_START)
    digest = render_email(Report([nameless], WINDOW, UTC_ZONE), row_limit=500)
    assert "(no name)" in digest.html
    assert "(no email)" in digest.html


def test_past_the_row_limit_the_body_is_cut_and_the_csv_has_everyone() -> None:
    users = [user(n, f'=HYPERLINK("http://evil/{n}")' if n == 7 else "") for n in range(12)]
    digest = render_email(Report(users, WINDOW, UTC_ZONE), row_limit=5)
    assert "User 4" in digest.html
    assert "User 5" not in digest.html
    assert "and 7 more" in digest.html
    assert "and 7 more" in digest.text
    assert digest.attachment is not None
    assert digest.attachment.filename == "new-users-20261128T0800Z-20261128T0900Z.csv"
    rows = csv_rows(digest.attachment.content)
    assert len(rows) == 13
    assert {row[4] for row in rows[1:]} == {f"id-{n}" for n in range(12)}
    assert rows[8][0] == '\'=HYPERLINK("http://evil/7")'


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_formula_like_cells_are_neutralised(value: str) -> None:
    assert neutralise_cell(value) == "'" + value
    rows = csv_rows(render_csv([NewUser(value, value, value, WINDOW_START)], UTC_ZONE))
    assert rows[1][0].startswith("'")
    assert rows[1][1].startswith("'")
    assert rows[1][4].startswith("'")


def test_plain_cells_are_left_alone() -> None:
    assert neutralise_cell("Ada") == "Ada"
    assert neutralise_cell("a-b") == "a-b"


def test_the_sms_names_the_count_the_window_and_the_first_names() -> None:
    body = render_sms(Report([user(1, "Ada"), user(2, "Bob")], WINDOW, BERLIN))
    assert body == "Mixpanel: 2 new users 28 Nov 09:00-10:00 CET: Ada, Bob"


def test_the_sms_says_how_many_did_not_fit() -> None:
    users = [user(n, f"Person Number {n}") for n in range(50)]
    body = render_sms(Report(users, WINDOW, UTC_ZONE))
    shown = body.split(": ", 2)[2].rsplit(" +", 1)[0].split(", ")
    assert body.endswith(f" +{50 - len(shown)} more")
    assert septets(body) <= SEGMENT_SEPTETS


def test_the_sms_for_an_empty_window() -> None:
    assert render_sms(Report([], WINDOW, UTC_ZONE)) == "Mixpanel: no new users 28 Nov 08:00-09:00 UTC"


def test_non_gsm_names_are_transliterated_or_dropped() -> None:
    assert to_gsm7("Zoë Łukasz Ångström Müller") == "Zoe Lukasz Ångström Müller"
    assert to_gsm7("Ħana 🎉 李雷") == "Hana"
    assert to_gsm7("Line\nbreak\tname") == "Line break name"
    assert to_gsm7("{[ok]}") == "ok"


names = st.text(alphabet=st.sampled_from("aZ ,é€{}[]~\n\r\x1b") | st.characters(), max_size=80)


@given(
    st.lists(names, max_size=60),
    st.sampled_from(["UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns"]),
)
def test_the_sms_is_always_one_gsm7_segment(names_list: list[str], zone: str) -> None:
    body = render_sms(Report([user(n, name) for n, name in enumerate(names_list)], WINDOW, ZoneInfo(zone)))
    assert septets(body) <= SEGMENT_SEPTETS
    assert set(body) <= BASIC
    assert "\n" not in body
    assert body.startswith(
        f"Mixpanel: {len(names_list)} new user" if names_list else "Mixpanel: no new users"
    )


@given(st.integers(min_value=0, max_value=100_000), st.text(max_size=300))
def test_the_sms_fits_for_any_count_up_to_100000_and_very_long_names(count: int, name: str) -> None:
    many = [NewUser(str(n), name, "", WINDOW_START) for n in range(min(count, 30))]
    # The count in the header is what grows with the window; the list only needs its first entries.
    padded = many + [NewUser("x", name, "", WINDOW_START)] * (count - len(many))
    body = render_sms(Report(padded, Window(WINDOW_START, WINDOW_START + timedelta(days=31)), UTC_ZONE))
    assert septets(body) <= SEGMENT_SEPTETS
    if count:
        assert f"{count} new user" in body


def test_emoji_and_cjk_names_still_fit_and_are_counted() -> None:
    users = [user(n, "🎉" * 50 + "李" * 50) for n in range(1000)]
    body = render_sms(Report(users, WINDOW, UTC_ZONE))
    assert body == "Mixpanel: 1000 new users 28 Nov 08:00-09:00 UTC"


def test_users_sort_by_created_then_id() -> None:
    a = NewUser("b", "", "", datetime(2026, 1, 1, tzinfo=UTC))
    b = NewUser("a", "", "", datetime(2026, 1, 1, tzinfo=UTC))
    c = NewUser("c", "", "", datetime(2025, 1, 1, tzinfo=UTC))
    assert sort_users([a, b, c]) == [c, b, a]


def test_past_the_zip_threshold_the_csv_travels_zipped_with_everyone() -> None:
    users = [user(n, "=cmd|' /C calc'!A0" if n == 3 else "") for n in range(30)]
    digest = render_email(Report(users, WINDOW, BERLIN), row_limit=5, zip_above_rows=20)
    assert digest.attachment is not None
    assert digest.attachment.filename == "new-users-20261128T0800Z-20261128T0900Z.csv.zip"
    assert digest.attachment.mime_type == "application/zip"
    assert "new-users-20261128T0800Z-20261128T0900Z.csv.zip" in digest.html
    with zipfile.ZipFile(io.BytesIO(digest.attachment.content)) as archive:
        (member,) = archive.infolist()
        assert member.filename == "new-users-20261128T0800Z-20261128T0900Z.csv"
        rows = csv_rows(archive.read(member))
    assert len(rows) == 31
    assert {row[4] for row in rows[1:]} == {f"id-{n}" for n in range(30)}
    assert rows[4][0] == "'=cmd|' /C calc'!A0"


def test_at_the_zip_threshold_the_csv_is_plain() -> None:
    digest = render_email(
        Report([user(n) for n in range(20)], WINDOW, UTC_ZONE), row_limit=5, zip_above_rows=20
    )
    assert digest.attachment is not None
    assert digest.attachment.mime_type == "text/csv"


def test_csv_times_are_local_and_utc() -> None:
    rows = csv_rows(render_csv([user(61)], BERLIN))
    assert rows[0][2:4] == ["created (Europe/Berlin)", "created (UTC)"]
    assert rows[1][2:4] == ["2026-11-28 09:01:01", "2026-11-28T08:01:01Z"]


@pytest.mark.parametrize("name", ["Reset at evil.com", "https://evil.example/x", "www.evil.co"])
def test_a_name_cannot_become_a_link_in_the_sms(name: str) -> None:
    body = render_sms(Report([user(1, name)], WINDOW, UTC_ZONE))
    assert not re.search(r"\w\.\w|://", body.split(": ", 2)[2])


def test_ordinary_names_keep_their_dots_and_spaces() -> None:
    assert render_sms(Report([user(1, "Dr. Ada  Lovelace")], WINDOW, UTC_ZONE)).endswith(": Dr. Ada Lovelace")


def test_a_window_across_midnight_names_both_days() -> None:
    window = Window(datetime(2026, 11, 27, 22, 0, tzinfo=UTC), datetime(2026, 11, 28, 22, 0, tzinfo=UTC))
    assert describe_window(window, UTC_ZONE) == "27 Nov 2026 22:00 – 28 Nov 2026 22:00 UTC"
    assert describe_window(window, UTC_ZONE, short=True) == "27 Nov 22:00-28 Nov 22:00 UTC"
    assert render_sms(Report([], window, UTC_ZONE)) == "Mixpanel: no new users 27 Nov 22:00-28 Nov 22:00 UTC"
