"""The email as rendered (SPEC: What is sent; issue: a digest people want to read), before any browser."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st

from notifier.breakdown import break_down
from notifier.companies import roll_up
from notifier.mixpanel import NewUser
from notifier.render.email import HTML_BUDGET, email_subject, render_email
from notifier.render.report import Catchup
from tests.render_helpers import BERLIN, UTC_ZONE, WINDOW, report, user


class Tags(HTMLParser):
    """The tags and link targets a page holds."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs += [value or "" for name, value in attrs if name == "href"]


def tags(html: str) -> Tags:
    parser = Tags()
    parser.feed(html)
    return parser


def test_the_subject_names_the_project_the_count_and_the_window_and_no_user() -> None:
    digest = render_email(
        report([user(1, "Mallory Subject-Injector")], BERLIN, label="Acme iOS"), row_limit=500
    )
    assert digest.subject == "Acme iOS: 1 new user, 28 Nov 2026, 09:00–10:00 CET"
    assert email_subject(report([user(n) for n in range(1234)])) == (
        "Mixpanel: 1,234 new users, 28 Nov 2026, 08:00–09:00 UTC"
    )


@given(st.lists(st.text(max_size=20), max_size=5))
def test_names_never_reach_the_subject(names: list[str]) -> None:
    subject = render_email(
        report([user(n, f"zq{name}") for n, name in enumerate(names)]), row_limit=500
    ).subject
    assert "zq" not in subject


@given(
    name=st.text(max_size=60),
    email=st.text(max_size=40),
    extra=st.text(max_size=40),
    distinct_id=st.text(min_size=1, max_size=30),
)
def test_no_value_from_mixpanel_can_add_a_tag_or_a_link(
    name: str, email: str, extra: str, distinct_id: str
) -> None:
    hostile = NewUser(distinct_id, name, email, WINDOW.start_at, (extra,))
    plain = render_email(report([hostile], extra_properties=("plan",)), row_limit=500).html
    linked = render_email(
        report(
            [hostile], extra_properties=("plan",), profile_url_template="https://a.example/u/{distinct_id}"
        ),
        row_limit=500,
    ).html
    assert tags(plain).tags == tags(render_email(report([user(1)]), row_limit=500).html).tags
    assert all(href.startswith("https://a.example/u/") for href in tags(linked).hrefs)
    assert "javascript:" not in " ".join(tags(linked).hrefs).lower()
    plain.encode("utf-8")  # valid UTF-8, whatever came in


def test_each_user_shows_name_email_time_and_extras_in_both_parts_in_the_same_order() -> None:
    users = [user(1, "Ada", extra=("free",)), user(2, "Bob", extra=("pro",))]
    digest = render_email(report(users, BERLIN, extra_properties=("plan",)), row_limit=500)
    for part in (digest.html, digest.text):
        assert part.index("Ada") < part.index("Bob")
        assert "user1@example.com" in part
        assert "09:00" in part
        assert "plan: free" in part
    assert digest.attachment is None


def test_the_top_carries_the_label_count_window_missed_time_trend_and_late_users_in_both_parts() -> None:
    users = [user(1, "Ada", late=True), user(2, "Bob")]
    catchup = Catchup(WINDOW.start_at.replace(hour=6), 7200)
    digest = render_email(
        report(users, BERLIN, label="Acme iOS", catchup=catchup, previous_users=1, window_users=1),
        row_limit=500,
    )
    said = ["Acme iOS", "2 new users", "28 Nov 2026, 09:00–10:00 CET", "including 2 h missed since 07:00"]
    said += ["as many as the hour before", "1 arrived late"]
    for part in (digest.html, digest.text):
        positions = [part.index(text) for text in said]
        assert positions == sorted(positions)
        assert positions[-1] < part.index("Ada")


def test_users_without_a_name_or_email_are_shown_as_such() -> None:
    digest = render_email(report([NewUser("x", "", "", WINDOW.start_at)]), row_limit=500)
    assert "(no name)" in digest.html
    assert "no email" in digest.html
    assert "- (no name), " in digest.text  # no "<no email>" dressed as an address
    assert "<" not in digest.text.split("- (no name)")[1].splitlines()[0]


def test_past_the_row_limit_the_note_comes_first_and_the_csv_has_everyone() -> None:
    users = [user(n) for n in range(12)]
    digest = render_email(report(users), row_limit=5)
    assert digest.html.count('class="u"') == 5
    for part in (digest.html, digest.text):
        assert "Showing the first 5 of 12" in part
        assert "new-users-20261128T0800Z-20261128T0900Z.csv" in part
        assert part.index("Showing the first") < part.index("User 0")
        assert "User 4" in part
        assert "User 5" not in part
    assert digest.attachment is not None


def test_the_html_stays_under_the_budget_with_5000_users_with_200_character_names_and_every_line() -> None:
    users = [user(n, "Ж" * 200, f"{'x' * 60}{n}@example.com", extra=("y" * 100,)) for n in range(5000)]
    digest = render_email(
        report(
            users,
            extra_properties=("plan",),
            profile_url_template="https://a.example/u/{distinct_id}",
            breakdown=break_down("utm_source", ["&" * 200 + str(n % 9) for n in range(5000)]),
            companies=roll_up(f"u@{n % 9}{'x' * 60}.com" for n in range(5000)),
        ),
        row_limit=10_000,
    )
    assert len(digest.html.encode()) <= HTML_BUDGET
    assert "By utm_source: &amp;&amp;" in digest.html
    assert "and 4 more" in digest.html
    listed = len(re.findall(r'class="u"', digest.html))
    assert 0 < listed < 5000
    assert f"Showing the first {listed:,} of 5,000 (all an email can hold" in digest.html
    assert digest.html.count("user-row") == 0


def test_the_footer_says_why_you_get_this_and_what_changes_the_recipients() -> None:
    digest = render_email(report([user(1)], label="Acme iOS"), row_limit=500)
    for part in (digest.html, digest.text):
        assert "EMAIL_TO" in part
        assert "Acme iOS" in part
    assert "$created" not in digest.html


def test_an_empty_window_says_so() -> None:
    digest = render_email(report([], UTC_ZONE), row_limit=500)
    assert "No new users" in digest.html
    assert digest.subject.startswith("Mixpanel: No new users")
