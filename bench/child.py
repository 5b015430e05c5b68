"""One measured job in a fresh process, so its peak RSS is its own: `python -m bench.child MODE CONFIG`.

Modes: `run` calls notifier.run.run once; `fetch` runs the function's Mixpanel client alone; `floor`
fetches and parses the same Mixpanel pages with plain requests. Prints one JSON object.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any


def run(config: dict[str, Any]) -> dict[str, Any]:
    """The function's core, once, as Cloud Functions would call it."""
    from notifier import logs
    from notifier.errors import TransientError
    from notifier.run import run
    from notifier.services import Services

    logs.configure(stream=sys.stderr)
    services = Services()
    _warm_up(services, config["environ"])
    for earlier in config.get("before", []):
        # Runs that happened before the measured one (an earlier hour, for the late-arrival look-back).
        run(
            b'{"lookback_minutes": 60}',
            datetime.fromisoformat(earlier),
            environ=config["environ"],
            services=services,
        )
    started = time.perf_counter()
    try:
        summary = run(
            b'{"lookback_minutes": 60}',
            datetime.fromisoformat(config["published"]),
            environ=config["environ"],
            services=services,
        )
    except TransientError as error:
        # What Pub/Sub would redeliver; the summary line on stderr says why.
        return {
            "seconds": time.perf_counter() - started,
            "outcome": "will_retry",
            "users": 0,
            "pages": None,
            "bytes": None,
            "state_round_trips": None,
            "error": str(error),
        }
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "outcome": summary.outcome,
        "users": summary.users,
        "pages": summary.stats.pages,
        "bytes": summary.stats.bytes_received,
        "state_round_trips": summary.state_round_trips,
        "late_users": summary.late_users,
        "error": summary.error,
    }


def _warm_up(services: Any, environ: dict[str, str]) -> None:
    """Do what a warm instance has already done: import the channel libraries, read the secrets.

    Both belong to the cold start, which bench measures on its own.
    """
    from notifier.retry import Deadline, Retrier, RetryPolicy
    from notifier.settings import Settings

    modules = ("sendgrid", "sendgrid.helpers.mail", "twilio.rest", "twilio.http.http_client", "css_inline")
    for module in (*modules, "notifier.state.firestore"):
        importlib.import_module(module)
    settings = Settings.from_environ(environ)
    retrier = Retrier(RetryPolicy(), Deadline(60), services.transport)
    refs = [settings.mixpanel_secret]
    refs += [settings.email.api_key] if settings.email else []
    refs += [settings.sms.auth_token] if settings.sms else []
    for ref in refs:
        services.secrets.value(ref, retrier, api_url=settings.endpoints.secret_manager)


def fetch(config: dict[str, Any]) -> dict[str, Any]:
    """The function's own Mixpanel client fetching every page of the window, `concurrency` at once."""
    from notifier.mixpanel import MixpanelAuth, MixpanelClient
    from notifier.retry import Deadline, Retrier, RetryPolicy
    from notifier.span import Span
    from notifier.transport import Transport

    client = MixpanelClient(
        base_url=config["url"],
        project_id=int(config["project_id"]),
        auth=MixpanelAuth(config["username"], config["secret"]),
        retrier=Retrier(RetryPolicy(), Deadline(600), Transport()),
        page_concurrency=config["concurrency"],
    )
    window = Span.between(datetime.fromisoformat(config["start"]), datetime.fromisoformat(config["end"]))
    started = time.perf_counter()
    users = sum(1 for _ in client.new_users(window))
    return {"seconds": time.perf_counter() - started, "pages": client.stats.pages, "users": users}


def floor(config: dict[str, Any]) -> dict[str, Any]:
    """The least any client could do: page 0, then the other pages with requests, `concurrency` at once,
    each parsed with json.loads."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from notifier.mixpanel import NAME_PROPERTIES, where_created_in_any
    from notifier.span import Span

    window = Span.between(datetime.fromisoformat(config["start"]), datetime.fromisoformat(config["end"]))
    session = requests.Session()
    form = {
        "where": where_created_in_any([window]),
        "output_properties": json.dumps([*NAME_PROPERTIES, "$created"]),
    }
    auth = (config["username"], config["secret"])
    url = config["url"] + "/api/query/engage"

    def page(number: int, session_id: str | None = None) -> dict[str, Any]:
        data = {**form, "session_id": session_id, "page": str(number)} if session_id else form
        response = session.post(
            url, params={"project_id": config["project_id"]}, data=data, auth=auth, timeout=60
        )
        answer: dict[str, Any] = json.loads(response.content)
        return answer

    started = time.perf_counter()
    first = page(0)
    count = -(-first["total"] // first["page_size"])
    with ThreadPoolExecutor(config.get("concurrency", 1)) as pool:
        rest = list(pool.map(lambda n: page(n, first["session_id"]), range(1, count)))
    received = sum(len(p["results"]) for p in [first, *rest])
    return {"seconds": time.perf_counter() - started, "pages": 1 + len(rest), "users": received}


def peak_rss_mib() -> float:
    """This process's peak resident set, in MiB.

    VmHWM belongs to the address space exec created; ru_maxrss would also count the parent's
    memory at fork time, and the parent here holds 100,000 profiles.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Run the mode named on the command line and print its figures with the peak RSS."""
    mode, raw = sys.argv[1], sys.argv[2]
    result = {"run": run, "fetch": fetch, "floor": floor}[mode](json.loads(raw))
    result["max_rss_mib"] = peak_rss_mib()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
