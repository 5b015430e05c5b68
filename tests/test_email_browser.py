"""The email as a person sees it, in headless Chromium (SPEC: What is sent, "Email layout"; issue 10).

Each test renders with `render_email`, loads the HTML into a real browser at a phone's or a desktop's
size (sandbox/browser.py) and measures what is on screen: nothing wider than the screen, no user's
text cut off, a centred column, the note above the list, colours that read in light and dark mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.breakdown import break_down
from notifier.companies import roll_up
from notifier.render.email import HTML_BUDGET, render_email
from notifier.render.report import Catchup, Report
from sandbox.browser import DESKTOP, INSTALL_HINT, PHONE, Chromium, Viewport, chromium_path
from tests.render_helpers import BERLIN, WINDOW, report, user

NARROW_WINDOW = replace(PHONE, mobile=False)  # a 390 px desktop window or webmail pane: no viewport meta
EXTRAS = ("plan", "utm_source", "utm_campaign", "company", "x" * 120)  # five, one name unbroken
PROFILE = "https://admin.example.com/users/{distinct_id}"
MIN_CONTRAST = 4.5  # WCAG AA for body text

# Runs in the page: where each user's block and text sit, the column, the note, and the colours of
# the lines a reader needs. Text extents come from Range rects, so a word running out of its box or
# off the screen is seen even where the box itself fits.
MEASURE = """(() => {
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top};
  };
  const textSpan = (el) => {
    let left = Infinity, right = -Infinity;
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      range.selectNodeContents(node);
      for (const r of range.getClientRects()) {
        if (r.width > 0) { left = Math.min(left, r.left); right = Math.max(right, r.right); }
      }
    }
    return {left, right};
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const colour = getComputedStyle(e).backgroundColor;
      if (colour !== "transparent" && !/^rgba\\(.*, 0\\)$/.test(colour)) return colour;
    }
    return "rgb(255, 255, 255)";
  };
  const colours = (el) => el && {text: getComputedStyle(el).color, background: background(el)};
  const card = document.querySelector("table.card");
  const note = document.querySelector("p.note");
  const users = [...document.querySelectorAll("td.u")].map((u) => ({
    ...box(u), text: textSpan(u), scrollWidth: u.scrollWidth, clientWidth: u.clientWidth,
  }));
  const first = document.querySelector("td.u");
  return {
    viewport: document.documentElement.clientWidth,
    scrollWidth: document.documentElement.scrollWidth,
    page: textSpan(card),
    card: box(card),
    note: note && box(note),
    users,
    dark: matchMedia("(prefers-color-scheme: dark)").matches,
    lines: {
      label: colours(document.querySelector("p.label")),
      count: colours(document.querySelector("p.count")),
      window: colours(document.querySelector("p.when")),
      breakdown: colours(document.querySelector("p.tally")),
      companies: colours(document.querySelector("p.tally:last-of-type")),
      note: colours(note),
      name: colours(first && first.querySelector("b")),
      link: colours(first && first.querySelector("a")),
      user: colours(first && first.querySelector("span.m")),
      late: colours(document.querySelector("span.late")),
      footer: colours(document.querySelector("td.foot")),
    },
  };
})()"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    """One Chromium for the module: a page loads in about 0.2 s, the browser in about 1 s."""
    if chromium_path() is None:
        pytest.skip(f"CHROMIUM IS MISSING: the email's layout is NOT checked in a browser ({INSTALL_HINT})")
    with Chromium() as chromium:
        yield chromium


def seen(browser: Chromium, digest_report: Report, viewport: Viewport, *, row_limit: int = 500) -> Any:
    """The email rendered from `digest_report`, as measured in the browser on `viewport`."""
    html = render_email(digest_report, row_limit=row_limit).html
    browser.show(html, viewport)
    return browser.evaluate(MEASURE)


def hostile_report(**fields: Any) -> Report:
    """The widest content a digest can get: 200-character unbroken names, long emails, five long extras,
    a breakdown of long unbroken values and the longest company names."""
    long_email = "a" * 64 + "@" + "very-long-subdomain-" * 9 + "example.com"
    sources = [f"{'Ж' * 100}{n}" for n in range(7) for _ in range(n + 1)] + [""]
    companies = [f"ada@{letter * 63}.com" for letter in "abcdefg"]
    users = [
        user(
            n, ("Ж" if n % 2 else "W") * 200, long_email, extra=tuple("y" * 100 for _ in EXTRAS), late=n == 1
        )
        for n in range(6)
    ]
    users.append(user(7, "Ada Lovelace", "ada@example.com", extra=("pro", "newsletter", "", "", "")))
    return report(
        users,
        BERLIN,
        label="A" * 60,  # PROJECT_LABEL's longest, unbroken
        extra_properties=EXTRAS,
        profile_url_template=PROFILE,
        catchup=Catchup(WINDOW.start_at - timedelta(hours=2), 7200),
        previous_users=2,
        window_users=7,
        breakdown=break_down("u" * 255, sources),
        companies=roll_up(companies),
        **fields,
    )


# name -> (report, EMAIL_ROW_LIMIT)
CASES: dict[str, tuple[Callable[[], Report], int]] = {
    "ordinary": (lambda: report([user(n) for n in range(8)], label="Acme iOS"), 500),
    "hostile": (hostile_report, 500),
    "hostile, cut by the row limit": (hostile_report, 3),
}


@pytest.mark.parametrize("viewport", [PHONE, NARROW_WINDOW], ids=["phone", "narrow window"])
@pytest.mark.parametrize("case", CASES)
def test_at_390_px_nothing_scrolls_sideways_and_no_user_is_cut_off(
    browser: Chromium, case: str, viewport: Viewport
) -> None:
    make_report, row_limit = CASES[case]
    page = seen(browser, make_report(), viewport, row_limit=row_limit)
    assert page["viewport"] == 390
    assert page["scrollWidth"] <= 390
    assert page["page"]["left"] >= 0, "text off the screen's left edge"
    assert page["page"]["right"] <= 390, "text off the screen's right edge"
    assert page["users"]
    for block in page["users"]:
        assert block["scrollWidth"] <= block["clientWidth"], "a user's text overflows its block"
        assert block["right"] <= 390, "a user's block runs off the screen"
        assert block["left"] <= block["text"]["left"], "a user's text starts outside its block"
        assert block["text"]["right"] <= block["right"], "a user's text ends outside its block"


@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=200), st.text(max_size=120), st.text(max_size=100)),
        min_size=1,
        max_size=8,
    )
)
@settings(max_examples=20)
def test_no_name_email_or_extra_value_widens_the_phone_layout(
    browser: Chromium, people: list[tuple[str, str, str]]
) -> None:
    users = [
        user(n, name, email or "x@example.com", extra=(value,))
        for n, (name, email, value) in enumerate(people)
    ]
    page = seen(browser, report(users, extra_properties=("plan",), profile_url_template=PROFILE), PHONE)
    assert page["scrollWidth"] <= 390
    for block in page["users"]:
        assert block["scrollWidth"] <= block["clientWidth"]
        assert block["right"] <= 390


@pytest.mark.parametrize("case", CASES)
def test_at_1200_px_the_column_is_centred_and_about_600_px_wide(browser: Chromium, case: str) -> None:
    make_report, row_limit = CASES[case]
    page = seen(browser, make_report(), DESKTOP, row_limit=row_limit)
    card = page["card"]
    left_margin, right_margin = card["left"], page["viewport"] - card["right"]
    assert abs(left_margin - right_margin) <= 2, f"margins {left_margin} and {right_margin}"
    assert 560 <= card["right"] - card["left"] <= 640
    assert page["scrollWidth"] <= 1200


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_note_about_the_rest_comes_before_the_list(browser: Chromium, viewport: Viewport) -> None:
    page = seen(browser, report([user(n) for n in range(12)]), viewport, row_limit=5)
    assert page["note"] is not None
    assert page["note"]["top"] < page["users"][0]["top"]
    assert len(page["users"]) == 5


def test_with_5000_users_of_200_character_names_the_email_is_cut_by_size_and_still_lays_out(
    browser: Chromium,
) -> None:
    users = [user(n, "Ж" * 200, f"{'x' * 60}{n}@example.com", extra=("y" * 100,)) for n in range(5000)]
    digest_report = report(users, extra_properties=("plan",), profile_url_template=PROFILE)
    digest = render_email(digest_report, row_limit=10_000)
    assert len(digest.html.encode()) <= HTML_BUDGET
    browser.show(digest.html, PHONE)
    page = browser.evaluate(MEASURE)
    assert len(page["users"]) == digest.html.count('class="u"') < 5000
    assert page["note"]["top"] < page["users"][0]["top"]
    assert page["scrollWidth"] <= 390


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_every_line_reads_with_enough_contrast_in_light_and_dark_mode(
    browser: Chromium, viewport: Viewport, dark: bool
) -> None:
    page = seen(browser, hostile_report(), replace(viewport, dark=dark), row_limit=3)
    assert page["dark"] is dark
    page_background = luminance(parse_colour(page["lines"]["count"]["background"]))
    assert (page_background < 0.05) if dark else (page_background > 0.8), "the card follows the scheme"
    for line, colours in page["lines"].items():
        assert colours is not None, f"no {line} line to check"
        ratio = contrast(parse_colour(colours["text"]), parse_colour(colours["background"]))
        assert ratio >= MIN_CONTRAST, f"{line}: {colours['text']} on {colours['background']} is {ratio:.2f}:1"


# -- colour arithmetic (WCAG 2.x) ------------------------------------------------------------------
def parse_colour(css: str) -> tuple[float, float, float]:
    """'rgb(22, 27, 34)' or 'rgba(22, 27, 34, 1)' as 0-255 channels; a see-through colour is refused."""
    inside = css[css.index("(") + 1 : css.index(")")]
    channels = [float(part) for part in inside.replace("/", ",").replace(",", " ").split()]
    assert len(channels) == 3 or channels[3] == 1, (
        f"{css} is see-through: its contrast depends on what is under it"
    )
    return channels[0], channels[1], channels[2]


def luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG relative luminance, 0 (black) to 1 (white)."""

    def linear(channel: float) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(text: tuple[float, float, float], background: tuple[float, float, float]) -> float:
    """WCAG contrast ratio, 1 to 21."""
    lighter, darker = sorted((luminance(text), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_the_contrast_arithmetic_matches_wcag() -> None:
    assert contrast((0, 0, 0), (255, 255, 255)) == pytest.approx(21)
    assert contrast((118, 118, 118), (255, 255, 255)) == pytest.approx(4.54, abs=0.01)  # WCAG's grey
    assert parse_colour("rgba(1, 2, 3, 1)") == (1, 2, 3)
