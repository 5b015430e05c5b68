"""`python -m notifier publish`: send a trigger message to the function's topic by hand.

The message is checked with the same parser the function uses before anything is published.
`PUBSUB_EMULATOR_HOST` points the client at a local emulator, as google-cloud-pubsub documents.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any

from notifier.errors import BadMessage
from notifier.trigger import CHANNELS, parse_trigger
from notifier.variables import MAX_LOOKBACK_MINUTES

DEFAULT_TOPIC = "notifier-trigger"


def build_message(args: argparse.Namespace) -> bytes:
    """The trigger message for the parsed command line, validated as the function would."""
    fields: dict[str, Any] = {}
    if args.lookback is not None:
        fields["lookback_minutes"] = args.lookback
    if args.start is not None:
        fields["start"] = args.start
    if args.end is not None:
        fields["end"] = args.end
    if args.dry_run:
        fields["dry_run"] = True
    if args.channels:
        fields["channels"] = [c.strip() for c in args.channels.split(",") if c.strip()]
    data = json.dumps(fields, separators=(",", ":")).encode()
    parse_trigger(data, publish_time=datetime.now(UTC), default_lookback=60)
    return data


def publish(data: bytes, *, project: str, topic: str, publisher: Any = None) -> str:
    """Publish `data` to projects/`project`/topics/`topic`; return the message id."""
    if publisher is None:
        from google.cloud.pubsub_v1 import PublisherClient

        publisher = PublisherClient()
    message_id: str = publisher.publish(publisher.topic_path(project, topic), data).result(timeout=60)
    return message_id


def parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command line, with defaults taken from `environ`."""
    root = argparse.ArgumentParser(prog="python -m notifier", description="Notifierator tools.")
    commands = root.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("publish", help="publish a trigger message to the function's topic")
    project = environ.get("GOOGLE_CLOUD_PROJECT") or environ.get("PUBSUB_PROJECT_ID")
    cmd.add_argument("--project", default=project, required=project is None, help="Google Cloud project id")
    cmd.add_argument("--topic", default=environ.get("NOTIFIER_TOPIC", DEFAULT_TOPIC), help="topic name")
    window = cmd.add_mutually_exclusive_group()
    window.add_argument(
        "--lookback", type=int, help=f"window length in minutes (1 to {MAX_LOOKBACK_MINUTES})"
    )
    window.add_argument("--start", help="explicit window start, RFC 3339 with offset (needs --end)")
    cmd.add_argument("--end", help="explicit window end, RFC 3339 with offset (needs --start)")
    cmd.add_argument("--dry-run", action="store_true", help="render and log, send nothing")
    cmd.add_argument("--channels", help=f"comma-separated subset of {', '.join(CHANNELS)}")
    return root


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    publisher: Any = None,
    out: IO[str] | None = None,
) -> int:
    """Run the command line; 0 when published, 2 when the message would be rejected."""
    args = parser(environ).parse_args(argv)
    try:
        data = build_message(args)
    except BadMessage as error:
        print(f"not published: {error}", file=sys.stderr)
        return 2
    message_id = publish(data, project=args.project, topic=args.topic, publisher=publisher)
    print(
        f"published {data.decode()} to projects/{args.project}/topics/{args.topic}: message id {message_id}",
        file=out or sys.stdout,
    )
    return 0
