"""Both paths give the run history a Firestore database of its own, and the function access to it only.

The database is Native mode, named after the deployment (so a project's "(default)" database is never
touched), protected from deletion; records in `runs` and `reported` expire through a TTL policy on
`expire_at`; the runtime account holds roles/datastore.user on the project, conditioned on that
database's resource name, because Firestore offers no IAM binding on a database itself.
"""

from __future__ import annotations

from pathlib import Path

from tests.deploy_script import DryRun, dry_run, example_settings, flags
from tests.deployment import EVERYTHING, REQUIRED, as_tfvars
from tests.terraform_config import block, evaluate, load, resource, unquote

TTL_GROUPS = {"runs", "reported"}


def condition_expression(run: DryRun) -> str:
    (binding,) = [
        argv
        for argv in run.all("gcloud", "projects", "add-iam-policy-binding")
        if flags(argv)["role"] == "roles/datastore.user"
    ]
    assert flags(binding)["member"].startswith("serviceAccount:")
    fields = dict(item.split("=", 1) for item in flags(binding)["condition"].split(","))
    return fields["expression"]


def test_terraform_creates_a_native_database_named_after_the_deployment() -> None:
    database = resource("google_firestore_database", "state")
    assert database["name"] == "${local.firestore_database}"
    assert unquote(database["type"]) == "FIRESTORE_NATIVE"
    assert unquote(database["delete_protection_state"]) == "DELETE_PROTECTION_ENABLED"
    assert database["location_id"] == "${var.firestore_location}"
    for settings in (REQUIRED, EVERYTHING):
        variables = as_tfvars(settings)
        name = evaluate("local.firestore_database", variables)
        assert name == variables.get("name", "notifierator") != "(default)"
        assert evaluate("local.environment", variables)["FIRESTORE_DATABASE"] == name


def test_deploy_sh_creates_the_same_database(tmp_path: Path) -> None:
    for settings in (REQUIRED, EVERYTHING):
        run = dry_run(settings, tmp_path / settings.get("NAME", "default-name"))
        create = flags(run.command("gcloud", "firestore", "databases", "create"))
        expected = evaluate("local.firestore_database", as_tfvars(settings))
        assert create["database"] == run.function_env()["FIRESTORE_DATABASE"] == expected
        assert create["type"] == "firestore-native"
        assert "delete-protection" in create
        assert create["location"] == settings.get("FIRESTORE_LOCATION", "nam5")
        assert run.function_env()["STATE_STORE"] == "firestore"


def test_terraform_lets_records_expire() -> None:
    assert set(evaluate("local.ttl_collection_groups", as_tfvars(REQUIRED))) == TTL_GROUPS
    field = resource("google_firestore_field", "expire_at")
    assert field["for_each"] == "${toset(local.ttl_collection_groups)}"
    assert unquote(field["field"]) == "expire_at"
    assert field["database"] == "${google_firestore_database.state.name}"
    assert block(field, "ttl_config") == {"__is_block__": True}


def test_deploy_sh_enables_ttl_on_the_same_fields_once(tmp_path: Path) -> None:
    fresh = dry_run(example_settings(), tmp_path / "fresh")
    updates = fresh.all("gcloud", "firestore", "fields", "ttls", "update")
    assert {flags(argv)["collection-group"] for argv in updates} == TTL_GROUPS
    for argv in updates:
        assert argv[5] == "expire_at"
        assert (flags(argv)["database"], "enable-ttl" in flags(argv)) == ("notifierator", True)
    rerun = dry_run(example_settings(), tmp_path / "rerun", "--assume-deployed")
    assert not rerun.all("gcloud", "firestore", "fields", "ttls", "update")  # already on
    assert not rerun.all("gcloud", "firestore", "databases", "create")


def test_the_function_reaches_its_database_and_no_other(tmp_path: Path) -> None:
    grant = resource("google_project_iam_member", "runtime_uses_state")
    assert unquote(grant["role"]) == "roles/datastore.user"  # documents only, no database administration
    assert unquote(grant["member"]) == "serviceAccount:${google_service_account.runtime.email}"
    terraform = unquote(block(grant, "condition")["expression"])
    assert terraform == (
        'resource.name == \\"projects/${var.project_id}/databases/${google_firestore_database.state.name}\\"'
    )
    script = condition_expression(dry_run(example_settings(), tmp_path))
    assert script == 'resource.name == "projects/my-growth-project/databases/notifierator"'
    granted = [body for key, body in load()["resource"].items() if key[0] == "google_project_iam_member"]
    assert [unquote(body["role"]) for body in granted].count("roles/datastore.user") == 1
