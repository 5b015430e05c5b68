"""Both paths upload exactly what the function runs (deploy/source.json), and never bytecode.

The checks run on a copy of git's tracked files with bytecode, a venv and test caches planted in it,
as a working tree has them: Terraform's file set is evaluated by the real terraform binary, and
gcloud's zip is built by the SDK's own code, the way `gcloud functions deploy --source` builds it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy_script import ROOT
from tests.gcloud_sdk import run_sdk_python
from tests.terraform_config import evaluate, example_variables

SOURCE_LIST = ROOT / "deploy" / "source.json"
PLANTED = [
    "notifier/__pycache__/run.cpython-312.pyc",
    "notifier/channels/__pycache__/email.cpython-312.pyc",
    "notifier/stray.pyc",
    "__pycache__/main.cpython-312.pyc",
    ".venv/lib/python3.12/site-packages/requests/__init__.py",
    ".pytest_cache/v/cache/lastfailed",
    "demo-output/email.html",
    "deploy.env",
]

# gcloud's zip of argv[2], built as `gcloud functions deploy` builds it: command_lib/functions/v2/deploy/
# command.py calls source_util.CreateSourcesZipFile, which applies .gcloudignore through
# archive.MakeZipFromDir.
SDK_ZIP = """
import json, tempfile, zipfile
from googlecloudsdk.command_lib.functions import source_util
with tempfile.TemporaryDirectory() as out:
    print(json.dumps(zipfile.ZipFile(source_util.CreateSourcesZipFile(out, sys.argv[2])).namelist()))
"""


def source_list() -> dict[str, list[str]]:
    listed: dict[str, list[str]] = json.loads(SOURCE_LIST.read_text())
    return listed


def tracked_files() -> list[str]:
    listing = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return listing.stdout.split()


def expected_upload() -> set[str]:
    """The tracked files under the listed paths: what the function runs."""
    paths = source_list()["paths"]
    return {file for file in tracked_files() if any(file == p or file.startswith(p + "/") for p in paths)}


def render_gcloudignore(listed: dict[str, Any]) -> str:
    """The .gcloudignore that says deploy/source.json to gcloud."""
    header = (
        "# What `gcloud functions deploy --source=.` uploads: deploy/source.json's list, "
        "written for gcloud.\n"
        "# tests/test_deploy_source.py holds this file to that list and checks gcloud's own zip of it.\n"
        '# gcloud also matches "/*" against the source root ".", which "!." takes back.\n'
    )
    lines = ["/*", "!.", *(f"!/{path}" for path in listed["paths"]), *listed["never"]]
    return header + "".join(line + "\n" for line in lines)


@pytest.fixture(scope="module")
def working_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tracked files, with what a working tree also holds planted in it."""
    tree = tmp_path_factory.mktemp("tree")
    for file in tracked_files():
        (tree / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / file, tree / file)
    for file in PLANTED:
        (tree / file).parent.mkdir(parents=True, exist_ok=True)
        (tree / file).write_bytes(b"\x00not shipped")
    return tree


def test_gcloudignore_says_the_list() -> None:
    assert (ROOT / ".gcloudignore").read_text() == render_gcloudignore(source_list())


def test_the_list_covers_what_the_function_imports() -> None:
    upload = expected_upload()
    assert {
        "main.py",
        "requirements.txt",
        "notifier/run.py",
        "notifier/render/templates/email.html.j2",
    } <= upload
    assert not [file for file in upload if file.startswith(("tests/", "sandbox/", "terraform/", "deploy/"))]


def test_terraform_zips_the_listed_files_and_no_bytecode(working_tree: Path) -> None:
    files = evaluate("local.source_files", {**example_variables(), "source_dir": str(working_tree)})
    assert set(files) == expected_upload()


def test_gcloud_uploads_the_listed_files_and_no_bytecode(working_tree: Path, tmp_path: Path) -> None:
    result = run_sdk_python(SDK_ZIP, str(working_tree), config=tmp_path / "gcloud")
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    files = {entry for entry in entries if not entry.endswith("/")}
    assert files == expected_upload()
    assert {"main.py", "requirements.txt", "notifier/render/templates/email.css"} <= files
    assert not [entry for entry in entries if "__pycache__" in entry or entry.endswith(".pyc")]
