"""The CSV attachment: everyone, formula-safe, extra columns, zipped when large, valid UTF-8."""

from __future__ import annotations

import csv
import io
import sys
import unicodedata
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.mixpanel import NewUser
from notifier.render.csv import neutralise_cell, render_csv
from notifier.render.email import render_email
from tests.render_helpers import BERLIN, UTC_ZONE, WINDOW, report, user


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


FORMULAS = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"]
# Spreadsheets that trim leading blanks would still run these.
BEHIND_BLANKS = [" =1+1", "  @SUM(A1)", "\u00a0=1", "\n=1", " \t=1"]


@pytest.mark.parametrize("value", FORMULAS + BEHIND_BLANKS)
def test_formula_like_cells_are_neutralised(value: str) -> None:
    assert neutralise_cell(value) == "'" + value
    rows = csv_rows(
        render_csv(
            report([NewUser(value, value, value, WINDOW.start_at, (value,))], extra_properties=(value,))
        )
    )
    assert rows[0][6].startswith("'")
    assert all(cell.startswith("'") for cell in (rows[1][0], rows[1][1], rows[1][4], rows[1][6]))


# Every kind of space, line break and invisible formatting character Unicode has.
BLANKS = [
    chr(code)
    for code in range(sys.maxunicode + 1)
    if unicodedata.category(chr(code)) in {"Zs", "Zl", "Zp", "Cc", "Cf"}
]


@pytest.mark.parametrize("blank", ["\u2003", "\u2002", "\u2009", "\u200b", "\ufeff", "\u2028", "\u3000"])
def test_a_formula_behind_any_unicode_space_is_neutralised(blank: str) -> None:
    assert neutralise_cell(f'{blank}=HYPERLINK("http://evil.example")').startswith("'")


@given(
    st.text(alphabet=st.sampled_from(BLANKS), max_size=4),
    st.sampled_from("=+-@＝＋－＠﹦"),
    st.text(max_size=10),
)
def test_no_blank_before_a_formula_sign_hides_it(blanks: str, sign: str, rest: str) -> None:
    assert neutralise_cell(blanks + sign + rest) == "'" + blanks + sign + rest


def test_plain_cells_are_left_alone() -> None:
    assert neutralise_cell("Ada") == "Ada"
    assert neutralise_cell("a-b") == "a-b"
    assert neutralise_cell(" Ada = Lovelace") == " Ada = Lovelace"


def test_columns_are_named_after_the_extra_properties_and_late_users_are_marked() -> None:
    rows = csv_rows(
        render_csv(
            report(
                [user(61, extra=("pro", "google"), late=True)],
                BERLIN,
                extra_properties=("plan", "utm_source"),
            )
        )
    )
    assert rows[0] == [
        "name",
        "email",
        "created (Europe/Berlin)",
        "created (UTC)",
        "distinct_id",
        "arrived_late",
        "plan",
        "utm_source",
    ]
    assert rows[1][2:] == ["2026-11-28 09:01:01", "2026-11-28T08:01:01Z", "id-61", "yes", "pro", "google"]


def test_a_lone_surrogate_in_a_name_cannot_stop_the_csv() -> None:
    # What half an emoji looks like if it ever got this far (mixpanel.py repairs it where it enters).
    rows = csv_rows(render_csv(report([user(1, "Ada \ud83d")])))
    assert rows[1][0].startswith("Ada ")


def test_past_the_zip_threshold_the_csv_travels_zipped_with_everyone() -> None:
    users = [user(n, "=cmd|' /C calc'!A0" if n == 3 else "") for n in range(30)]
    digest = render_email(report(users), row_limit=5, zip_above_rows=20)
    assert digest.attachment is not None
    assert digest.attachment.mime_type == "application/zip"
    assert digest.attachment.filename == "new-users-20261128T0800Z-20261128T0900Z.csv.zip"
    assert digest.attachment.filename in digest.html  # the note names the file that is attached
    assert digest.attachment.filename in digest.text
    with zipfile.ZipFile(io.BytesIO(digest.attachment.content)) as archive:
        (member,) = archive.infolist()
        assert member.filename == "new-users-20261128T0800Z-20261128T0900Z.csv"
        rows = csv_rows(archive.read(member))
    assert len(rows) == 31
    assert {row[4] for row in rows[1:]} == {f"id-{n}" for n in range(30)}
    assert rows[4][0] == "'=cmd|' /C calc'!A0"


def test_at_the_zip_threshold_the_csv_is_plain() -> None:
    digest = render_email(report([user(n) for n in range(20)], UTC_ZONE), row_limit=5, zip_above_rows=20)
    assert digest.attachment is not None
    assert digest.attachment.mime_type == "text/csv"
