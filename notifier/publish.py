"""`python -m notifier publish`: send a trigger message to the function's topic by hand.

The message is checked with the same parser the function uses before anything is published.
`PUBSUB_EMULATOR_HOST` points the client at a local emulator, as google-cloud-pubsub documents.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any

from notifier.errors import BadMessage
from notifier.trigger import CHANNELS, WIDEST_REACH, parse_trigger
from notifier.variables import MAX_LOOKBACK_MINUTES

DEFAULT_TOPIC = "notifierator-trigger"  # what Terraform and deploy.sh create (NAME-trigger)


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
    if args.channels is not None:  # --channels "" is an empty list, which the parser refuses
        fields["channels"] = [c.strip() for c in args.channels.split(",") if c.strip()]
    data = json.dumps(fields, separators=(",", ":")).encode()
    # The function's TIMEZONE and history settings are not known here: the window must suit them all.
    parse_trigger(
        data, publish_time=datetime.now(UTC), default_lookback=60, zone=None, reach_back=WIDEST_REACH
    )
    return data


def publish(data: bytes, *, project: str, topic: str, publisher: Any = None) -> str:
    """Publish `data` to projects/`project`/topics/`topic`; return the message id."""
    if publisher is None:
        from google.cloud.pubsub_v1 import PublisherClient

        publisher = PublisherClient()
    message_id: str = publisher.publish(publisher.topic_path(project, topic), data).result(timeout=60)
    return message_id


def add_window_arguments(command: argparse.ArgumentParser) -> None:
    """The trigger message's fields as options: the window, and the channels (shared with `run`)."""
    window = command.add_mutually_exclusive_group()
    window.add_argument(
        "--lookback", type=int, help=f"window length in minutes (1 to {MAX_LOOKBACK_MINUTES})"
    )
    window.add_argument("--start", help="explicit window start, RFC 3339 with offset (needs --end)")
    command.add_argument("--end", help="explicit window end, RFC 3339 with offset (needs --start)")
    command.add_argument("--channels", help=f"comma-separated subset of {', '.join(CHANNELS)}")


def add_parser(commands: Any, environ: Mapping[str, str]) -> None:
    """The `publish` command's arguments, with defaults taken from `environ`."""
    command = commands.add_parser("publish", help="publish a trigger message to the function's topic")
    project = environ.get("GOOGLE_CLOUD_PROJECT") or environ.get("PUBSUB_PROJECT_ID")
    command.add_argument(
        "--project", default=project, required=project is None, help="Google Cloud project id"
    )
    command.add_argument("--topic", default=environ.get("NOTIFIER_TOPIC", DEFAULT_TOPIC), help="topic name")
    add_window_arguments(command)
    command.add_argument("--dry-run", action="store_true", help="render and log, send nothing")


def command(args: argparse.Namespace, *, publisher: Any = None, out: IO[str] | None = None) -> int:
    """Publish; 0 when published, 2 when the message would be rejected or there are no credentials."""
    try:
        data = build_message(args)
    except BadMessage as error:
        print(f"not published: {error}", file=sys.stderr)
        return 2
    from google.auth.exceptions import DefaultCredentialsError

    try:
        message_id = publish(data, project=args.project, topic=args.topic, publisher=publisher)
    except DefaultCredentialsError:
        print(
            "not published: no Google credentials; run `gcloud auth application-default login` "
            "(or set PUBSUB_EMULATOR_HOST for the emulator)",
            file=sys.stderr,
        )
        return 2
    print(
        f"published {data.decode()} to projects/{args.project}/topics/{args.topic}: message id {message_id}",
        file=out or sys.stdout,
    )
    return 0
