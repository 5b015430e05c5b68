"""Running the installed Google Cloud SDK's own code, offline, with a throwaway configuration.

gcloud is a Python program: its bundled Python with the SDK's lib/ (and lib/third_party, as lib/gcloud.py
sets up) on sys.path runs the very functions `gcloud` runs. The configuration directory is fresh and
holds no credentials, and a proxy that leads nowhere stands in for the network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import pytest

# Put the SDK's libraries first, as lib/gcloud.py does; argv[1] is the SDK root.
PRELUDE = """
import os, sys
_lib = os.path.join(sys.argv[1], "lib")
sys.path[0:0] = [_lib, os.path.join(_lib, "third_party")]
"""


@cache
def sdk_root() -> Path:
    """The SDK's installation directory; the test skips, saying so, where gcloud is missing."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.skip(
            "gcloud is not installed: the checks that run its own code need it (README, Prerequisites)"
        )
    with tempfile.TemporaryDirectory(prefix="gcloud-config-") as config:
        info = subprocess.run(
            [gcloud, "info", "--format=json(installation.sdk_root)"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env=offline_environment(Path(config)),
        )
    return Path(json.loads(info.stdout)["installation"]["sdk_root"])


def offline_environment(config: Path) -> dict[str, str]:
    """An environment in which gcloud has no account, no prompts, and no way out."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(config),
        "CLOUDSDK_CONFIG": str(config),
        "CLOUDSDK_CORE_PROJECT": "my-growth-project",
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }


def run_sdk_python(code: str, *args: str, config: Path) -> subprocess.CompletedProcess[str]:
    """Run code in the SDK's Python, after PRELUDE, with sys.argv = [.., sdk_root, *args]."""
    root = sdk_root()
    bundled = root / "platform" / "bundledpythonunix" / "bin" / "python3"
    python = str(bundled) if bundled.exists() else os.environ.get("CLOUDSDK_PYTHON", "python3")
    config.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [python, "-c", PRELUDE + code, str(root), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=offline_environment(config),
        stdin=subprocess.DEVNULL,  # a command that reads a value from stdin (--data-file=-) reads none
    )
