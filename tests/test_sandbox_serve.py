"""`python -m sandbox serve` (`make sandbox`): the local run of docs/local.md, done as a newcomer does it.

The printed export line configures a real functions-framework process; the printed tools (check,
run --dry-run, publish through the Pub/Sub emulator) and the printed curl, run by bash as pasted,
work; the stand-ins report the digest they received on every channel.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.function import ROOT, FunctionProcess, free_port
from sandbox.pubsub import PubSubEmulator, emulator_binary
from sandbox.samples import PAYLOAD
from sandbox.serve import (
    DEFAULT_PORT,
    FUNCTION_PORT,
    FUNCTIONS_FRAMEWORK,
    INSTALL_PUBSUB,
    PORTS_AFTER,
    TOOL,
    curl_command,
    first_busy,
    tool_lines,
)
from sandbox.serve import main as serve_main
from tests.conftest import ISOLATED_VARIABLES


class Serve:
    """The serve process and the lines it prints, read as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def until(self, wanted: Callable[[str], bool], timeout: float = 30.0) -> str:
        """The first line from now on that is `wanted`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2).rstrip("\n")
            except queue.Empty:
                continue
            self.seen.append(line)
            if wanted(line):
                return line
        raise AssertionError("serve never printed the line wanted; it printed:\n" + "\n".join(self.seen))


def clean_environ() -> dict[str, str]:
    """This machine's environment without any setting the function or the tools read."""
    return {k: v for k, v in os.environ.items() if k not in ISOLATED_VARIABLES}


@contextlib.contextmanager
def serving(*options: str) -> Iterator[Serve]:
    """`python -m sandbox serve --port 0 --function-port FREE OPTIONS`, ended by Ctrl-C."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "serve",
            "--port",
            "0",
            "--function-port",
            str(free_port()),
            *options,
        ],
        cwd=ROOT,
        env={**clean_environ(), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield Serve(process)
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()


@pytest.fixture
def serve() -> Iterator[Serve]:
    with serving("--no-pubsub") as running:
        yield running


def bash(*lines: str) -> subprocess.CompletedProcess[str]:
    """`lines` pasted into a fresh bash in the repository's root."""
    return subprocess.run(
        ["bash", "-c", "\n".join(lines)],
        cwd=ROOT,
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_the_printed_commands_get_a_200_and_a_digest_on_every_channel(serve: Serve, tmp_path: Path) -> None:
    export = serve.until(lambda line: line.startswith("export "))
    framework = serve.until(lambda line: "functions-framework" in line)
    curl = serve.until(lambda line: line.startswith("curl "))
    port = int(framework.rpartition("--port=")[2])
    environ = dict(word.split("=", 1) for word in shlex.split(export)[1:])
    with (tmp_path / "function.log").open("w") as log, FunctionProcess(environ, port=port, log=log):
        answer = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60, check=False)
        assert answer.stdout == "200\n", answer.stderr
        email = serve.until(lambda line: "POST /v3/mail/send -> 202" in line)
        texts = [serve.until(lambda line: "/Messages.json -> 201" in line) for _ in range(2)]
        posted = serve.until(lambda line: "POST /services/" in line)
    assert "new users" in email
    assert email.endswith("to 2 recipient(s)")
    assert all(": Ada Lovelace, Grace Hopper" in text for text in texts)
    assert posted.split(" -> ")[1].startswith("200: 'Acme iOS: ")
    log_text = (tmp_path / "function.log").read_text()
    assert '"outcome": "sent"' in log_text
    # The local guide shows the same line, for the default ports.
    shown = guide_line("export MIXPANEL_PROJECT_ID=")
    assert re.sub(r"127\.0\.0\.1:\d+", "PORT", shown) == re.sub(r"127\.0\.0\.1:\d+", "PORT", export)


@pytest.mark.slow
@pytest.mark.skipif(
    emulator_binary() is None, reason=f"the Pub/Sub emulator is not installed ({INSTALL_PUBSUB})"
)
def test_the_whole_local_path_check_dry_run_and_publish_through_pubsub(tmp_path: Path) -> None:
    with serving() as serve:
        export = serve.until(lambda line: line.startswith("export "))
        framework = serve.until(lambda line: "functions-framework" in line)
        pubsub = serve.until(lambda line: line.startswith("export PUBSUB_EMULATOR_HOST="))
        tools = [serve.until(lambda line: line.startswith(TOOL)) for _ in range(3)]
        assert [tool.split()[3] for tool in tools] == ["check", "run", "publish"]
        port = int(framework.rpartition("--port=")[2])
        environ = dict(word.split("=", 1) for word in shlex.split(export)[1:])
        with (tmp_path / "function.log").open("w") as log, FunctionProcess(environ, port=port, log=log):
            check, dry_run, publish = (bash(export, pubsub, tool) for tool in tools)
            assert check.returncode == 0, check.stdout + check.stderr
            assert "FAIL" not in check.stdout
            assert dry_run.returncode == 0, dry_run.stderr
            assert "Dry run: nothing was sent" in dry_run.stdout
            assert publish.returncode == 0, publish.stderr
            assert (
                'published {"lookback_minutes":60} to projects/local-project/topics/notifierator-trigger'
                in (publish.stdout)
            )
            email = serve.until(lambda line: "POST /v3/mail/send -> 202" in line)
            texts = [serve.until(lambda line: "/Messages.json -> 201" in line) for _ in range(2)]
            posted = serve.until(lambda line: "POST /services/" in line)
    assert email.endswith("to 2 recipient(s)")
    assert all(": Ada Lovelace, Grace Hopper" in text for text in texts)
    assert posted.split(" -> ")[1].startswith("200: 'Acme iOS: ")
    assert '"outcome": "sent"' in (tmp_path / "function.log").read_text()


def guide_line(start: str) -> str:
    """The line of docs/local.md that starts with `start`."""
    guide = (ROOT / "docs" / "local.md").read_text()
    return next(line for line in guide.splitlines() if line.startswith(start))


def test_the_local_guide_uses_the_commands_serve_prints_for_the_default_ports() -> None:
    assert guide_line(".venv/bin/functions-framework") == f"{FUNCTIONS_FRAMEWORK} --port={FUNCTION_PORT}"
    assert guide_line("curl ") == curl_command(FUNCTION_PORT, PAYLOAD.decode())
    for line in tool_lines(PubSubEmulator(port=DEFAULT_PORT + PORTS_AFTER)):
        assert guide_line(line) == line
    environ = dict(word.split("=", 1) for word in shlex.split(guide_line("export MIXPANEL_PROJECT_ID="))[1:])
    urls = ("MIXPANEL_API_URL", "SENDGRID_API_URL", "TWILIO_API_URL", None, "SECRET_MANAGER_API_URL")
    for offset, variable in enumerate(urls, start=1):
        if variable:
            assert environ[variable] == f"http://127.0.0.1:{DEFAULT_PORT + offset}"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            ["--port", "65534"],
            "argument --port: must be 0 (any free ones) or a port from 1 to 65529; got '65534'",
        ),
        (["--port", "70000"], "got '70000'"),
        (["--port", "-1"], "got '-1'"),
        (
            ["--port", "abc"],
            "argument --port: must be 0 (any free ones) or a port from 1 to 65529; got 'abc'",
        ),
        (["--function-port", "0"], "argument --function-port: must be a port from 1 to 65535; got '0'"),
        (["--function-port", "65536"], "got '65536'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_a_bad_port_is_one_line_with_the_fix(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        serve_main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("python -m sandbox serve: ")
    assert says in err


@contextlib.contextmanager
def one_port_taken(offset: int) -> Iterator[tuple[int, int]]:
    """(N, busy): a port held at N + `offset`, the other ports serve takes after N free."""
    for _ in range(20):
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            busy = holder.getsockname()[1]
            base = busy - offset
            if first_busy(base + n for n in range(1, PORTS_AFTER + 1) if base + n != busy) is None:
                yield base, busy
                return
    raise AssertionError("no free block of ports around a held one")


@pytest.mark.parametrize("offset", [1, PORTS_AFTER])  # the Mixpanel stand-in's port, the emulator's
def test_a_port_in_use_is_one_line_with_the_fix_and_nothing_starts(
    offset: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with one_port_taken(offset) as (base, busy):
        assert serve_main(["--port", str(base)]) == 1
    assert capsys.readouterr().out == (
        f"port {busy} is in use (another `make sandbox`?): stop what holds it, or pass --port N for the "
        f"{PORTS_AFTER} ports after N, or --port 0 for any free ones\n"
    )


def test_a_port_in_use_as_a_command_exits_1_without_a_traceback() -> None:
    with one_port_taken(1) as (base, busy):
        done = bash(f"{sys.executable} -m sandbox serve --port {base}")
    assert done.returncode == 1
    assert done.stdout.startswith(f"port {busy} is in use")
    assert done.stderr == ""
