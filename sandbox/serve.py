"""`python -m sandbox serve` (`make sandbox`): the whole local path, Scheduler -> Pub/Sub -> function,
on this machine until Ctrl-C.

Starts Mixpanel (with sample sign-ups in the last hour), SendGrid, Twilio, Slack and Secret Manager on
local ports, and, where gcloud has it, the Pub/Sub emulator with the function's topic and a push
subscription to the function's port. Prints the `export` line that points the function at them, the
functions-framework command, the tools to try (check, run --dry-run, publish) and a curl that delivers
the scheduler's message without Pub/Sub; then one line per request a stand-in answers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType

from google.api_core.exceptions import GoogleAPIError

from notifier.cli import OneLineParser
from notifier.publish import DEFAULT_TOPIC
from notifier.replies import mask_phone
from sandbox.pubsub import PubSubEmulator, emulator_binary
from sandbox.samples import PAYLOAD, function_environ, sample_stand_ins, secret_name
from sandbox.server import Recorded, Reply, StandIn

DEFAULT_PORT = 9100  # the stand-ins listen on the next five ports (9101 to 9105), Pub/Sub on the sixth
PORTS_AFTER = 6
HIGHEST_PORT = 65535
FUNCTION_PORT = 8080
FUNCTIONS_FRAMEWORK = (
    ".venv/bin/functions-framework --target=notify --source=main.py --signature-type=cloudevent"
)
TOOL = ".venv/bin/python -m notifier"
INSTALL_PUBSUB = "gcloud components install pubsub-emulator"


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until Ctrl-C; 1 (and one line saying why) when a port is taken."""
    args = parser().parse_args(argv)
    ports = [args.port + offset if args.port else 0 for offset in range(1, PORTS_AFTER + 1)]
    busy = first_busy(port for port in ports[: -1 if args.no_pubsub else None] if port)
    if busy is not None:
        print(_busy(busy), flush=True)
        return 1
    # Ended by the system (a closed terminal, `kill`): stop as Ctrl-C does, so the emulator goes too.
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.ExitStack() as stack:
        try:
            stand_ins = _start_stand_ins(stack, ports)
        except OSError as error:
            print(f"a stand-in could not listen ({error.strerror}): {_choose_ports()}", flush=True)
            return 1
        pubsub = None if args.no_pubsub else _start_pubsub(stack, ports[-1], args.function_port)
        _print_instructions(stand_ins, pubsub, args.function_port)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("\nStopped.")
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line."""
    command = OneLineParser(prog="python -m sandbox serve", description=__doc__)
    command.add_argument(
        "--port",
        type=port_number(0, HIGHEST_PORT - PORTS_AFTER),
        default=DEFAULT_PORT,
        help=f"the stand-ins and the Pub/Sub emulator take the next {PORTS_AFTER} ports (0: any free ones)",
    )
    command.add_argument(
        "--function-port",
        type=port_number(1, HIGHEST_PORT),
        default=FUNCTION_PORT,
        help="the port functions-framework is to listen on: Pub/Sub pushes there",
    )
    command.add_argument(
        "--no-pubsub",
        action="store_true",
        help="do not start the Pub/Sub emulator (a quicker start; deliver with the curl printed)",
    )
    return command


def port_number(lowest: int, highest: int) -> Callable[[str], int]:
    """An argparse type: a port from `lowest` to `highest`."""

    def parse(text: str) -> int:
        try:
            port = int(text)
        except ValueError:
            port = -1
        if not lowest <= port <= highest:
            free = "0 (any free ones) or " if lowest == 0 else ""
            raise argparse.ArgumentTypeError(f"must be {free}a port from 1 to {highest}; got {text!r}")
        return port

    return parse


def first_busy(ports: Iterable[int]) -> int | None:
    """The first of `ports` that something on this machine already listens on, or None."""
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return port
    return None


def _busy(port: int) -> str:
    return f"port {port} is in use (another `make sandbox`?): stop what holds it, or {_choose_ports()}"


def _choose_ports() -> str:
    return f"pass --port N for the {PORTS_AFTER} ports after N, or --port 0 for any free ones"


def _interrupt(_signal: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@dataclass(frozen=True)
class StandIns:
    """The started stand-ins, and the function's environment that points at them."""

    all: tuple[StandIn, ...]
    environ: dict[str, str]
    profiles: int
    window_end: datetime


def _start_stand_ins(stack: contextlib.ExitStack, ports: Sequence[int]) -> StandIns:
    # A minute back: the sample's one sign-up after its hour is then not in the future, which `check`
    # would rightly flag as a date it cannot find.
    window_end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    mixpanel, sendgrid, twilio, slack, secret_manager = sample_stand_ins(window_end)
    started = (mixpanel, sendgrid, twilio, slack, secret_manager)
    for stand_in, port in zip(started, ports, strict=False):
        stack.enter_context(stand_in.start(port))
        stand_in.on_reply = _printer(stand_in.name)
    # The webhook URL holds the Slack stand-in's port, known only now; like the others it is a secret.
    secret_manager.secrets[secret_name("slack-webhook-url")] = slack.webhook_url
    environ = function_environ(mixpanel, sendgrid, twilio, secret_manager)
    return StandIns(started, environ, len(mixpanel.profiles), window_end)


def _start_pubsub(stack: contextlib.ExitStack, port: int, function_port: int) -> PubSubEmulator | None:
    """The Pub/Sub emulator with the function's topic pushing to `function_port`, or None (said why)."""
    if emulator_binary() is None:
        print(
            f"The Pub/Sub emulator is not installed ({INSTALL_PUBSUB}; it needs Java): "
            "deliver the scheduler's message with the curl below.",
            flush=True,
        )
        return None
    print("Starting the Pub/Sub emulator (a few seconds)...", flush=True)
    emulator = PubSubEmulator(port=port or None)
    try:
        stack.enter_context(emulator)
        emulator.push_topic(DEFAULT_TOPIC, f"http://127.0.0.1:{function_port}/")
    except (RuntimeError, TimeoutError, OSError, GoogleAPIError) as error:
        print(
            f"The Pub/Sub emulator did not start ({type(error).__name__}: {error}): "
            "deliver the scheduler's message with the curl below.",
            flush=True,
        )
        return None
    return emulator


def _print_instructions(stand_ins: StandIns, pubsub: PubSubEmulator | None, function_port: int) -> None:
    print("\nStand-ins, serving until Ctrl-C:")
    for stand_in in stand_ins.all:
        print(f"  {stand_in.name:<14} {stand_in.url}")
    if pubsub is not None:
        print(
            f"  {'pubsub':<14} {pubsub.host} (the emulator: topic {DEFAULT_TOPIC}, "
            f"pushing to http://127.0.0.1:{function_port}/)"
        )
    print(
        f"  ({stand_ins.profiles} Mixpanel profiles, most of them created in the hour before "
        f"{stand_ins.window_end:%H:%M} UTC)"
    )
    print("\nIn a second terminal, from the repository's root, point the function at them and start it:\n")
    print(export_line(stand_ins.environ))
    print(f"{FUNCTIONS_FRAMEWORK} --port={function_port}")
    if pubsub is not None:
        print(
            "\nIn a third, from the repository's root, paste the same export line and the one below it, "
            "then check the settings, see what a run would send, and publish the scheduler's message "
            "through Pub/Sub to the function:\n"
        )
    else:
        print(
            "\nIn a third, from the repository's root, paste the same export line, then check the "
            "settings and see what a run would send:\n"
        )
    print("\n".join(tool_lines(pubsub)))
    print(
        f"\n{'Or, without Pub/Sub, d' if pubsub else 'D'}eliver the scheduler's message, {PAYLOAD.decode()}, "
        "as Pub/Sub pushes it (it prints 200):\n"
    )
    print(curl_command(function_port, PAYLOAD.decode()))
    print("\nWhat the stand-ins answer:", flush=True)


def export_line(environ: Mapping[str, str]) -> str:
    """`export NAME=value ...`, quoted for a shell."""
    return "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in environ.items())


def tool_lines(pubsub: PubSubEmulator | None) -> list[str]:
    """The third terminal's commands: (the Pub/Sub export line,) check, run --dry-run (, publish)."""
    lines = [f"{TOOL} check", f"{TOOL} run --dry-run"]
    if pubsub is None:
        return lines
    lookback = json.loads(PAYLOAD)["lookback_minutes"]
    return [export_line(pubsub.environ), *lines, f"{TOOL} publish --lookback {lookback}"]


def curl_command(port: int, payload: str) -> str:
    """A curl that pushes `payload` as Pub/Sub would: a raw push body, which functions-framework turns
    into the CloudEvent. The shell fills in the data (base64), a fresh message id and the publish time."""
    shell = {
        "data": f"$(printf '{payload}' | base64 | tr -d '\\n')",
        "messageId": "$(date +%s)",
        "publishTime": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    }
    message = ", ".join(f'\\"{name}\\": \\"{value}\\"' for name, value in shell.items())
    subscription = '\\"subscription\\": \\"projects/sandbox/subscriptions/notifierator\\"'
    body = f'{{\\"message\\": {{{message}}}, {subscription}}}'
    return (
        f"curl -s -o /dev/null -w '%{{http_code}}\\n' http://127.0.0.1:{port} "
        f"-H 'Content-Type: application/json' -d \"{body}\""
    )


def _printer(name: str) -> Callable[[Recorded, Reply], None]:
    def show(request: Recorded, reply: Reply) -> None:
        print(
            f"  {name:<14} {request.method} {request.path} -> {reply.status}{_what(request, reply)}",
            flush=True,
        )

    return show


def _what(request: Recorded, reply: Reply) -> str:
    """What a delivered message said, for the three channels."""
    if not 200 <= reply.status < 300:
        return ""
    if request.path == "/v3/mail/send":
        mail = request.json()
        return f": {mail['subject']!r} to {len(mail['personalizations'])} recipient(s)"
    if request.path.endswith("/Messages.json"):
        form = request.form()
        return f": to {mask_phone(form['To'])}: {form['Body']!r}"
    if request.path.startswith("/services/"):
        return f": {json.loads(request.body)['text']!r}"
    return ""
