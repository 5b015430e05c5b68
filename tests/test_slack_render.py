"""The Slack message (SPEC: What is sent, Slack): Block Kit inside Slack's limits, user data inert."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from notifier.mixpanel import NewUser
from notifier.render.report import Catchup
from notifier.render.slack import escape, render_slack
from sandbox.slack import payload_problem
from tests.render_helpers import BERLIN, WINDOW, report, user

HOSTILE = [
    "<!channel>",
    "<!here|here>",
    "<@U123>",
    "<#C42>",
    "<https://evil.example|Click>",
    "*bold* _it_ ~s~ `c`",
    "a & b",
]


def texts(payload: dict[str, object]) -> list[str]:
    """Every text Slack would show."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("text"), str):
                found.append(value["text"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(payload)
    return found


def test_the_message_has_a_header_the_window_and_every_user_when_few() -> None:
    payload = render_slack(report([user(1, "Ada"), user(2, "Bob")], BERLIN, label="Acme iOS"), email_on=True)
    blocks = payload["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Acme iOS: 2 new users", "emoji": False},
    }
    assert blocks[1]["elements"][0]["text"] == "28 Nov 2026, 09:00–10:00 CET"
    shown = " ".join(texts({"blocks": blocks[2:]}))
    assert "Ada" in shown
    assert "Bob" in shown
    assert "more" not in shown
    assert payload["text"] == "Acme iOS: 2 new users, 28 Nov 2026, 09:00–10:00 CET"
    assert payload_problem(payload) is None


def test_the_context_carries_missed_time_the_trend_and_late_users() -> None:
    catchup = Catchup(WINDOW.start_at.replace(hour=6), 7200)
    payload = render_slack(
        report([user(1, late=True)], catchup=catchup, previous_users=4, window_users=0), email_on=False
    )
    context = [element["text"] for element in payload["blocks"][1]["elements"]]
    assert context[1:] == [
        "including 2 h missed since 06:00",
        "4 fewer than the hour before",
        "1 arrived late (created earlier, reached Mixpanel after its digest)",
    ]


def test_many_users_stay_inside_the_limits_and_say_how_many_more_pointing_to_the_email() -> None:
    payload = render_slack(
        report([user(n, "N" * 300, extra=("x" * 100,)) for n in range(5000)], extra_properties=("plan",)),
        email_on=True,
    )
    assert payload_problem(payload) is None
    assert len(payload["blocks"]) <= 50
    assert payload["blocks"][-1]["elements"][0]["text"].endswith("more. Everyone is in the email.")


def test_with_profile_links_each_user_has_a_button_to_their_page() -> None:
    payload = render_slack(
        report([user(n) for n in range(100)], profile_url_template="https://a.example/u/{distinct_id}"),
        email_on=False,
    )
    assert payload_problem(payload) is None
    sections = [b for b in payload["blocks"] if b["type"] == "section"]
    assert sections[0]["accessory"]["url"] == "https://a.example/u/id-0"
    assert payload["blocks"][-1]["elements"][0]["text"] == f"…and {100 - len(sections)} more."


def test_slack_control_characters_are_escaped() -> None:
    assert escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"


@given(
    st.lists(
        st.tuples(
            st.sampled_from(HOSTILE) | st.text(max_size=50), st.sampled_from(HOSTILE) | st.text(max_size=30)
        ),
        min_size=1,
        max_size=30,
    )
)
def test_no_name_or_email_becomes_markup_a_mention_or_a_link(people: list[tuple[str, str]]) -> None:
    users = [NewUser(f"id-{n}", name, email, WINDOW.start_at) for n, (name, email) in enumerate(people)]
    payload = render_slack(report(users), email_on=True)
    assert payload_problem(payload) is None
    for block in payload["blocks"]:
        for text in texts(block):
            assert "<" not in text
            assert ">" not in text
    assert all(t["type"] == "plain_text" for b in payload["blocks"] for t in _text_objects(b))
    assert "link_names" not in payload


def _text_objects(block: dict[str, object]) -> list[dict[str, object]]:
    objects: list[dict[str, object]] = []
    for key in ("text", "fields", "elements"):
        value = block.get(key)
        if isinstance(value, dict):
            objects.append(value)
        elif isinstance(value, list):
            objects.extend(item for item in value if isinstance(item, dict) and "type" in item)
    accessory = block.get("accessory")
    if isinstance(accessory, dict):
        objects.append(accessory["text"])
    return objects


def test_the_size_limit_holds_for_the_bytes_slack_sdk_sends_not_the_characters() -> None:
    # slack-sdk sends json.dumps's ASCII escapes: an emoji is 12 bytes, a CJK character 6.
    payload = render_slack(report([user(n, "李雷🎉" * 60, "é" * 40) for n in range(2000)]), email_on=True)
    assert len(json.dumps(payload)) <= 40_000
    assert payload_problem(payload) is None
