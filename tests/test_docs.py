"""The README and the pages in docs/ against the code: links that resolve, a README a newcomer finishes,
the decision table, the outcomes, the module map and the run summary's fields as the code has them.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from notifier.decision import TABLE, Row
from notifier.errors import (
    BadMessage,
    ChannelRejected,
    ConfigError,
    NotifierError,
    SourceUnavailable,
    StateRejected,
)
from notifier.mixpanel import FetchStats
from notifier.outcome import SEVERITY, Outcome
from notifier.span import Span
from notifier.summary import ChannelSummary, RunSummary

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted([README, *DOCS.glob("*.md")])
MAX_README_LINES = 300
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)|<img src=\"([^\"]+)\"")
_CODE_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def prose(page: Path) -> str:
    """The page without its code blocks (commands and logs are not links or headings)."""
    return _CODE_BLOCK.sub("", page.read_text())


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in prose(page).splitlines() if line.startswith("#")}


def links(page: Path) -> list[str]:
    return [a or b for a, b in _LINK.findall(prose(page))]


def test_the_readme_is_under_300_lines() -> None:
    assert len(README.read_text().splitlines()) < MAX_README_LINES


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_link_to_a_page_or_a_heading_resolves(page: Path) -> None:
    broken = []
    for link in links(page):
        if re.match(r"^[a-z]+:", link):
            continue  # a web address: not checked offline
        path, _hash, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists() or (anchor and anchor not in anchors(target)):
            broken.append(link)
    assert broken == []


def test_the_readme_links_every_page_of_the_reference() -> None:
    linked = {(ROOT / link.partition("#")[0]).resolve() for link in links(README)}
    assert {page.resolve() for page in DOCS.glob("*.md")} <= linked


_WORK_WORDS = re.compile(r"\bissues?\b|\bSPEC\b|\bthe lead\b|\bbudget of the\b")
_COMMIT = re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_the_docs_speak_to_users_not_of_how_the_work_was_organised(page: Path) -> None:
    text = page.read_text()
    assert _WORK_WORDS.findall(text) == []
    assert _COMMIT.findall(text) == []


def decision_row(number: int, row: Row) -> str:
    """One row of the decision table as docs/failures.md prints it."""
    said = []
    if row.holds_message is not None:
        said.append("the delivery holds the message" if row.holds_message else "the delivery holds nothing")
    if row.fault is not None:
        said.append("the fault is " + " or ".join(sorted(f.value.replace("_", " ") for f in row.fault)))
    for value, yes, no in (
        (row.told_anyone, "someone was told", "nobody was told"),
        (row.refused, "a recipient refused", "no recipient refused"),
        (
            row.left_after_transient,
            "recipients are left after a transient failure",
            "nobody is left after a transient failure",
        ),
        (row.ending_lost, "the history did not take the ending", "the history took the ending"),
    ):
        if value is not None:
            said.append(yes if value else no)
    cells = (str(number), "; ".join(said) or "anything else", row.end.value if row.end else "–")
    return f"| {' | '.join(cells)} | {row.disposition.value} | {row.meaning} |"


def test_the_failures_page_prints_the_decision_table_row_for_row() -> None:
    printed = [
        line for line in (DOCS / "failures.md").read_text().splitlines() if re.match(r"\| \d+ \|", line)
    ]
    assert printed == [decision_row(number, row) for number, row in enumerate(TABLE, start=1)]


def test_the_failures_page_gives_every_outcome_its_severity() -> None:
    text = (DOCS / "failures.md").read_text()
    for outcome in Outcome:
        assert f"| `{outcome.value}` | {logging.getLevelName(SEVERITY[outcome])} |" in text


def test_the_module_map_names_every_module_and_only_those() -> None:
    text = (DOCS / "architecture.md").read_text()
    mapped = set(re.findall(r"^\| `((?:notifier/)?[\w/]+\.py)` \|", text, re.MULTILINE))
    modules = {str(path.relative_to(ROOT)) for path in (ROOT / "notifier").rglob("*.py")}
    assert mapped == modules | {"main.py"}


def test_the_failures_page_explains_every_field_of_the_run_summary() -> None:
    at = datetime(2026, 11, 28, 9, tzinfo=UTC)
    channel = ChannelSummary("email", "partial", 5, 1, 1, 1, 1, 1, error="refused")
    summary = RunSummary(
        Outcome.PARTIAL,
        Span.between(at.replace(hour=8), at),
        coverage=(Span.between(at.replace(hour=8), at),),
        users=1,
        late_users=1,
        excluded=1,
        texts_held=1,
        held_in_text=1,
        stats=FetchStats(1, 1, 1),
        channels=(channel,),
        retries=1,
        state_round_trips=1,
        error="x",
        error_type="X",
        history={"end": "close", "why": "done"},
    )
    errors: list[NotifierError] = [
        BadMessage("x", field="f"),
        ConfigError.every([ConfigError("x", variable="A")] * 2),
    ]
    errors += [SourceUnavailable("x", service="s", status=500), StateRejected("x", status=400)]
    errors += [ChannelRejected("x", channel="sms", status=400)]
    fields = {*summary.log_fields(), *channel.log_fields(), "error_where"}
    fields |= {name for error in errors for name in error.log_fields()}
    fields |= {"severity", "message", "time", "logger"}
    text = (DOCS / "failures.md").read_text().split("## Reading a run summary", 1)[1]
    explained = set(re.findall(r"`(\w+)`", text))
    assert fields - {"event"} <= explained
