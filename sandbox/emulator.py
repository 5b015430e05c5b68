"""gcloud's local emulators (Pub/Sub, Firestore): found under the SDK, run as a process group."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from functools import cache
from pathlib import Path
from typing import IO, Self

from sandbox.function import free_port


@cache
def sdk_root() -> Path | None:
    """The gcloud SDK's root directory, or None where gcloud is not installed."""
    gcloud = shutil.which("gcloud")
    # bin/gcloud sits under the SDK root; `gcloud info`, the authoritative answer, takes seconds, so
    # it is asked only when the quick guesses miss.
    quick = [
        os.environ.get("CLOUDSDK_ROOT_DIR", ""),
        str(Path(gcloud).resolve().parent.parent) if gcloud else "",
    ]
    for root in filter(None, quick):
        if (Path(root) / "platform").is_dir():
            return Path(root)
    if gcloud:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            info = [gcloud, "info", "--format=value(installation.sdk_root)"]
            root = subprocess.run(
                info, capture_output=True, text=True, timeout=60, check=False
            ).stdout.strip()
            if root and (Path(root) / "platform").is_dir():
                return Path(root)
    return None


class Emulator:
    """One emulator process on a loopback port (a free one unless given); subclasses say how to start it."""

    name = "emulator"

    def __init__(self, *, log: IO[str] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:  # pragma: no cover - abstract
        """The argv that starts the emulator on `self.port`."""
        raise NotImplementedError

    def start(self, timeout: float = 90.0) -> Self:
        """Start the emulator and wait until it accepts connections."""
        self._process = subprocess.Popen(
            self.command(),
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the launcher starts java
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the {self.name} emulator exited with {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"the {self.name} emulator did not listen within {timeout}s")

    def stop(self) -> None:
        """End the emulator's process group, found by its PID."""
        if self._process is None:
            return
        try:
            os.killpg(self._process.pid, signal.SIGTERM)
            self._process.wait(timeout=15)
        except ProcessLookupError:
            pass  # already gone
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        self._process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
