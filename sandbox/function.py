"""Run `main.notify` in a real functions-framework process and push Pub/Sub messages to it."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port that takes connections and never answers (a hung service), while in use."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port: int = listener.getsockname()[1]
        yield port


def push_envelope(
    data: bytes | Mapping[str, Any], *, publish_time: datetime | None = None, message_id: str | None = None
) -> dict[str, Any]:
    """The JSON body Pub/Sub push sends: the message (base64 data, id, publishTime) and subscription."""
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    when = (publish_time or datetime.now(UTC)).astimezone(UTC)
    return {
        "message": {
            "data": base64.b64encode(raw).decode(),
            "messageId": message_id or uuid.uuid4().hex[:16],
            "publishTime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "attributes": {},
        },
        "subscription": "projects/local/subscriptions/notifier-push",
    }


class FunctionProcess:
    """`functions-framework --target notify` on a free port, with the given environment."""

    def __init__(
        self,
        environ: Mapping[str, str],
        *,
        log: IO[str] | None = None,
        port: int | None = None,
        target: str = "notify",
        source: Path = ROOT / "main.py",
        cwd: Path = ROOT,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._environ = dict(environ)
        self._target = target
        self._source = source
        self._cwd = cwd  # another checkout's root, for the benchmark's before-and-after
        self._log = log
        self._process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> FunctionProcess:
        """Start the process and wait until it accepts connections."""
        executable = (
            shutil.which("functions-framework", path=str(Path(sys.executable).parent))
            or "functions-framework"
        )
        env = {**_base_environment(), **self._environ, "PYTHONUNBUFFERED": "1"}
        self._process = subprocess.Popen(
            [
                executable,
                f"--target={self._target}",
                f"--source={self._source}",
                "--signature-type=cloudevent",
                "--host=127.0.0.1",
                f"--port={self.port}",
            ],
            cwd=self._cwd,
            env=env,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"functions-framework exited with {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.005)  # fine-grained: the benchmark times cold starts through this wait
        self.stop()
        raise TimeoutError(f"functions-framework did not listen on {self.port} within {timeout}s")

    def push(self, envelope: Mapping[str, Any], timeout: float = 60.0) -> requests.Response:
        """POST a Pub/Sub push envelope, as a push subscription would."""
        return requests.post(self.url, json=envelope, timeout=timeout)

    def stop(self) -> None:
        """Terminate the process and wait for it."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> FunctionProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _base_environment() -> dict[str, str]:
    # Only what a process needs to run; none of the caller's notifier settings leak in.
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "PYENV_ROOT")
    return {k: v for k, v in os.environ.items() if k in keep}


def run_summaries(log: str) -> list[dict[str, Any]]:
    """The run summaries in a function's log output, oldest first (other lines are skipped)."""
    found = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == "run_summary":
            found.append(entry)
    return found
