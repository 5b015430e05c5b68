"""Running deploy.sh --dry-run with a configuration, and reading the gcloud commands it prints."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_SH = ROOT / "deploy.sh"
EXAMPLE_ENV = ROOT / "deploy.env.example"
QUERY = "# query: "


@dataclass(frozen=True)
class DryRun:
    """What deploy.sh --dry-run printed: the commands it would run and the look-ups it would make first."""

    commands: list[list[str]]
    queries: list[list[str]]

    def command(self, *prefix: str) -> list[str]:
        """The one command that starts with these words."""
        matches = [argv for argv in self.commands if argv[: len(prefix)] == list(prefix)]
        assert len(matches) == 1, f"expected one `{' '.join(prefix)}`, found {len(matches)}"
        return matches[0]

    def all(self, *prefix: str) -> list[list[str]]:
        """Every command that starts with these words."""
        return [argv for argv in self.commands if argv[: len(prefix)] == list(prefix)]

    def function_env(self) -> dict[str, str]:
        """The environment `gcloud functions deploy --set-env-vars` gives the function."""
        raw = flags(self.command("gcloud", "functions", "deploy"))["set-env-vars"]
        assert raw.startswith("^|^"), raw
        return dict(pair.split("=", 1) for pair in raw[3:].split("|") if pair)


def flags(argv: list[str]) -> dict[str, str]:
    """A command's --name=value flags (a bare --flag maps to "")."""
    pairs = [arg[2:].partition("=") for arg in argv if arg.startswith("--")]
    return {name: value for name, _, value in pairs}


def example_settings() -> dict[str, str]:
    """deploy.env.example's settings, as bash reads them."""
    return dict(_example_settings())


@cache
def _example_settings() -> dict[str, str]:
    text = EXAMPLE_ENV.read_text()
    names = re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE)
    output = subprocess.run(
        ["bash", "-c", 'set -a && source "$1" && env -0', "bash", str(EXAMPLE_ENV)],
        capture_output=True,
        check=True,
        env={},
    ).stdout
    pairs = (item.decode().split("=", 1) for item in output.split(b"\0") if item)
    values = dict(pairs)
    return {name: values[name] for name in names}


def write_config(settings: Mapping[str, str], directory: Path) -> Path:
    """A deploy.env holding these settings."""
    path = directory / "deploy.env"
    path.write_text("".join(f"{name}={shlex.quote(value)}\n" for name, value in settings.items()))
    return path


def run_deploy_sh(settings: Mapping[str, str], tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """deploy.sh --dry-run with these settings; its configuration and rendered files go to tmp."""
    tmp.mkdir(parents=True, exist_ok=True)
    config = write_config(settings, tmp)
    return subprocess.run(
        ["bash", str(DEPLOY_SH), "--config", str(config), "--dry-run", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp)},
    )


def dry_run(settings: Mapping[str, str], tmp: Path, *extra: str) -> DryRun:
    """What deploy.sh --dry-run prints for these settings (it must accept them)."""
    result = run_deploy_sh(settings, tmp, *extra)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    return DryRun(
        commands=[shlex.split(line) for line in lines if line.startswith("gcloud ")],
        queries=[shlex.split(line[len(QUERY) :]) for line in lines if line.startswith(QUERY)],
    )


def refusal(settings: Mapping[str, str], tmp: Path) -> str | None:
    """deploy.sh's complaint about these settings (exit 2), on one line and without the file's name;
    None when it accepts them."""
    result = run_deploy_sh(settings, tmp)
    if result.returncode == 0:
        return None
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    return message.removeprefix(f"{tmp / 'deploy.env'}: ")
