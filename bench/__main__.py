"""`make bench`: the function against the Mixpanel stand-in at growing sizes, its pages fetched a few at
a time against pages as slow as Mixpanel's, the function's own memory, and its cold start.

Every figure is measured here and printed as a Markdown table (also written to
bench-output/results.md). Nothing here is asserted: the tests never time anything.
"""

from __future__ import annotations

import json
import math
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

import requests

from notifier.mixpanel import DEFAULT_PAGE_CONCURRENCY
from sandbox.function import ROOT, FunctionProcess, push_envelope, run_summaries
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.secretmanager import SecretManagerStandIn
from sandbox.sendgrid import SendGridStandIn
from sandbox.slack import SlackStandIn
from sandbox.twilio import ACCOUNT_SID, TwilioStandIn

SIZES = (0, 1_000, 10_000, 50_000, 100_000)
PAGING_USERS = 100_000
MEMORY_SIZES = (10, 10_000, 100_000, 300_000, 600_000)  # the worker's peak as windows grow (no page delay)
PAGE_DELAY = 0.5  # real Engage pages take hundreds of milliseconds
SLOW_PAGE_DELAY = 2.0
SLOW_PAGING_USERS = 30_000
RUN_BUDGET = 240.0  # RUN_BUDGET_SECONDS' default
EXTRA = ("utm_source", "plan", "company", "country", "seats")
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
    count: int, *, hour_start: datetime = WINDOW_START, prefix: str = "distinct", extra: bool = False
) -> list[dict[str, Any]]:
    """`count` profiles spread over an hour, with names and emails of ordinary length, and with
    `extra` the EXTRA properties too."""
    step = 3600 / max(count, 1)
    made = [
        profile(
            f"{prefix}-{n:06d}",
            (hour_start + timedelta(seconds=int(n * step))).strftime("%Y-%m-%dT%H:%M:%S"),
            name=f"Firstname{n} Lastname{n % 97}",
            email=f"first.last{n}@example.com",
        )
        for n in range(count)
    ]
    for n, made_one in enumerate(made if extra else []):
        values = (f"source-{n % 7}", ("free", "pro", "team")[n % 3], f"Company {n % 500}", "DE", n % 50)
        made_one["$properties"].update(zip(EXTRA, values, strict=True))
    return made


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
    count: int,
    *,
    queries_per_hour: int | None = None,
    previous_hour: int = 0,
    page_delay: float = 0.0,
    extra: bool = False,
) -> Iterator[tuple[dict[str, str], MixpanelStandIn, SendGridStandIn]]:
    """Every stand-in, Mixpanel serving `count` new users (and `previous_hour` in the hour before)."""
    earlier = profiles(previous_hour, hour_start=WINDOW_START - timedelta(hours=1), prefix="earlier")
    mixpanel = MixpanelStandIn(
        earlier + profiles(count, extra=extra),
        username="bench.sa",
        secret=SECRETS["projects/bench/secrets/mixpanel/versions/1"],
        queries_per_hour=queries_per_hour,
        page_delay=page_delay,
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
        queries = mixpanel.counted - len(before)  # an earlier run's window is one counted query
        mixpanel.queries_per_hour = None  # the floor is not the function's to pay for
        floor = child("floor", {**_client_config(mixpanel), "concurrency": DEFAULT_PAGE_CONCURRENCY})
    if previous_hour:
        email_bytes = len(sendgrid.requests[-1].body) if sendgrid.requests else 0
    return {**result, "queries": queries, "email_bytes": email_bytes, "floor_seconds": floor["seconds"]}


def _client_config(mixpanel: MixpanelStandIn) -> dict[str, Any]:
    """What bench.child's fetch and floor need to ask the stand-in for the bench window."""
    return {
        "url": mixpanel.url,
        "project_id": str(mixpanel.project_id),
        "username": "bench.sa",
        "secret": mixpanel.secret,
        "start": WINDOW_START.isoformat(),
        "end": WINDOW_END.isoformat(),
    }


def paging(count: int = PAGING_USERS) -> dict[str, dict[str, Any]]:
    """Every page of `count` users, each answered after PAGE_DELAY: the function's client one at a time
    and at its default, and the floor (plain requests) at the same default."""
    rows: dict[str, dict[str, Any]] = {}
    variants = (
        ("the function's client, 1 at once", "fetch", 1),
        (
            f"the function's client, {DEFAULT_PAGE_CONCURRENCY} at once (default)",
            "fetch",
            DEFAULT_PAGE_CONCURRENCY,
        ),
        (f"floor: plain requests, {DEFAULT_PAGE_CONCURRENCY} at once", "floor", DEFAULT_PAGE_CONCURRENCY),
    )
    with MixpanelStandIn(
        profiles(count), username="bench.sa", secret="bench-mixpanel-secret", page_delay=PAGE_DELAY
    ) as mixpanel:
        for name, mode, concurrency in variants:
            counted = mixpanel.counted
            rows[name] = child(mode, {**_client_config(mixpanel), "concurrency": concurrency})
            rows[name]["counted"] = mixpanel.counted - counted
    return rows


def slow_paging(count: int = SLOW_PAGING_USERS) -> dict[str, Any]:
    """Every page of `count` users, each answered after SLOW_PAGE_DELAY, the function's client at its
    default."""
    with MixpanelStandIn(
        profiles(count), username="bench.sa", secret="bench-mixpanel-secret", page_delay=SLOW_PAGE_DELAY
    ) as mixpanel:
        result = child("fetch", {**_client_config(mixpanel), "concurrency": DEFAULT_PAGE_CONCURRENCY})
        return {**result, "counted": mixpanel.counted}


def through_the_function(count: int, *, page_delay: float, budget: float = RUN_BUDGET) -> dict[str, Any]:
    """One scheduled run through functions-framework, EXTRA_PROPERTIES set: the HTTP status Pub/Sub gets,
    the run summary, and the worker's RSS before the run and at its peak (what Cloud Functions counts)."""
    with stand_ins(count, page_delay=page_delay, extra=True) as (env, mixpanel, _sendgrid):
        env = {**env, "EXTRA_PROPERTIES": ",".join(EXTRA), "RUN_BUDGET_SECONDS": str(int(budget))}
        with tempfile.TemporaryFile("w+") as log:
            with FunctionProcess(env, log=log) as function:
                # The port is open before gunicorn's worker has loaded main.py: a request it refuses
                # (not a Pub/Sub push) waits for that, and runs nothing.
                requests.get(function.url, timeout=30)
                idle = worker_mib(function.port, "VmRSS")
                started = time.perf_counter()
                status = function.push(
                    push_envelope({"lookback_minutes": 60}, publish_time=PUBLISHED), timeout=900
                ).status_code
                seconds = time.perf_counter() - started
                peak = worker_mib(function.port, "VmHWM")
            log.seek(0)
            summary = next(iter(run_summaries(log.read())), {})
        return {
            "status": status,
            "seconds": seconds,
            "idle_mib": idle,
            "peak_mib": peak,
            "counted": mixpanel.counted,
            "summary": summary,
        }


def worker_mib(port: int, field: str) -> float:
    """A memory figure of /proc's status (VmRSS now, VmHWM the peak) of the functions-framework worker
    serving `port`: gunicorn's forked child, or the process itself where it serves alone. The harness
    and the stand-ins are not in it."""
    pids = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if f"--port={port}".encode() in cmdline.read_bytes():
                stat = (cmdline.parent / "stat").read_text()
                pids[int(cmdline.parent.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        except OSError:
            continue  # a process that ended while being read
    workers = [pid for pid, parent in pids.items() if parent in pids] or list(pids)
    figures = [_status_mib(Path("/proc") / str(pid) / "status", field) for pid in workers]
    return max(figures, default=0.0)


def _status_mib(status: Path, field: str) -> float:
    for line in status.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def fits(measured: dict[str, Any], delay: float, rest: float) -> int:
    """How many users a window may hold for its pages to arrive within the run's budget at `delay` a
    page, 1,000 a page, from the pace `measured` at that delay (the default's rounds of pages): the
    time left after the rest of the run (`rest` seconds: rendering, sending) holds the first page,
    then rounds of DEFAULT_PAGE_CONCURRENCY pages."""
    rounds = math.ceil((measured["pages"] - 1) / DEFAULT_PAGE_CONCURRENCY) + 1
    pace = measured["seconds"] / (rounds * delay)  # 1.0 when the pages cost nothing but their delay
    left_rounds = int((RUN_BUDGET - rest) / (delay * pace)) - 1
    return (1 + max(left_rounds, 0) * DEFAULT_PAGE_CONCURRENCY) * 1000


# The code as it was when the run-history issue was filed: its cold-start budget is relative to this.
BEFORE_HISTORY = "7cd7865"


def cold_start(state: dict[str, str] | None, repeats: int = 15) -> dict[str, dict[str, float]]:
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
    print(f"measuring {PAGING_USERS:,} users' pages at {PAGE_DELAY} s each...", file=sys.stderr)
    pages = paging()
    print(f"measuring {SLOW_PAGING_USERS:,} users' pages at {SLOW_PAGE_DELAY} s each...", file=sys.stderr)
    slow = slow_paging()
    print("measuring the function's own process at 100,000 users...", file=sys.stderr)
    function = through_the_function(PAGING_USERS, page_delay=PAGE_DELAY)
    print("measuring the function's own process as the window grows...", file=sys.stderr)
    growing = {count: through_the_function(count, page_delay=0.0) for count in MEMORY_SIZES}
    print("measuring a window too large for its run's time...", file=sys.stderr)
    doomed = through_the_function(40_000, page_delay=SLOW_PAGE_DELAY, budget=20)

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
    lines += ["", *paging_table(pages, slow), "", *function_table(function, pages, slow, doomed)]
    lines += ["", *memory_table(growing)]
    text = "\n".join(lines)
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "results.md").write_text(text + "\n")
    print(text)
    return 0


def paging_table(rows: dict[str, dict[str, Any]], slow: dict[str, Any]) -> list[str]:
    """The pages of PAGING_USERS users, each answered after PAGE_DELAY, fetched three ways; then slower
    pages at the default."""
    floor = rows[f"floor: plain requests, {DEFAULT_PAGE_CONCURRENCY} at once"]["seconds"]
    lines = [
        f"| {PAGING_USERS:,} users' pages, each answered after {PAGE_DELAY} s | seconds | pages "
        "| pages a second | counted queries | ratio to the floor |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    slow_name = f"{SLOW_PAGING_USERS:,} users, each page after {SLOW_PAGE_DELAY} s, the default"
    for name, r in [*rows.items(), (slow_name, slow)]:
        ratio = f"{r['seconds'] / floor:.2f}" if r is not slow else "-"
        pace = f"{r['pages'] / r['seconds']:.2f}"
        lines.append(f"| {name} | {r['seconds']:.2f} | {r['pages']} | {pace} | {r['counted']} | {ratio} |")
    return lines


def function_table(
    function: dict[str, Any], pages: dict[str, dict[str, Any]], slow: dict[str, Any], doomed: dict[str, Any]
) -> list[str]:
    """The function's own process at PAGING_USERS users, what fits the budget, and what happens past it."""
    summary = function["summary"]
    lines = [
        f"| functions-framework, {PAGING_USERS:,} users, {len(EXTRA)} EXTRA_PROPERTIES, {PAGE_DELAY} s a page"
        " | HTTP | outcome | run (s) | worker RSS before the run (MiB) | worker peak RSS (MiB) "
        "| counted queries |",
        "|---|---:|---|---:|---:|---:|---:|",
        f"| one scheduled run | {function['status']} | {summary.get('outcome')} | {function['seconds']:.2f} "
        f"| {function['idle_mib']:.1f} | {function['peak_mib']:.1f} | {function['counted']} |",
        "",
    ]
    default = pages[f"the function's client, {DEFAULT_PAGE_CONCURRENCY} at once (default)"]
    rest = max(function["seconds"] - default["seconds"], 0.0)  # the run's time beyond its pages
    for delay, measured in ((PAGE_DELAY, default), (SLOW_PAGE_DELAY, slow)):
        lines.append(
            f"At {delay} s a page, a window of up to about {fits(measured, delay, rest):,} users "
            f"fits the {RUN_BUDGET:.0f} s run budget (from the pace measured at {delay} s, "
            f"{DEFAULT_PAGE_CONCURRENCY} pages at once; memory grows with the window too: see the "
            "worker's peak below)."
        )
    done = doomed["summary"]
    lines += [
        "",
        f"Past the budget (40,000 users at {SLOW_PAGE_DELAY} s a page, RUN_BUDGET_SECONDS=20): HTTP "
        f"{doomed['status']} (acked, not redelivered), outcome {done.get('outcome')} after "
        f"{doomed['seconds']:.2f} s, {doomed['counted']} counted query; the ERROR line says: "
        f"{done.get('error')}",
    ]
    return lines


def memory_table(growing: dict[int, dict[str, Any]]) -> list[str]:
    """The worker's peak as the window grows, pages answered at once (memory does not wait on them)."""
    lines = [
        f"| functions-framework, {len(EXTRA)} EXTRA_PROPERTIES, no page delay: new users | outcome "
        "| run (s) | worker peak RSS (MiB) | MiB per 1,000 more users |",
        "|---:|---|---:|---:|---:|",
    ]
    previous: tuple[int, float] | None = None
    for count, r in growing.items():
        peak = r["peak_mib"]
        slope = f"{(peak - previous[1]) / (count - previous[0]) * 1000:.2f}" if previous else "-"
        lines.append(
            f"| {count:,} | {r['summary'].get('outcome')} | {r['seconds']:.2f} | {peak:.1f} | {slope} |"
        )
        previous = (count, peak)
    return lines


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
