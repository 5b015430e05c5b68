"""`python -m sandbox serve` (`make sandbox`): the README's local run, done as a newcomer does it.

The printed export line configures a real functions-framework process, the printed curl (run by bash,
as pasted) gets a 200, and the stand-ins report the digest they received on every channel.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.function import ROOT, FunctionProcess, free_port
from sandbox.samples import PAYLOAD
from sandbox.serve import DEFAULT_PORT, FUNCTION_PORT, FUNCTIONS_FRAMEWORK, curl_command
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


@pytest.fixture
def serve() -> Iterator[Serve]:
    environ = {k: v for k, v in os.environ.items() if k not in ISOLATED_VARIABLES}
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--port", "0", "--function-port", str(free_port())],
        cwd=ROOT,
        env={**environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield Serve(process)
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()


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
    # The README shows the same line, for the default ports.
    assert re.sub(r"127\.0\.0\.1:\d+", "PORT", readme_line("export ")) == re.sub(
        r"127\.0\.0\.1:\d+", "PORT", export
    )


def readme_line(start: str) -> str:
    """The line of the README's "Run it locally" section that starts with `start`."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Run it locally with functions-framework", 1)[1].split("\n## ", 1)[0]
    assert "make sandbox" in section
    return next(line for line in section.splitlines() if line.startswith(start))


def test_the_readme_uses_the_commands_serve_prints_for_the_default_ports() -> None:
    assert readme_line(".venv/bin/functions-framework") == f"{FUNCTIONS_FRAMEWORK} --port={FUNCTION_PORT}"
    assert readme_line("curl ") == curl_command(FUNCTION_PORT, PAYLOAD.decode())
    environ = dict(word.split("=", 1) for word in shlex.split(readme_line("export "))[1:])
    urls = ("MIXPANEL_API_URL", "SENDGRID_API_URL", "TWILIO_API_URL", None, "SECRET_MANAGER_API_URL")
    for offset, variable in enumerate(urls, start=1):
        if variable:
            assert environ[variable] == f"http://127.0.0.1:{DEFAULT_PORT + offset}"
