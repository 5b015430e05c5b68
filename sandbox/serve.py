"""`python -m sandbox serve` (`make sandbox`): the stand-ins until Ctrl-C, to run the function by hand.

Starts Mixpanel (with sample sign-ups in the last hour), SendGrid, Twilio, Slack and Secret Manager on
local ports, prints the one `export` line that points the function at them, the functions-framework
command and a curl that delivers the scheduler's message, then one line per request a stand-in answers.
"""

from __future__ import annotations

import argparse
import json
import shlex
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from notifier.answers import mask_phone
from sandbox.samples import PAYLOAD, function_environ, sample_stand_ins, secret_name
from sandbox.server import Recorded, Reply, StandIn

DEFAULT_PORT = 9100  # the stand-ins listen on the next five ports: 9101 to 9105
FUNCTION_PORT = 8080
FUNCTIONS_FRAMEWORK = (
    ".venv/bin/functions-framework --target=notify --source=main.py --signature-type=cloudevent"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m sandbox serve", description=__doc__)
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="the stand-ins take the next five ports (0: any free)"
    )
    parser.add_argument("--function-port", type=int, default=FUNCTION_PORT, help="functions-framework's port")
    args = parser.parse_args(argv)
    window_end = datetime.now(UTC).replace(second=0, microsecond=0)
    mixpanel, sendgrid, twilio, slack, secret_manager = sample_stand_ins(window_end)
    stand_ins: list[StandIn] = [mixpanel, sendgrid, twilio, slack, secret_manager]
    for offset, stand_in in enumerate(stand_ins, start=1):
        stand_in.start(args.port + offset if args.port else 0)
        stand_in.on_reply = _printer(stand_in.name)
    # The webhook URL holds the Slack stand-in's port, known only now; like the others it is a secret.
    secret_manager.secrets[secret_name("slack-webhook-url")] = slack.webhook_url
    environ = function_environ(mixpanel, sendgrid, twilio, secret_manager)
    print("Stand-ins, serving until Ctrl-C:")
    for stand_in in stand_ins:
        print(f"  {stand_in.name:<14} {stand_in.url}")
    print(
        f"  ({len(mixpanel.profiles)} Mixpanel profiles, most of them created in the hour before "
        f"{window_end:%H:%M} UTC)"
    )
    print("\nIn a second terminal, from the repository's root, point the function at them and start it:\n")
    print("export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in environ.items()))
    print(f"{FUNCTIONS_FRAMEWORK} --port={args.function_port}")
    print(
        f"\nIn a third, deliver the scheduler's message, {PAYLOAD.decode()}, as Pub/Sub pushes it "
        "(it prints 200):\n"
    )
    print(curl_command(args.function_port, PAYLOAD.decode()))
    print("\nWhat the stand-ins answer:", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("\nStopped.")
    finally:
        for stand_in in stand_ins:
            stand_in.stop()
    return 0


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
