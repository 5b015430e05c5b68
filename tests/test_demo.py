"""`make demo` end to end (issues 9, 10, 11): every channel sends once, a redelivery sends nothing,
the new settings show, odd names come out escaped, the files a reader looks at are written, and a
night of quiet hours ends with one text.

It starts processes (functions-framework, the emulators where installed, Chromium), hence slow.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import sandbox.demo
from sandbox.browser import chromium_path
from sandbox.demo import DemoResult, run_demo
from sandbox.firestore import emulator_available
from sandbox.pubsub import emulator_binary

pytestmark = pytest.mark.slow


def test_the_demo_sends_once_on_every_channel_and_a_redelivery_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_demo(tmp_path)
    out = capsys.readouterr().out
    assert result.ok
    first, second = result.summaries
    assert first["outcome"] == "sent"
    assert first["excluded"] == 1  # ivy@eng.acme.com, by EXCLUDE_EMAIL_DOMAINS=acme.com
    assert {channel["outcome"] for channel in first["channels"].values()} == {"sent"}
    assert second["outcome"] == "already_sent"
    assert (result.emails, result.texts, result.slack_messages) == (1, 2, 1)
    assert result.state_store == ("firestore" if emulator_available() else "memory")
    assert ("Pub/Sub emulator on" in out) is (emulator_binary() is not None)
    assert "Odd names on purpose" in out
    assert_files_show_everything(tmp_path, result, screenshots=chromium_path() is not None)


def test_without_emulators_or_chromium_the_demo_says_so_and_still_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh clone on a machine without gcloud's emulators or Chromium: `make demo` must still pass.
    monkeypatch.setattr(sandbox.demo, "emulator_available", lambda: False)
    monkeypatch.setattr(sandbox.demo, "emulator_binary", lambda: None)
    monkeypatch.setattr(sandbox.demo, "chromium_path", lambda: None)
    result = run_demo(tmp_path)
    out = capsys.readouterr().out
    assert result.ok
    assert result.state_store == "memory"
    assert "Firestore emulator not installed" in out
    assert "Pub/Sub emulator not installed" in out
    assert "Screenshots skipped: Chromium is not installed" in out
    assert_files_show_everything(tmp_path, result, screenshots=False)


def assert_files_show_everything(output: Path, result: DemoResult, *, screenshots: bool) -> None:
    """The email, its text part, the CSV and the Slack payload carry the new settings, escaped."""
    html = (output / "email.html").read_text(encoding="utf-8")
    assert "Acme iOS" in html  # PROJECT_LABEL
    assert 'href="https://admin.acme.example/users/u-1"' in html  # PROFILE_URL_TEMPLATE
    assert "plan: pro" in html  # EXTRA_PROPERTIES
    assert "utm_source: newsletter" in html
    assert "&lt;script&gt;alert(" in html
    assert "<script>" not in html
    assert "Showing the first 5 of 8" in html  # EMAIL_ROW_LIMIT=5: the note, and the CSV has everyone
    text = (output / "email.txt").read_text(encoding="utf-8")
    assert "Showing the first 5 of 8" in text
    assert "Ada Lovelace" in text
    [attachment] = output.glob("new-users-*.csv")
    rows = list(csv.reader(attachment.read_text(encoding="utf-8-sig").splitlines()))
    assert len(rows) == 1 + 8
    assert '\'=HYPERLINK("http://evil.example")' in [cell for row in rows for cell in row]
    slack = json.loads((output / "slack.json").read_text(encoding="utf-8"))
    shown = json.dumps(slack, ensure_ascii=False)
    assert "&lt;!channel&gt; &lt;https://evil.example|Click here&gt;" in shown
    assert "<!channel>" not in shown
    for path in (output / "email.html", output / "email.txt", attachment, output / "slack.json"):
        assert "ivy@eng.acme.com" not in path.read_text(encoding="utf-8-sig"), f"{path.name} lists ivy"
    assert_the_preview_tells_what_the_sign_ups_mean(output, result)
    pictures = [output / "email-phone.png", output / "email-desktop.png"]
    assert all(path.exists() for path in pictures) is screenshots
    if screenshots:
        assert all(path.read_bytes().startswith(b"\x89PNG") for path in pictures)
        assert set(pictures) <= set(result.files)


def assert_the_preview_tells_what_the_sign_ups_mean(output: Path, result: DemoResult) -> None:
    """The sample project's segment, breakdown and companies at the top of both parts of the email,
    and the first text after a night of quiet hours."""
    html = (output / "email.html").read_text(encoding="utf-8")
    text = (output / "email.txt").read_text(encoding="utf-8")
    breakdown = "By utm_source: google 3, newsletter 2, <b>ad</b> 1, =cmd 1, (none) 1"
    companies = "Companies: globex.io 2, hooli.com 1, initech.co.uk 1"  # not gmail, qq, mailinator
    for part in (html.replace("&lt;", "<").replace("&gt;", ">"), text):
        assert part.index(breakdown) < part.index(companies) < part.index("Ada Lovelace")
        assert "Sam Staff" not in part  # plan "staff": MIXPANEL_FILTER leaves him out
    assert "&lt;b&gt;ad&lt;/b&gt; 1" in html
    assert result.morning_text.startswith("Acme iOS: 4 new users since 21:00 ")
