"""The Firestore emulator that ships with gcloud, for the run history's tests and the demo."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import requests

from sandbox.emulator import Emulator, sdk_root
from sandbox.server import Fault, Recorded, Reply, StandIn

PROJECT = "local-project"
EMULATOR = Path("platform/cloud-firestore-emulator")


def emulator_available() -> bool:
    """True where gcloud has the Firestore emulator and Java to run it."""
    root = sdk_root()
    return root is not None and (root / EMULATOR).exists() and bool(shutil.which("java"))


class FirestoreEmulator(Emulator):
    """`gcloud emulators firestore start` on a free loopback port (about 15 s to start)."""

    name = "Firestore"
    project = PROJECT

    def command(self) -> list[str]:
        gcloud = shutil.which("gcloud")
        if gcloud is None or not emulator_available():
            raise RuntimeError(
                "the Firestore emulator is not installed (gcloud components install cloud-firestore-emulator)"
            )
        return [gcloud, "emulators", "firestore", "start", f"--host-port={self.host}", "--quiet"]

    @property
    def environ(self) -> dict[str, str]:
        """What the function reads to keep its history in this emulator."""
        return {"FIRESTORE_EMULATOR_HOST": self.host, "GOOGLE_CLOUD_PROJECT": self.project}

    def clear(self, database: str = "(default)") -> None:
        """Delete every document of `database`, so each test starts from an empty history."""
        url = f"http://{self.host}/emulator/v1/projects/{self.project}/databases/{database}/documents"
        requests.delete(url, timeout=30).raise_for_status()

    def documents(self, collection: str, database: str = "(default)") -> list[dict[str, object]]:
        """Every document of `collection`, as Firestore's REST API returns them."""
        url = f"http://{self.host}/v1/projects/{self.project}/databases/{database}/documents/{collection}"
        found: list[dict[str, object]] = (
            requests.get(url, params={"pageSize": 1000}, timeout=30).json().get("documents", [])
        )
        return found


class FirestoreFaults(StandIn):
    """A proxy in front of the emulator whose scripted faults hit only requests ending in `only`
    (":commit", ":batchGet", ":runQuery"); every other request, and those after the faults, pass."""

    name = "firestore-faults"

    def __init__(self, emulator: FirestoreEmulator, *, only: str) -> None:
        super().__init__()
        self.upstream = f"http://{emulator.host}"
        self.only = only
        self._session = requests.Session()

    def fault_for(self, path: str) -> Fault | None:
        return super().fault_for(path) if path.endswith(self.only) else None

    def respond(self, request: Recorded) -> Reply:
        answer = self._session.request(
            request.method,
            self.upstream + request.path,
            params=request.query,
            data=request.body,
            headers={"Content-Type": request.headers.get("content-type", "application/json")},
            timeout=60,
        )
        return Reply(answer.status_code, answer.content, {"Content-Type": "application/json"})

    def error_body(self, status: int) -> Any:
        return {"error": {"code": status, "message": f"scripted {status}", "status": "UNAVAILABLE"}}

    @property
    def environ(self) -> dict[str, str]:
        """The function's variables to reach the emulator through this proxy."""
        return {"FIRESTORE_EMULATOR_HOST": self.url.removeprefix("http://"), "GOOGLE_CLOUD_PROJECT": PROJECT}
