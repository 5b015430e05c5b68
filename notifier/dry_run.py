"""`python -m notifier run --dry-run`: the real window against the real project, from a laptop.

The function's own run (`notifier.run.run`) for a dry-run message: it reads the secrets, queries
Mixpanel and renders every channel's message, and sends nothing. The run history is this process's
memory, so nothing is claimed in the deployed one. What would be sent is printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping
from typing import IO, Any

from notifier.envfile import OPTION, tool_environ
from notifier.errors import BadMessage, ConfigError, NotifierError
from notifier.logs import LOGGER_NAME
from notifier.outcome import Outcome
from notifier.publish import add_window_arguments, build_message
from notifier.run import run
from notifier.services import Services
from notifier.span import Span
from notifier.summary import RunSummary

FROM_ENVIRONMENT = "it was read from the environment: --env-file reads a deploy.env"


def add_parser(commands: Any) -> None:
    """The `run` command's arguments."""
    command = commands.add_parser(
        "run", help="run one window against the real project and print what would be sent"
    )
    command.add_argument(
        "--dry-run",
        action="store_true",
        required=True,
        help="send nothing, print what would be sent (required: a run from here never sends)",
    )
    command.add_argument(
        OPTION, dest="env_file", help="read the function's settings from this file (deploy.env)"
    )
    add_window_arguments(command)


def command(args: argparse.Namespace, *, environ: Mapping[str, str], services: Services, out: IO[str]) -> int:
    """Run and print; 0 when the run worked (whatever it found), 1 when it failed, 2 for bad input.

    What would be sent goes to `out`; why nothing could be run is one line on stderr.
    """
    try:
        tool = tool_environ(args.env_file, environ)
        data = build_message(args)
    except (ConfigError, BadMessage) as error:
        return _not_run(f"not run: {error}", 2)
    tool["STATE_STORE"] = "memory"  # claims nothing in the deployed history
    said = _SummaryLine()
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(said)
    try:
        summary = run(data, services.now(), environ=tool, services=services)
    except NotifierError as error:  # a transient failure: the function would have asked for redelivery
        why = f"({said.fields.get('outcome')}): {said.fields.get('error')}" if said.fields else f": {error}"
        return _not_run(f"not run {why}; run it again (`python -m notifier check` shows which fails)", 1)
    finally:
        logger.removeHandler(said)
    window = summary.window
    if window is None or summary.outcome not in (Outcome.DRY_RUN, Outcome.NOTHING_TO_SEND):
        # The run's summary names what to fix; a configuration read from the environment may be a
        # forgotten --env-file.
        source = (
            "" if args.env_file or summary.outcome is not Outcome.BAD_CONFIG else f" ({FROM_ENVIRONMENT})"
        )
        return _not_run(f"not run ({summary.outcome.value}): {summary.error or 'see above'}{source}", 1)
    print_summary(summary, window, out)
    return 0


class _SummaryLine(logging.Handler):
    """Keeps the run's summary line: a run that would be redelivered raises instead of returning it."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: Mapping[str, Any] = {}

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", {})
        if fields.get("event") == "run_summary":
            self.fields = fields


def _not_run(line: str, status: int) -> int:
    print(line, file=sys.stderr)
    return status


def print_summary(summary: RunSummary, window: Span, out: IO[str]) -> None:
    """What the run found in `window`, and each channel's message as it would go out."""
    stats = summary.stats
    print(f"Window: {window.start_at.isoformat()} to {window.end_at.isoformat()}", file=out)
    found = [f"{summary.users:,} user(s) to report"]
    if summary.late_users:
        found.append(f"{summary.late_users:,} of them late")
    if summary.excluded:
        found.append(f"{summary.excluded:,} left out by EXCLUDE_EMAIL_DOMAINS")
    if stats.skipped_without_created:
        found.append(f"{stats.skipped_without_created:,} without a readable CREATED_PROPERTY date skipped")
    print(
        f"Found: {', '.join(found)}; {stats.pages} Mixpanel page(s), {stats.bytes_received:,} bytes", file=out
    )
    rendered = summary.rendered
    if summary.outcome is Outcome.NOTHING_TO_SEND or rendered is None:
        print("Nothing would be sent: no users in the window (NOTIFY_WHEN_EMPTY is false).", file=out)
        return
    recipients = {channel.channel: channel.recipients for channel in summary.channels}
    if rendered.email is not None:
        _section(f"Email to {recipients.get('email', 0)} recipient(s)", out)
        print(f"Subject: {rendered.email.subject}", file=out)
        if rendered.email.attachment is not None:
            print(f"Attachment: {rendered.email.attachment.filename} (everyone)", file=out)
        print(f"\n{rendered.email.text}", file=out)
    if rendered.sms is not None:
        _section(f"SMS to {recipients.get('sms', 0)} number(s)", out)
        print(rendered.sms, file=out)
    if rendered.slack is not None:
        _section("Slack", out)
        print(f"Text: {rendered.slack['text']}", file=out)
        print("Blocks:", json.dumps(rendered.slack["blocks"], indent=2, ensure_ascii=False), file=out)
    print("\nDry run: nothing was sent, and the run history was not touched.", file=out)


def _section(title: str, out: IO[str]) -> None:
    print(f"\n== {title} ==", file=out)
