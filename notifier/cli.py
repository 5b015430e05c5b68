"""`python -m notifier`: the operator's tools, one module each (publish, check, run --dry-run).

A person's mistake (a bad option, a bad file, a service that does not answer) is one line on stderr
that says what to do, and a non-zero exit status; never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, NoReturn

from notifier import check, dry_run, publish
from notifier.logs import LOGGER_NAME
from notifier.retry import RetryPolicy
from notifier.services import Services

# A person is waiting at the terminal: fewer, shorter attempts than a scheduled run makes.
TOOL_POLICY = RetryPolicy(attempts=3, max_delay=10.0)
INTERRUPTED = 130  # what a shell reports for a command ended by Ctrl-C (128 + SIGINT)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line pointing at --help, instead of the usage block and the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (--help lists the options)\n")


def parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command line, with defaults taken from `environ`."""
    root = OneLineParser(prog="python -m notifier", description="Notifierator tools.")
    commands = root.add_subparsers(dest="command", required=True)
    publish.add_parser(commands, environ)
    check.add_parser(commands)
    dry_run.add_parser(commands)
    return root


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    services: Services | None = None,
    publisher: Any = None,
    out: IO[str] | None = None,
) -> int:
    """Run one command; its exit status."""
    args = parser(environ).parse_args(argv)
    out = out or sys.stdout
    if args.command == "publish":
        return publish.command(args, publisher=publisher, out=out)
    services = services or Services(policy=TOOL_POLICY)
    if args.command == "check":
        return check.command(args, environ=environ, services=services, out=out)
    return dry_run.command(args, environ=environ, services=services, out=out)


def as_command(command: Callable[[], int]) -> int:
    """`command`'s exit status, as a command line runs it: a reader that went away (`| head`) or Ctrl-C
    ends it quietly, with a status, instead of a traceback."""
    try:
        status = command()
        sys.stdout.flush()  # inside the try: a closed pipe shows up here for short output
        return status
    except BrokenPipeError:
        # Python's documented remedy (library/signal.html, "Note on SIGPIPE"): point stdout at
        # devnull, so the interpreter's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("stopped (Ctrl-C)", file=sys.stderr)
        return INTERRUPTED


def configure_logging(stream: IO[str] | None = None) -> None:
    """Warnings (a retry, a slow service) as plain lines on stderr; the commands print the rest."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    # The run's summary line is what the commands print in full: logging it too would say it twice.
    handler.addFilter(lambda record: getattr(record, "fields", {}).get("event") != "run_summary")
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
