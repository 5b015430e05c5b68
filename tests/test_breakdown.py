"""A breakdown (SPEC: What the digest tells): the count per value of one property, most first, the
top 5 then `other N`, `(none)` for a missing or empty value; at the top of the email and in Slack."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from notifier.breakdown import break_down
from notifier.companies import roll_up
from notifier.render.email import render_email
from notifier.render.report import SHOWN_VALUE_CHARS, breakdown_line
from notifier.render.slack import render_slack
from sandbox.slack import payload_problem
from tests.render_helpers import report, user
from tests.test_email_render import tags
from tests.test_slack_render import HOSTILE, texts

SOURCES = ["google", "newsletter", None, "google", "twitter", "newsletter", "google"]


def line(values: list[str | None], name: str = "utm_source") -> str | None:
    return breakdown_line(report([], breakdown=break_down(name, values)))


def test_the_count_per_value_most_first_with_none_for_a_missing_value() -> None:
    assert line(SOURCES) == "By utm_source: google 3, newsletter 2, twitter 1, (none) 1"


def test_an_empty_or_blank_value_counts_as_none() -> None:
    assert line(["", "  ", None, "ads"]) == "By utm_source: (none) 3, ads 1"


def test_ties_read_alphabetically_whatever_the_case_with_none_last() -> None:
    assert line([None, "beta", "Alpha", "gamma"]) == "By utm_source: Alpha 1, beta 1, gamma 1, (none) 1"


def test_past_the_top_5_the_rest_are_counted_as_other() -> None:
    values: list[str | None] = [f"v{n}" for n in range(1, 9) for _ in range(n)]
    assert line(values) == "By utm_source: v8 8, v7 7, v6 6, v5 5, v4 4, other 6"


def test_no_users_no_line() -> None:
    assert line([]) is None
    assert breakdown_line(report([])) is None


@given(
    st.lists(st.sampled_from(["a", "b", "B", "c", "", None, "d", "e", "f", "g"]), max_size=40), st.randoms()
)
def test_the_line_is_the_same_whatever_order_the_users_came_in(
    values: list[str | None], rng: random.Random
) -> None:
    shuffled = list(values)
    rng.shuffle(shuffled)
    assert line(values) == line(shuffled)


@given(st.lists(st.text(max_size=8) | st.none(), max_size=40))
def test_every_user_is_counted_once(values: list[str | None]) -> None:
    tally = break_down("plan", values).tally
    assert sum(count for _value, count in tally.top) + tally.rest_count == len(values)
    counts = [count for _value, count in tally.top]
    assert counts == sorted(counts, reverse=True)


def test_long_values_and_names_are_cut_and_kept_on_one_line() -> None:
    shown = line(["x" * 500, "two\nlines"], name="p" * 300)
    assert shown is not None
    assert "\n" not in shown
    assert shown == f"By {'p' * (SHOWN_VALUE_CHARS - 1)}…: two lines 1, {'x' * (SHOWN_VALUE_CHARS - 1)}… 1"


def test_the_breakdown_is_at_the_top_of_both_email_parts_and_in_slack_context() -> None:
    users = [user(1, "Ada"), user(2, "Bob")]
    digest_report = report(users, breakdown=break_down("utm_source", SOURCES))
    expected = "By utm_source: google 3, newsletter 2, twitter 1, (none) 1"
    digest = render_email(digest_report, row_limit=500)
    for part in (digest.html, digest.text):
        assert part.index("28 Nov 2026") < part.index(expected) < part.index("Ada")
    context = render_slack(digest_report, email_on=True)["blocks"][1]["elements"]
    assert expected in [element["text"] for element in context]


def test_values_are_escaped_in_the_email_and_in_slack() -> None:
    hostile = ["<script>alert(1)</script>", "<!channel>", "<https://evil.example|Click>", "a & b"]
    digest_report = report([user(1)], breakdown=break_down("<b>src</b>", hostile))
    html = render_email(digest_report, row_limit=500).html
    assert "<script>" not in html
    assert "<b>src</b>" not in html
    assert "By &lt;b&gt;src&lt;/b&gt;: &lt;!channel&gt; 1" in html
    [context] = [
        block for block in render_slack(digest_report, email_on=True)["blocks"] if block["type"] == "context"
    ]
    said = context["elements"][-1]["text"]
    assert said.startswith(
        "By &lt;b&gt;src&lt;/b&gt;: &lt;!channel&gt; 1, &lt;https://evil.example|Click&gt; 1"
    )
    assert "<" not in said
    assert ">" not in said


@given(
    st.text(max_size=300), st.lists(st.sampled_from(HOSTILE) | st.text(max_size=300), min_size=1, max_size=12)
)
def test_no_value_or_property_name_adds_a_tag_or_breaks_slack(name: str, values: list[str]) -> None:
    users = [user(n, email=f"u{n}@company{n}.com") for n in range(8)]
    companies = roll_up(u.email for u in users)
    digest_report = report(users, breakdown=break_down(name, values), companies=companies)
    plain = render_email(report(users, breakdown=break_down("p", ["a"]), companies=companies), row_limit=500)
    assert tags(render_email(digest_report, row_limit=500).html).tags == tags(plain.html).tags
    payload = render_slack(digest_report, email_on=True)
    assert payload_problem(payload) is None
    assert not any("<" in text or ">" in text for text in texts(payload))
