"""Headless Chromium driven over the DevTools protocol on a pipe: pages measured and photographed.

Shared by the email's browser tests and `make demo`. Standard library only: Chromium's
`--remote-debugging-pipe` speaks JSON messages ending in a NUL byte on file descriptors 3 and 4, so no
websocket client or Playwright download is needed. The viewport is set with Emulation, not
`--window-size`, because headless windows are never narrower than 500 px. Nothing leaves the machine:
background networking, component updates, sync and QUIC are off, and pages are local files.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

FLAGS = (
    "--headless",
    "--no-sandbox",  # Chromium refuses to start as root with its sandbox; pages here are our own
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # without these it reaches Google hosts on start
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",  # a phone's scrollbars overlay the page; a desktop's would skew the centring
    "--remote-debugging-pipe",
)
INSTALL_HINT = "apt-get install chromium (make test does it when run as root), or set CHROMIUM"


class BrowserError(RuntimeError):
    """Chromium would not start, answered an error, or took too long."""


@dataclass(frozen=True)
class Viewport:
    """What the page is shown on: CSS pixels, phone or desktop, light or dark."""

    width: int
    height: int
    mobile: bool = False  # a phone: the page's viewport meta applies, as on a real one
    dark: bool = False  # prefers-color-scheme: dark
    scale: float = 1.0  # device pixels per CSS pixel, for screenshots


PHONE = Viewport(390, 844, mobile=True)  # an iPhone 14's CSS size
DESKTOP = Viewport(1200, 800)


def chromium_path() -> str | None:
    """The Chromium to run: $CHROMIUM, else `chromium` or `chromium-browser` on PATH; None without."""
    named = os.environ.get("CHROMIUM")
    if named:
        return shutil.which(named)
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    """One headless Chromium process with one page; `show` loads HTML, then measure or photograph it."""

    def __init__(self, executable: str | None = None, *, timeout: float = 30.0) -> None:
        self.executable = executable or chromium_path()
        self.timeout = timeout
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._pid: int | None = None
        self._to_browser = self._from_browser = -1
        self._buffer = b""
        self._events: deque[dict[str, Any]] = deque()
        self._next_id = 0
        self._session = ""
        self._pages = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Self:
        """Start Chromium with a fresh profile and attach to its page."""
        if self.executable is None:
            raise BrowserError(f"Chromium is not installed ({INSTALL_HINT})")
        self._workdir = tempfile.TemporaryDirectory(prefix="notifier-chromium-")
        profile = Path(self._workdir.name) / "profile"
        commands_read, commands_write = _pipe()
        answers_read, answers_write = _pipe()
        log = os.open(Path(self._workdir.name) / "chromium.log", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            # posix_spawn, not Popen: the pipe ends must land on exactly fds 3 and 4 in the child, and
            # a preexec_fn is unsafe with the stand-ins' threads running.
            self._pid = os.posix_spawn(
                self.executable,
                [self.executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                dict(os.environ),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, log, 1),
                    (os.POSIX_SPAWN_DUP2, log, 2),
                    (os.POSIX_SPAWN_DUP2, commands_read, 3),
                    (os.POSIX_SPAWN_DUP2, answers_write, 4),
                ],
                setsid=True,  # its own process group: stop() ends the renderers too
            )
        finally:
            for fd in (log, commands_read, answers_write):
                os.close(fd)
        self._to_browser, self._from_browser = commands_write, answers_read
        try:
            targets = self._call("Target.getTargets")["targetInfos"]
            page = next(t["targetId"] for t in targets if t["type"] == "page")
            self._session = self._call("Target.attachToTarget", targetId=page, flatten=True)["sessionId"]
            self._call("Page.enable")
        except BrowserError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close the browser (politely, then by its process group) and remove its profile."""
        if self._pid is not None:
            with contextlib.suppress(BrowserError, OSError):
                self._send("Browser.close", {}, session=False)
            _exited(self._pid, 5.0)
            # Its renderers share its process group: none may outlive it. The group is ended while
            # the browser's own PID is still held (exited, not yet reaped), so it cannot be reused.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = None
        for fd in (self._to_browser, self._from_browser):
            if fd >= 0:
                os.close(fd)
        self._to_browser = self._from_browser = -1
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- pages ---------------------------------------------------------------------------------
    def show(self, html: str, viewport: Viewport) -> None:
        """Load `html` as a local file on `viewport` and wait until it and its fonts are laid out."""
        assert self._workdir is not None, "start() the browser first"
        self._call(
            "Emulation.setDeviceMetricsOverride",
            width=viewport.width,
            height=viewport.height,
            deviceScaleFactor=viewport.scale,
            mobile=viewport.mobile,
        )
        scheme = "dark" if viewport.dark else "light"
        self._call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": scheme}])
        self._pages += 1
        page = Path(self._workdir.name) / f"page-{self._pages}.html"
        page.write_text(html, encoding="utf-8")
        self._events.clear()
        navigated = self._call("Page.navigate", url=page.as_uri())
        if "errorText" in navigated:
            raise BrowserError(f"could not load the page: {navigated['errorText']}")
        self._wait_for("Page.loadEventFired")
        self.evaluate("document.fonts.ready.then(() => true)")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited), as JSON."""
        answer = self._call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise BrowserError(f"the page's script failed: {details.get('exception', details)}")
        return answer["result"].get("value")

    def screenshot(self) -> bytes:
        """A PNG of the first screenful, cut short where the page ends sooner (no empty backdrop)."""
        size = self.evaluate(
            "({width: innerWidth, height: innerHeight,"
            " bottom: Math.ceil(document.body.getBoundingClientRect().bottom)})"
        )
        clip = {
            "x": 0,
            "y": 0,
            "width": size["width"],
            "height": min(size["height"], size["bottom"]),
            "scale": 1,
        }
        return base64.b64decode(self._call("Page.captureScreenshot", format="png", clip=clip)["data"])

    # -- the protocol --------------------------------------------------------------------------
    def _call(self, method: str, **params: Any) -> dict[str, Any]:
        return self._send(method, params, session=method.split(".")[0] not in ("Target", "Browser"))

    def _send(self, method: str, params: dict[str, Any], *, session: bool) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        try:
            os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        except OSError as error:
            raise BrowserError(f"Chromium is gone ({error}){self._log_tail()}") from error
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._receive(deadline, method)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error'].get('message')}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            if "method" in answer:
                self._events.append(answer)

    def _wait_for(self, event: str) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            while self._events:
                if self._events.popleft().get("method") == event:
                    return
            self._events.append(self._receive(deadline, event))

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(left, 0))
            if not ready:
                raise BrowserError(f"no answer to {waiting_for} within {self.timeout:g} s{self._log_tail()}")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium closed its pipe{self._log_tail()}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def _log_tail(self) -> str:
        if self._workdir is None:
            return ""
        log = Path(self._workdir.name) / "chromium.log"
        lines = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
        return (": " + " | ".join(lines)) if lines else ""


def _pipe() -> tuple[int, int]:
    """A pipe whose ends are numbered 10 or more, so moving them onto fds 3 and 4 cannot clobber them."""
    ends = []
    for fd in os.pipe():
        ends.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return ends[0], ends[1]


def _exited(pid: int, timeout: float) -> bool:
    """Wait up to `timeout` for our child `pid` to exit, leaving it to be reaped; True once it has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        time.sleep(0.05)
    return False
