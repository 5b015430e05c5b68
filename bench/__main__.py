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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox.function import ROOT, FunctionProcess, push_envelope
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.secretmanager import SecretManagerStandIn
from sandbox.sendgrid import SendGridStandIn
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


def profiles(count: int) -> list[dict[str, Any]]:
    """`count` profiles spread over the window, with names and emails of ordinary length."""
    step = 3600 / max(count, 1)
    return [
        profile(
            f"distinct-{n:06d}",
            (WINDOW_START + timedelta(seconds=int(n * step))).strftime("%Y-%m-%dT%H:%M:%S"),
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
    mixpanel: MixpanelStandIn, sendgrid: SendGridStandIn, twilio: TwilioStandIn, secrets: str
) -> dict[str, str]:
    return {
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
    count: int, *, queries_per_hour: int | None = None
) -> Iterator[tuple[dict[str, str], MixpanelStandIn, SendGridStandIn]]:
    """All four stand-ins, Mixpanel serving `count` new users; yields the function's environment."""
    mixpanel = MixpanelStandIn(
        profiles(count),
        username="bench.sa",
        secret=SECRETS["projects/bench/secrets/mixpanel/versions/1"],
        queries_per_hour=queries_per_hour,
    )
    with (
        mixpanel,
        SendGridStandIn(api_key="SG.bench") as sendgrid,
        TwilioStandIn(account_sid=ACCOUNT_SID, auth_token="bench-twilio-token") as twilio,
        SecretManagerStandIn(SECRETS) as secrets,
    ):
        yield environ(mixpanel, sendgrid, twilio, secrets.url), mixpanel, sendgrid


def measure_size(count: int, *, rate_limited: bool) -> dict[str, Any]:
    """One run at `count` users, and the floor for the same pages."""
    with stand_ins(count, queries_per_hour=60 if rate_limited else None) as (env, mixpanel, sendgrid):
        result = child("run", {"environ": env, "published": PUBLISHED.isoformat()})
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
    return {**result, "queries": queries, "email_bytes": email_bytes, "floor_seconds": floor["seconds"]}


def cold_start(repeats: int = 3) -> dict[str, float]:
    """Seconds from process start to the end of the first run: the function, and a no-op."""
    function_times: list[float] = []
    noop_times: list[float] = []
    with stand_ins(10) as (env, _mixpanel, _sendgrid):
        for _ in range(repeats):
            for times, kwargs in (
                (function_times, {}),
                (noop_times, {"target": "noop", "source": ROOT / "bench" / "noop.py"}),
            ):
                started = time.perf_counter()
                with FunctionProcess(env, **kwargs) as function:  # type: ignore[arg-type]
                    response = function.push(push_envelope({"lookback_minutes": 60}))
                    response.raise_for_status()
                    times.append(time.perf_counter() - started)
    return {"function": statistics.median(function_times), "noop": statistics.median(noop_times)}


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
    rows = []
    for count in SIZES:
        print(f"measuring {count:,} users...", file=sys.stderr)
        rows.append((f"{count:,}", measure_size(count, rate_limited=count <= 50_000)))
    print("measuring 100,000 users with the 60 queries/hour limit enforced...", file=sys.stderr)
    rows.append(("100,000, limit on", measure_size(100_000, rate_limited=True)))
    print("measuring cold starts...", file=sys.stderr)
    cold = cold_start()

    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {machine()}.",
        "",
        "| new users | outcome | run (s) | floor (s) | run/floor | Mixpanel queries | MiB received "
        "| peak RSS (MiB) | email request (MiB) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in rows:
        ratio = r["seconds"] / r["floor_seconds"] if r["floor_seconds"] > 0 else float("nan")
        lines.append(
            f"| {label} | {r['outcome']} | {r['seconds']:.2f} | {r['floor_seconds']:.2f} | {ratio:.2f} | "
            f"{r['queries']} | {_mib(r['bytes'])} | {r['max_rss_mib']:.0f} | {_mib(r['email_bytes'])} |"
        )
    lines += [
        "",
        "| cold start (process start to end of first run) | seconds |",
        "|---|---:|",
        f"| the function (secrets from the Secret Manager stand-in) | {cold['function']:.2f} |",
        f"| a no-op function | {cold['noop']:.2f} |",
        f"| ratio | {cold['function'] / cold['noop']:.2f} |",
    ]
    text = "\n".join(lines)
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "results.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
