"""Reading terraform/ with python-hcl2, for tests that check what Terraform would deploy."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

TERRAFORM = Path(__file__).resolve().parent.parent / "terraform"


def unquote(value: Any) -> Any:
    """python-hcl2 keeps string literals' quotes; drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@cache
def load() -> dict[str, Any]:
    """All of terraform/*.tf: resources by (type, name), data, variables, locals, terraform blocks."""
    merged: dict[str, Any] = {
        "resource": {},
        "data": {},
        "variable": {},
        "locals": {},
        "terraform": [],
        "files": {},
    }
    for path in sorted(TERRAFORM.glob("*.tf")):
        text = path.read_text()
        merged["files"][path.name] = text
        parsed = hcl2.loads(text)
        for kind in ("resource", "data"):
            for block in parsed.get(kind, []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        merged[kind][(unquote(rtype), unquote(name))] = body
        for block in parsed.get("variable", []):
            for name, body in block.items():
                merged["variable"][unquote(name)] = body
        for block in parsed.get("locals", []):
            merged["locals"].update({k: v for k, v in block.items() if k != "__is_block__"})
        merged["terraform"].extend(parsed.get("terraform", []))
    return merged


def resource(rtype: str, name: str) -> dict[str, Any]:
    """One resource's body."""
    body: dict[str, Any] = load()["resource"][(rtype, name)]
    return body


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block `name` of a body."""
    (inner,) = body[name]
    assert isinstance(inner, dict)
    return inner


def variable_default(name: str) -> Any:
    """A variable's default value."""
    return unquote(load()["variable"][name]["default"])


def scheduler_payload() -> bytes:
    """The exact bytes the Cloud Scheduler job publishes, evaluated from its `data` expression."""
    data = block(resource("google_cloud_scheduler_job", "tick"), "pubsub_target")["data"]
    match = re.fullmatch(r"\$\{base64encode\(jsonencode\(\{(\w+) = var\.(\w+)\}\)\)\}", data)
    assert match, f"unexpected scheduler data expression: {data}"
    key, var = match.groups()
    # jsonencode writes compact JSON: no spaces after separators.
    return json.dumps({key: variable_default(var)}, separators=(",", ":")).encode()
