"""`make bench`: the function against the Mixpanel stand-in at growing sizes, and its cold start.

Every figure is measured here and printed as a Markdown table (also written to
bench-output/results.md). Nothing here is asserted: the tests never time anything.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sandbox.function import ROOT, FunctionProcess, push_envelope, run_summaries
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.secretmanager import SecretManagerStandIn
from sandbox.sendgrid import SendGridStandIn
from sandbox.slack import SlackStandIn
from sandbox.twilio import ACCOUNT_SID, TwilioStandIn

SIZES = (0, 1_000, 10_000, 50_000, 100_000)
OUTPUT = ROOT / "bench-output"
PUBLISHED = datetime.now(UTC).replace(second=30, microsecond=0)
WINDOW_END = PUBLISHED.replace(second=0)
WINDOW_START = WINDOW_END - timedelta(minutes=60)
SECRETS = {
    "projects/bench/secrets/mixpanel/versions/1": "bench-mixpanel-secret",
    "projects/bench/secrets/sendgrid/versions/1": "SG.bench",
    "projects/bench/secrets/twilio/versions/1": "bench-twilio-token",
}


def profiles(
    count: int, *, hour_start: datetime = WINDOW_START, prefix: str = "distinct"
) -> list[dict[str, Any]]:
    """`count` profiles spread over an hour, with names and emails of ordinary length."""
    step = 3600 / max(count, 1)
    return [
        profile(
            f"{prefix}-{n:06d}",
            (hour_start + timedelta(seconds=int(n * step))).strftime("%Y-%m-%dT%H:%M:%S"),
            name=f"Firstname{n} Lastname{n % 97}",
            email=f"first.last{n}@example.com",
        )
        for n in range(count)
    ]


def child(mode: str, config: dict[str, Any]) -> dict[str, Any]:
    """Run bench.child in a fresh interpreter and return its JSON."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.child", mode, json.dumps(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def environ(
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    slack: SlackStandIn,
    secrets: str,
) -> dict[str, str]:
    return {
        "SLACK_WEBHOOK_URL": slack.webhook_url,
        "PROJECT_LABEL": "Bench",
        "MIXPANEL_PROJECT_ID": str(mixpanel.project_id),
        "MIXPANEL_SERVICE_ACCOUNT": "bench.sa",
        "MIXPANEL_SECRET": "projects/bench/secrets/mixpanel/versions/1",
        "EMAIL_TO": "growth@example.com",
        "EMAIL_FROM": "alerts@example.com",
        "SENDGRID_API_KEY": "projects/bench/secrets/sendgrid/versions/1",
        "SMS_TO": "+14155550100",
        "SMS_FROM": "+14155550199",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": "projects/bench/secrets/twilio/versions/1",
        "MAX_MESSAGE_AGE_MINUTES": "10080",
        "MIXPANEL_API_URL": mixpanel.url,
        "SENDGRID_API_URL": sendgrid.url,
        "TWILIO_API_URL": twilio.url,
        "SECRET_MANAGER_API_URL": secrets,
    }


@contextmanager
def stand_ins(
    count: int, *, queries_per_hour: int | None = None, previous_hour: int = 0
) -> Iterator[tuple[dict[str, str], MixpanelStandIn, SendGridStandIn]]:
    """Every stand-in, Mixpanel serving `count` new users (and `previous_hour` in the hour before)."""
    earlier = profiles(previous_hour, hour_start=WINDOW_START - timedelta(hours=1), prefix="earlier")
    mixpanel = MixpanelStandIn(
        earlier + profiles(count),
        username="bench.sa",
        secret=SECRETS["projects/bench/secrets/mixpanel/versions/1"],
        queries_per_hour=queries_per_hour,
    )
    with (
        mixpanel,
        SendGridStandIn(api_key="SG.bench") as sendgrid,
        TwilioStandIn(account_sid=ACCOUNT_SID, auth_token="bench-twilio-token") as twilio,
        SecretManagerStandIn(SECRETS) as secrets,
        SlackStandIn() as slack,
    ):
        yield environ(mixpanel, sendgrid, twilio, slack, secrets.url), mixpanel, sendgrid


def measure_size(
    count: int, *, rate_limited: bool, state: dict[str, str] | None = None, previous_hour: int = 0
) -> dict[str, Any]:
    """One run at `count` users, and the floor for the same pages.

    `state` is the history's environment (the Firestore emulator's); with `previous_hour` users, an
    earlier run covers the hour before first, so the measured run looks back at it for late arrivals.
    """
    limit = 60 if rate_limited else None
    with stand_ins(count, queries_per_hour=limit, previous_hour=previous_hour) as (env, mixpanel, sendgrid):
        env = {**env, **(state or {})}
        before = [(PUBLISHED - timedelta(hours=1)).isoformat()] if previous_hour else []
        result = child("run", {"environ": env, "published": PUBLISHED.isoformat(), "before": before})
        email_bytes = sum(len(r.body) for r in sendgrid.requests)
        queries = len(mixpanel.requests)
        mixpanel.queries_per_hour = None  # the floor is not the function's to pay for
        floor = child(
            "floor",
            {
                "url": mixpanel.url,
                "project_id": str(mixpanel.project_id),
                "username": "bench.sa",
                "secret": mixpanel.secret,
                "start": WINDOW_START.isoformat(),
                "end": WINDOW_END.isoformat(),
            },
        )
    if previous_hour:
        queries = result["pages"] or queries  # the measured run's own queries, not the earlier run's
        email_bytes = len(sendgrid.requests[-1].body) if sendgrid.requests else 0
    return {**result, "queries": queries, "email_bytes": email_bytes, "floor_seconds": floor["seconds"]}


# The code as it was when the run-history issue was filed: its cold-start budget is relative to this.
BEFORE_HISTORY = "7cd7865"


def cold_start(state: dict[str, str] | None, repeats: int = 7) -> dict[str, dict[str, float]]:
    """Seconds from process start to the end of the first run, median of `repeats`, interleaved: the
    function (memory history, and Firestore when `state` is given), the code before the history when
    git can check it out, and a no-op. The Firestore entry also has the run's own state_ms."""
    times: dict[str, list[float]] = {}
    waited: list[float] = []
    with stand_ins(10) as (env, _mixpanel, _sendgrid), _checkout(BEFORE_HISTORY) as before:
        variants: list[tuple[str, dict[str, Any], dict[str, str]]] = [("function", {}, env)]
        if state:
            variants.append(("function, Firestore history", {}, {**env, **state}))
        if before:
            checkout = {"source": before / "main.py", "cwd": before}
            variants.append((f"before the history ({BEFORE_HISTORY})", checkout, env))
        variants.append(("noop", {"target": "noop", "source": ROOT / "bench" / "noop.py"}, env))
        for _ in range(repeats):
            for name, kwargs, variables in variants:
                with tempfile.TemporaryFile("w+") as log:
                    started = time.perf_counter()
                    # A message of its own each time: the history would otherwise find the window covered.
                    envelope = push_envelope({"lookback_minutes": 60})
                    with FunctionProcess(variables, log=log, **kwargs) as function:
                        function.push(envelope).raise_for_status()
                        times.setdefault(name, []).append(time.perf_counter() - started)
                    if "Firestore" in name:
                        waited.append(_state_ms(log) / 1000)
                if state:
                    _clear_firestore(state)
    result = {name: {"seconds": statistics.median(values)} for name, values in times.items()}
    if waited:
        result["function, Firestore history"]["waited"] = statistics.median(waited)
    return result


def _state_ms(log: IO[str]) -> float:
    """The state_ms of the run summary in a function's log."""
    log.seek(0)
    return float(next(iter(run_summaries(log.read())), {}).get("state_ms", 0))


@contextmanager
def _checkout(revision: str) -> Iterator[Path | None]:
    """A temporary checkout of `revision`, or None where git or the commit is missing (a shallow clone)."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "before"
        added = subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), revision],
            capture_output=True,
            check=False,
        )
        if added.returncode != 0:
            print(f"no checkout of {revision}: the before-the-history row is left out", file=sys.stderr)
            yield None
            return
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)


def _clear_firestore(state: dict[str, str]) -> None:
    import requests

    host, project = state["FIRESTORE_EMULATOR_HOST"], state["GOOGLE_CLOUD_PROJECT"]
    database = state.get("FIRESTORE_DATABASE", "(default)")
    url = f"http://{host}/emulator/v1/projects/{project}/databases/{database}/documents"
    requests.delete(url, timeout=30).raise_for_status()


def _mib(value: int | None) -> str:
    return "-" if not value else f"{value / 2**20:.2f}"


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {system}"


def main() -> int:
    """Measure everything and print the tables."""
    with _firestore() as state:
        rows = []
        for count in SIZES:
            print(f"measuring {count:,} users...", file=sys.stderr)
            rows.append((f"{count:,}", measure_size(count, rate_limited=count <= 50_000)))
        print("measuring 100,000 users with the 60 queries/hour limit enforced...", file=sys.stderr)
        rows.append(("100,000, limit on", measure_size(100_000, rate_limited=True)))
        if state:
            print("measuring 100,000 users with the history in Firestore (emulator)...", file=sys.stderr)
            rows.append(
                ("100,000, Firestore history", measure_size(100_000, rate_limited=False, state=state))
            )
            _clear_firestore(state)
            print("measuring the late-arrival look-back: 10,000 users an hour, two hours...", file=sys.stderr)
            late = measure_size(10_000, rate_limited=True, state=state, previous_hour=10_000)
            rows.append(("10,000 after an hour of 10,000, Firestore", late))
            _clear_firestore(state)
        print("measuring cold starts...", file=sys.stderr)
        cold = cold_start(state)

    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {machine()}.",
        "",
        "| new users | outcome | run (s) | floor (s) | run/floor | Mixpanel queries | MiB received "
        "| peak RSS (MiB) | email request (MiB) | state round trips |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in rows:
        ratio = r["seconds"] / r["floor_seconds"] if r["floor_seconds"] > 0 else float("nan")
        trips = r.get("state_round_trips")
        lines.append(
            f"| {label} | {r['outcome']} | {r['seconds']:.2f} | {r['floor_seconds']:.2f} | {ratio:.2f} | "
            f"{r['queries']} | {_mib(r['bytes'])} | {r['max_rss_mib']:.0f} | {_mib(r['email_bytes'])} "
            f"| {trips if trips else '-'} |"
        )
    lines += [
        "",
        "| cold start (process start to end of first run) | seconds | ratio to the no-op |",
        "|---|---:|---:|",
    ]
    noop = cold["noop"]["seconds"]
    for name, figures in cold.items():
        seconds = figures["seconds"]
        waited = f" (of which {figures['waited']:.2f} s waiting on Firestore)" if "waited" in figures else ""
        lines.append(f"| {name} | {seconds:.2f}{waited} | {seconds / noop:.2f} |")
    text = "\n".join(lines)
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "results.md").write_text(text + "\n")
    print(text)
    return 0


@contextmanager
def _firestore() -> Iterator[dict[str, str] | None]:
    """The Firestore emulator's environment for the history rows, or None where it is missing."""
    from sandbox.firestore import FirestoreEmulator, emulator_available

    if not emulator_available():
        print("the Firestore emulator is not installed: the Firestore rows are left out", file=sys.stderr)
        yield None
        return
    with FirestoreEmulator() as emulator:
        yield {"STATE_STORE": "firestore", **emulator.environ}


if __name__ == "__main__":
    sys.exit(main())
