"""One measured job in a fresh process, so its peak RSS is its own: `python -m bench.child MODE CONFIG`.

Modes: `run` calls notifier.run.run once; `floor` fetches and parses the same Mixpanel pages with
plain requests. Prints one JSON object.
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


def floor(config: dict[str, Any]) -> dict[str, Any]:
    """The least any client could do: fetch every page with requests and json.loads it."""
    import requests

    from notifier.mixpanel import OUTPUT_PROPERTIES, where_created_in_any
    from notifier.trigger import Window

    window = Window(datetime.fromisoformat(config["start"]), datetime.fromisoformat(config["end"]))
    session = requests.Session()
    form = {"where": where_created_in_any([window]), "output_properties": json.dumps(list(OUTPUT_PROPERTIES))}
    auth = (config["username"], config["secret"])
    url = config["url"] + "/api/query/engage"
    started = time.perf_counter()
    pages = received = 0
    while True:
        response = session.post(
            url, params={"project_id": config["project_id"]}, data=form, auth=auth, timeout=60
        )
        page = json.loads(response.content)
        pages += 1
        received += len(page["results"])
        if len(page["results"]) < page["page_size"] or received >= page.get("total", received + 1):
            break
        form = {**form, "session_id": page["session_id"], "page": str(page["page"] + 1)}
    return {"seconds": time.perf_counter() - started, "pages": pages, "users": received}


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
    result = {"run": run, "floor": floor}[mode](json.loads(raw))
    result["max_rss_mib"] = peak_rss_mib()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
