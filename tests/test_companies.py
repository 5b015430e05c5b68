"""Companies (SPEC: What the digest tells): work addresses roll up by registered domain, most first;
free-mail, disposable and reserved domains name no company; at the top of the email and in Slack."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.companies import company_domain, roll_up
from notifier.render.email import render_email
from notifier.render.report import companies_line
from notifier.render.slack import render_slack
from notifier.tally import Tally
from tests.render_helpers import report, user

HOST = re.compile(r"[^\W_](?:(?:[^\W_]|-)*[^\W_])?(?:\.[^\W_](?:(?:[^\W_]|-)*[^\W_])?)+")


@pytest.mark.parametrize(
    ("email", "company"),
    [
        ("ada@acme.com", "acme.com"),
        ("ivy@eng.acme.com", "acme.com"),  # a subdomain counts as its registered domain
        ("bob@mail.eu.globex.io", "globex.io"),
        ("peter@initech.co.uk", "initech.co.uk"),  # the public-suffix list keeps co.uk whole
        ("li@sales.initech.co.uk", "initech.co.uk"),
        ("KIM@ACME.COM.", "acme.com"),  # case and a trailing dot do not make another company
        ("jo@bücher.de", "bücher.de"),
        ("li@eng.acme.中国", "acme.中国"),
        ("li@eng.acme.xn--fiqs8s", "acme.中国"),  # the same top-level domain, in punycode
        ("wu@shop.acme.xn--55qx5d.cn", "acme.公司.cn"),  # a public suffix in punycode
    ],
)
def test_a_work_address_counts_as_its_registered_domain(email: str, company: str) -> None:
    assert company_domain(email) == company


def test_one_company_is_counted_once_however_its_domain_is_spelled() -> None:
    spellings = ["a@münchen.de", "b@xn--mnchen-3ya.de", "c@XN--MNCHEN-3YA.DE", "d@ＭÜＮＣＨＥＮ.de"]
    assert roll_up(spellings) == Tally(top=(("münchen.de", 4),), rest_values=0, rest_count=0)
    full_width = roll_up(["a@acme.com", "b@ａｃｍｅ.com"])
    assert full_width == Tally(top=(("acme.com", 2),), rest_values=0, rest_count=0)


@pytest.mark.parametrize("email", ["a@b@acme.com", "@acme.com", "a@xn--zz.com", "a@acme..com"])
def test_what_is_not_an_address_names_no_company(email: str) -> None:
    assert company_domain(email) is None


@pytest.mark.parametrize(
    "email",
    [
        "a@gmail.com",
        "a@googlemail.com",
        "a@outlook.com",
        "a@hotmail.co.uk",
        "a@yahoo.com",
        "a@icloud.com",
        "a@proton.me",
        "a@gmx.de",
        "a@qq.com",
    ],
)
def test_free_mail_names_no_company(email: str) -> None:
    assert company_domain(email) is None


@pytest.mark.parametrize("email", ["a@mailinator.com", "a@guerrillamail.com", "a@10minutemail.com"])
def test_disposable_addresses_name_no_company(email: str) -> None:
    assert company_domain(email) is None


@pytest.mark.parametrize(
    "email",
    [
        "a@example.com",
        "a@eng.example.org",
        "a@example.net",
        "a@acme.test",
        "a@acme.invalid",
        "a@acme.example",
        "a@localhost",
        "a@box.localhost",
        "a@printer.local",
        "a@acme.internal",
        "a@router.home.arpa",
        "a@acme.corp",  # a top-level domain the public-suffix list does not know
    ],
)
def test_reserved_domains_name_no_company(email: str) -> None:
    assert company_domain(email) is None


@pytest.mark.parametrize(
    "email", ["", "ada", "@acme.com", "ada@", "ada@com", "ada@co.uk", "ada@10.0.0.1", "Ada <ada@acme.com>"]
)
def test_what_is_not_an_address_at_a_host_names_no_company(email: str) -> None:
    assert company_domain(email) is None


@given(st.text(max_size=60))
def test_a_company_is_always_a_plain_host_name(email: str) -> None:
    company = company_domain(email)
    assert company is None or HOST.fullmatch(company)


def test_companies_count_most_first_then_alphabetically() -> None:
    emails = ["a@globex.io", "b@acme.com", "c@eng.acme.com", "d@initech.co.uk", "e@gmail.com", "f@acme.com"]
    assert roll_up(emails) == Tally((("acme.com", 3), ("globex.io", 1), ("initech.co.uk", 1)))


def test_nobody_with_a_company_address_is_no_companies() -> None:
    assert roll_up(["a@gmail.com", "b@example.com", ""]) is None
    assert roll_up([]) is None


def test_the_line_names_the_top_5_and_how_many_more_companies() -> None:
    emails = [f"u{n}@company{n}.com" for n in range(1, 9) for _ in range(n)]
    line = companies_line(report([], companies=roll_up(emails)))
    assert line == (
        "Companies: company8.com 8, company7.com 7, company6.com 6, company5.com 5, company4.com 4 and 3 more"
    )
    assert companies_line(report([], companies=roll_up(["a@acme.com", "b@acme.com", "c@globex.io"]))) == (
        "Companies: acme.com 2, globex.io 1"
    )


def test_without_companies_no_line_is_shown_anywhere() -> None:
    plain = report([user(1, email="ada@gmail.com")], companies=None)
    digest = render_email(plain, row_limit=500)
    assert "Companies" not in digest.html
    assert "Companies" not in digest.text
    assert "Companies" not in str(render_slack(plain, email_on=True))


def test_companies_are_at_the_top_of_both_email_parts_and_in_slack() -> None:
    users = [
        user(1, "Ada", "ada@acme.com"),
        user(2, "Bob", "bob@eng.acme.com"),
        user(3, "Cy", "cy@globex.io"),
    ]
    digest_report = report(users, label="Acme iOS", companies=roll_up(u.email for u in users))
    digest = render_email(digest_report, row_limit=500)
    for part in (digest.html, digest.text):
        assert (
            part.index("28 Nov 2026") < part.index("Companies: acme.com 2, globex.io 1") < part.index("Ada")
        )
    context = render_slack(digest_report, email_on=True)["blocks"][1]["elements"]
    assert "Companies: acme.com 2, globex.io 1" in [element["text"] for element in context]
