"""`python -m notifier publish`: send a trigger message to the function's topic by hand.

The message is checked with the same parser the function uses before anything is published.
`PUBSUB_EMULATOR_HOST` points the client at a local emulator, as google-cloud-pubsub documents.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any

from notifier.errors import BadMessage
from notifier.trigger import CHANNELS, WIDEST_REACH, parse_trigger
from notifier.variables import MAX_LOOKBACK_MINUTES

DEFAULT_TOPIC = "notifierator-trigger"  # what Terraform and deploy.sh create (NAME-trigger)
WAIT_SECONDS = 15.0  # how long a person waits for Pub/Sub to take a message before being told why not


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


def publish(
    data: bytes, *, project: str, topic: str, publisher: Any = None, wait: float = WAIT_SECONDS
) -> str:
    """Publish `data` to projects/`project`/topics/`topic`; return the message id.

    A Pub/Sub that does not take it within about `wait` seconds raises (RetryError, DeadlineExceeded
    or TimeoutError): the client's own policy retries for up to ten minutes, too long for a person.
    """
    from google.api_core import exceptions as api
    from google.api_core.retry import Retry, if_exception_type

    if publisher is None:
        from google.cloud.pubsub_v1 import PublisherClient

        publisher = PublisherClient()
    # The codes the client's own publish policy retries (pubsub_v1's publisher transport), within the wait.
    again = if_exception_type(
        api.Aborted,
        api.Cancelled,
        api.DeadlineExceeded,
        api.InternalServerError,
        api.ResourceExhausted,
        api.ServiceUnavailable,
        api.Unknown,
    )
    retry = Retry(predicate=again, initial=0.2, maximum=2.0, timeout=wait)
    future = publisher.publish(publisher.topic_path(project, topic), data, retry=retry, timeout=wait)
    message_id: str = future.result(timeout=wait + 5)
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
    # The emulator's project when publishing to the emulator, whatever project the shell works in.
    emulator = environ.get("PUBSUB_EMULATOR_HOST") and environ.get("PUBSUB_PROJECT_ID")
    project = emulator or environ.get("GOOGLE_CLOUD_PROJECT") or environ.get("PUBSUB_PROJECT_ID")
    command.add_argument(
        "--project",
        default=project,
        required=project is None,
        help="project id (default: $PUBSUB_PROJECT_ID with the emulator, else $GOOGLE_CLOUD_PROJECT)",
    )
    command.add_argument("--topic", default=environ.get("NOTIFIER_TOPIC", DEFAULT_TOPIC), help="topic name")
    add_window_arguments(command)
    command.add_argument("--dry-run", action="store_true", help="render and log, send nothing")
    command.add_argument(
        "--wait",
        type=_seconds,
        default=WAIT_SECONDS,
        metavar="SECONDS",
        help=f"how long to wait for Pub/Sub to take the message (default {WAIT_SECONDS:g})",
    )


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, at most 3600; got {text!r}")
    return seconds


def command(args: argparse.Namespace, *, publisher: Any = None, out: IO[str] | None = None) -> int:
    """Publish; 0 when published, 1 when Pub/Sub did not take it, 2 for a message the function would
    reject or missing credentials. Each failure is one line on stderr that says what to do."""
    try:
        data = build_message(args)
    except BadMessage as error:
        print(f"not published: {error}", file=sys.stderr)
        return 2
    path = f"projects/{args.project}/topics/{args.topic}"
    try:
        message_id = publish(
            data, project=args.project, topic=args.topic, publisher=publisher, wait=args.wait
        )
    except Exception as error:
        found = _why_not_published(error, path, args.wait)
        if found is None:
            raise  # not a failure this command knows how to explain: a bug, shown as one
        status, reason = found
        print(f"not published: {reason}", file=sys.stderr)
        return status
    print(f"published {data.decode()} to {path}: message id {message_id}", file=out or sys.stdout)
    return 0


def _why_not_published(error: Exception, path: str, wait: float) -> tuple[int, str] | None:
    """The exit status and the one line that explains `error`, or None for an error not foreseen."""
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    emulator = os.environ.get("PUBSUB_EMULATOR_HOST")  # what the client itself reads
    where = f"the Pub/Sub emulator at {emulator}" if emulator else "Pub/Sub"
    unreachable = (
        "is `make sandbox` running? It prints the PUBSUB_EMULATOR_HOST to export"
        if emulator
        else "check the network (or set PUBSUB_EMULATOR_HOST to publish to a local emulator)"
    )
    create = (
        "`make sandbox` creates it on the emulator"
        if emulator
        else "deploy first: deploy.sh and Terraform create it"
    )
    login = "run `gcloud auth application-default login`"
    reasons: list[tuple[tuple[type[Exception], ...], int, str]] = [
        (
            (auth.DefaultCredentialsError,),
            2,
            f"no Google credentials: {login} (or set PUBSUB_EMULATOR_HOST for the emulator)",
        ),
        ((auth.RefreshError,), 2, f"the Google credentials were refused: {login} again"),
        (
            (api.NotFound,),
            1,
            f"{path} does not exist: {create}, or name the right one with --project and --topic",
        ),
        (
            (api.PermissionDenied, api.Unauthenticated),
            1,
            f"this account may not publish to {path}: it needs roles/pubsub.publisher there",
        ),
        (
            (api.RetryError, api.DeadlineExceeded, api.ServiceUnavailable, auth.TransportError, TimeoutError),
            1,
            f"{where} did not answer within {wait:g} s: {unreachable}",
        ),
    ]
    for kinds, status, reason in reasons:
        if isinstance(error, kinds):
            return status, reason
    if isinstance(error, api.GoogleAPICallError):
        return 1, f"{where} refused the message ({type(error).__name__}, code {error.code})"
    return None
