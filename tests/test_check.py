"""`python -m notifier check`: every credential and setting proven against the stand-ins, nothing sent.

Each failure path is checked for the line it prints (what failed and what to do), and every output is
checked for the fake secrets' marker: the conftest's log check does not see what a command prints.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from notifier.check import Finding, Verdict, _checker, check_mixpanel
from notifier.cli import main
from notifier.envfile import deployed_environ, tool_environ
from notifier.errors import ConfigError
from notifier.sample import MARK
from notifier.settings import Settings
from notifier.variables import DEFAULTS, NAMES
from sandbox.function import free_port
from sandbox.mixpanel import profile
from sandbox.secretmanager import SecretManagerStandIn
from sandbox.server import Fault
from sandbox.twilio import MESSAGING_SERVICE_SID
from tests.conftest import EMAILS, MARKER, MIXPANEL_SECRET, PHONES, SENDGRID_KEY, TWILIO_TOKEN, World
from tests.deploy_script import ROOT, dry_run, write_config
from tests.deployment import EVERYTHING, REQUIRED

_LINE = re.compile(r"^(PASS|FAIL|UNSURE|SKIP)\s+(.{16}) (.*)$")


@dataclass(frozen=True)
class Report:
    """What the check printed: its exit status, and each line by subject."""

    code: int
    output: str

    def __getitem__(self, subject: str) -> tuple[str, str]:
        """(verdict, text) of the line about `subject`."""
        for line in self.output.splitlines():
            match = _LINE.match(line)
            if match and match[2].strip() == subject:
                return match[1], match[3]
        raise KeyError(f"no line about {subject}:\n{self.output}")

    def verdicts(self) -> dict[str, str]:
        """Every line's subject and verdict."""
        matches = (_LINE.match(line) for line in self.output.splitlines())
        return {m[2].strip(): m[1] for m in matches if m}


def check(world: World, *argv: str) -> Report:
    """`python -m notifier check ARGV` against the world's stand-ins; no secret may be printed."""
    out = io.StringIO()
    code = main(["check", *argv], environ=world.environ, services=world.services, out=out)
    report = Report(code, out.getvalue())
    assert MARKER not in report.output
    return report


def nothing_sent(world: World) -> bool:
    return not world.emails() and not world.texts() and not world.slack.messages()


# -- everything passes ------------------------------------------------------------------------------
def test_a_good_configuration_passes_every_check_and_sends_nothing(world: World) -> None:
    world.with_slack()
    report = check(world)
    assert report.code == 0, report.output
    assert set(report.verdicts().values()) == {"PASS"}
    assert set(report.verdicts()) == {
        "configuration",
        "Mixpanel",
        "sign-up date",
        "SendGrid key",
        "SendGrid sender",
        "Twilio",
        "Twilio sender",
        "Slack",
        "state store",
    }
    assert report.output.rstrip().endswith("every check passed; nothing was sent")
    assert nothing_sent(world)


def test_the_sign_up_date_check_counts_in_three_queries_and_says_so(world: World) -> None:
    world.users("2026-11-28T07:00:00", "2025-01-01T00:00:00")
    report = check(world)
    assert report["Mixpanel"][1].endswith("accepted: 3 profiles")
    verdict, text = report["sign-up date"]
    assert verdict == "PASS"
    assert "CREATED_PROPERTY $created: the function's where finds all 3 profiles that have it" in text
    assert "3 Engage queries" in text
    queries = [r.form().get("where") for r in world.mixpanel.received("/api/query/engage")]
    assert queries == [
        None,
        'defined(properties["$created"])',
        'datetime(0) <= properties["$created"] and properties["$created"] < datetime(1795856447)',
    ]


# -- Mixpanel ---------------------------------------------------------------------------------------
def test_a_wrong_mixpanel_secret_fails_mixpanel_and_the_rest_is_still_checked(world: World) -> None:
    world.mixpanel.secret = "another-secret"
    report = check(world)
    assert report.code == 1
    verdict, text = report["Mixpanel"]
    assert verdict == "FAIL"
    assert "401" in text
    assert "MIXPANEL_SECRET" in text
    assert report["sign-up date"][0] == "SKIP"
    assert report["SendGrid key"][0] == report["Twilio"][0] == "PASS"
    assert "1 check(s) failed" in report.output


def test_a_wrong_project_id_fails_mixpanel_naming_the_project_setting(world: World) -> None:
    world.environ["MIXPANEL_PROJECT_ID"] = "999"
    verdict, text = check(world)["Mixpanel"]
    assert verdict == "FAIL"
    assert "403" in text
    assert "MIXPANEL_PROJECT_ID" in text


@pytest.mark.parametrize(
    "created",
    ["28/11/2026 08:30", "2099-01-01T00:00:00"],
    ids=["written as text, not a date", "in the future"],
)
def test_profiles_the_function_s_filter_cannot_find_fail_the_created_filter(
    world: World, created: str
) -> None:
    world.mixpanel.profiles.append(profile("odd", created, name="Odd", email="odd@example.com"))
    report = check(world)
    assert report.code == 1
    assert report["Mixpanel"][0] == "PASS"
    verdict, text = report["sign-up date"]
    assert verdict == "FAIL"
    assert "2 profiles have $created but the function's where finds 1 of them" in text
    assert "never be reported" in text
    assert "3 Engage queries" in text


def test_a_project_without_profiles_cannot_tell_about_the_sign_up_date(world: World) -> None:
    world.mixpanel.profiles = []
    report = check(world)
    assert report["sign-up date"] == (
        "UNSURE",
        "the project has no profiles yet, so there is nothing to count (2 Engage queries of the 60 an hour "
        "Mixpanel allows); run the check again after the first sign-up",
    )
    assert report.code == 0  # not knowing is not a failure


def _without_created(world: World, count: int, *, first_seen: bool) -> None:
    world.mixpanel.profiles = [profile(f"p{n}", "", name=f"P {n}") for n in range(count)]
    for p in world.mixpanel.profiles if first_seen else []:
        p["$properties"]["$mp_first_event_time"] = "2026-11-01T10:00:00"


def test_profiles_without_created_fail_loudly_naming_first_seen_when_mixpanel_has_it(world: World) -> None:
    _without_created(world, 40, first_seen=True)
    report = check(world)
    assert report.code == 1
    verdict, text = report["sign-up date"]
    assert verdict == "FAIL"  # never UNSURE for a project that has profiles
    assert text.startswith("only 0 of 40 profiles have $created, so the digests would miss almost everyone")
    assert (
        "set CREATED_PROPERTY=$mp_first_event_time (Mixpanel's First Seen), which Mixpanel has for 40" in text
    )
    assert "3 Engage queries" in text


def test_few_profiles_with_created_fail_too_and_first_seen_is_not_offered_when_absent(world: World) -> None:
    _without_created(world, 40, first_seen=False)
    world.users("2026-11-28T08:10:00", "2026-11-28T08:20:00")  # 2 of 42: fewer than one in ten
    verdict, text = check(world)["sign-up date"]
    assert verdict == "FAIL"
    assert "only 2 of 42 profiles have $created" in text
    assert "set it on each profile at sign-up" in text
    assert "Mixpanel has it for none of them" in text


def _mixpanel_check(world: World, **options: Any) -> Finding:
    settings = Settings.from_environ(world.environ)
    findings = check_mixpanel(_checker(settings, world.environ, world.services), **options)
    assert findings[0].verdict is Verdict.PASS
    return findings[1]


def test_the_check_counts_the_created_property_the_function_uses(world: World) -> None:
    _without_created(world, 3, first_seen=True)
    finding = _mixpanel_check(world, created_property="$mp_first_event_time")
    assert finding.verdict is Verdict.PASS
    assert "CREATED_PROPERTY $mp_first_event_time: the function's where finds all 3" in finding.text
    assert "; 0 profiles" not in finding.text


def test_the_check_runs_the_filter_once_and_says_how_many_it_keeps(world: World) -> None:
    world.users("2026-11-28T08:10:00", "2026-11-28T08:20:00")
    world.mixpanel.profiles[0]["$properties"]["plan"] = "pro"
    finding = _mixpanel_check(world, where_filter='properties["plan"] == "pro"')
    assert finding.verdict is Verdict.PASS
    assert "MIXPANEL_FILTER keeps 1 of the 3 profiles that have it (3 Engage queries" in finding.text
    wheres = [r.form().get("where", "") for r in world.mixpanel.requests]
    assert sum('properties["plan"] == "pro"' in where for where in wheres) == 1


def test_a_filter_mixpanel_cannot_run_fails_the_check_naming_it(world: World) -> None:
    settings = Settings.from_environ(world.environ)
    checker = _checker(settings, world.environ, world.services)
    findings = check_mixpanel(checker, where_filter='properties["plan"] ==')
    assert [f.verdict for f in findings] == [Verdict.PASS, Verdict.FAIL]
    assert findings[1].text.startswith("MIXPANEL_FILTER: Mixpanel refused the query")


# -- SendGrid ---------------------------------------------------------------------------------------
def test_a_sendgrid_key_without_mail_send_fails(world: World) -> None:
    world.sendgrid.scopes = ["alerts.read", "stats.read"]
    report = check(world)
    assert report.code == 1
    verdict, text = report["SendGrid key"]
    assert verdict == "FAIL"
    assert "lacks the Mail Send permission (mail.send)" in text
    assert report["SendGrid sender"][0] == "SKIP"
    assert world.sendgrid.received("/v3/scopes")[0].headers["authorization"] == f"Bearer {SENDGRID_KEY}"


def test_a_sendgrid_key_sendgrid_does_not_know_fails(world: World) -> None:
    world.sendgrid.api_key = "SG.another-key"
    verdict, text = check(world)["SendGrid key"]
    assert verdict == "FAIL"
    assert text.startswith("SendGrid answered 401")
    assert "does not accept SENDGRID_API_KEY" in text


def test_an_unverified_sender_fails(world: World) -> None:
    world.sendgrid.senders = {"alerts@example.com": False}
    report = check(world)
    assert report.code == 1
    verdict, text = report["SendGrid sender"]
    assert verdict == "FAIL"
    assert "EMAIL_FROM alerts@example.com is not verified yet" in text


def test_a_key_that_may_not_read_senders_cannot_tell_and_does_not_fail(world: World) -> None:
    world.sendgrid.senders_readable = False
    report = check(world)
    verdict, text = report["SendGrid sender"]
    assert verdict == "UNSURE"
    assert text.startswith("cannot tell whether EMAIL_FROM alerts@example.com is verified")
    assert report.code == 0


def test_a_sender_that_is_not_a_single_sender_cannot_tell(world: World) -> None:
    world.sendgrid.senders = {"someone-else@example.com": True}
    verdict, text = check(world)["SendGrid sender"]
    assert verdict == "UNSURE"
    assert "its domain is authenticated" in text


# -- Twilio -----------------------------------------------------------------------------------------
def test_a_wrong_twilio_token_fails(world: World) -> None:
    world.twilio.auth_token = "another-token"
    report = check(world)
    assert report.code == 1
    verdict, text = report["Twilio"]
    assert verdict == "FAIL"
    assert text.startswith("Twilio answered 401, error 20003")
    assert "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN do not match" in text
    assert report["Twilio sender"][0] == "SKIP"


def test_a_number_that_is_not_on_the_account_fails(world: World) -> None:
    world.twilio.numbers = ["+14155550123", "+141555501990"]  # the second only contains SMS_FROM
    report = check(world)
    assert report.code == 1
    assert report["Twilio"][0] == "PASS"
    verdict, text = report["Twilio sender"]
    assert verdict == "FAIL"
    assert text.startswith("SMS_FROM +•••••••0199 is not one of the account")
    assert "numbers: buy or port it" in text
    assert world.twilio.received("IncomingPhoneNumbers")[0].query["PhoneNumber"] == "+14155550199"


def test_a_messaging_service_of_the_account_passes_and_another_fails(world: World) -> None:
    world.environ["SMS_FROM"] = MESSAGING_SERVICE_SID
    assert check(world)["Twilio sender"] == (
        "PASS",
        f"SMS_FROM {MESSAGING_SERVICE_SID} is one of the account's Messaging Services",
    )
    world.environ["SMS_FROM"] = "MG" + "f" * 32
    verdict, text = check(world)["Twilio sender"]
    assert verdict == "FAIL"
    assert "is not one of the account" in text
    assert "Messaging > Services" in text


def test_a_provider_that_fails_for_now_says_to_run_the_check_again(world: World) -> None:
    world.sendgrid.script(Fault.status(503))
    world.twilio.script(Fault.status(500))
    report = check(world)
    assert report.code == 1
    assert report["SendGrid key"] == (
        "FAIL",
        "SendGrid answered 503 (scripted error 503); it may be passing: run the check again",
    )
    assert report["Twilio"] == (
        "FAIL",
        "Twilio answered 500, error 20500 (scripted error 500); it may be passing: run the check again",
    )


# -- Slack, the state store, the configuration ------------------------------------------------------
def test_a_webhook_url_that_is_not_slack_s_fails(world: World, secret_manager: SecretManagerStandIn) -> None:
    name = "projects/p/secrets/notifierator-slack-webhook-url/versions/latest"
    secret_manager.secrets[name] = f"https://hooks.example.com/services/{MARKER}"
    world.environ.update(SLACK_WEBHOOK_URL=name, SECRET_MANAGER_API_URL=secret_manager.url)
    report = check(world)
    assert report.code == 1
    verdict, text = report["Slack"]
    assert verdict == "FAIL"
    assert text.startswith("SLACK_WEBHOOK_URL: must be a Slack incoming-webhook URL")


def test_a_configuration_without_any_channel_fails(world: World) -> None:
    for variable in ("EMAIL_TO", "SMS_TO"):
        del world.environ[variable]
    report = check(world)
    assert report.code == 1
    assert report["configuration"] == (
        "FAIL",
        "EMAIL_TO: no channel is configured: set EMAIL_TO, SMS_TO or SLACK_WEBHOOK_URL (fix it; it was "
        "read from the environment: --env-file reads a file; nothing else was checked)",
    )


def test_every_configuration_problem_is_printed_on_its_own_line(world: World) -> None:
    world.environ.update(SMS_FROM="Notifier", TIMEZONE="Mars/Olympus", EMAIL_TO="growth")
    report = check(world)
    assert report.code == 1
    failures = [line for line in report.output.splitlines() if line.startswith("FAIL")]
    assert [line.split()[2] for line in failures] == ["EMAIL_TO:", "SMS_FROM:", "TIMEZONE:"]
    assert failures[-1].endswith("nothing else was checked)")
    assert "3 check(s) failed" in report.output
    assert world.mixpanel.requests == []


def test_a_bad_setting_fails_the_configuration_and_nothing_else_is_asked(world: World) -> None:
    world.environ["SLACK_WEBHOOK_URL"] = f"https://hooks.example.com/services/{MARKER}"
    report = check(world)
    assert report.code == 1
    assert report.verdicts() == {"configuration": "FAIL"}
    assert "SLACK_WEBHOOK_URL: must be a Slack incoming-webhook URL" in report["configuration"][1]
    assert world.mixpanel.requests == []


def test_a_state_store_that_does_not_answer_fails(world: World) -> None:
    world.environ.update(STATE_STORE="firestore", FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{free_port()}")
    report = check(world)
    assert report.code == 1
    assert report["state store"] == (
        "FAIL",
        "Firestore is unreachable (ConnectionError) (it may be passing: run the check again)",
    )


def test_a_firestore_state_store_answers_a_read_and_a_write(world: World, firestore: object) -> None:
    world.environ.update(STATE_STORE="firestore", **firestore.environ)  # type: ignore[attr-defined]
    report = check(world)
    assert report["state store"] == ("PASS", "Firestore database (default) answered a read and a write")
    assert report.code == 0


# -- --send-test --------------------------------------------------------------------------------------
def test_send_test_sends_one_marked_message_per_channel_and_records_nothing(world: World) -> None:
    world.with_slack()
    report = check(world, "--send-test")
    assert report.code == 0, report.output
    assert {report[f"test {name}"][0] for name in ("email", "sms", "slack")} == {"PASS"}
    assert report.output.rstrip().endswith("every check passed")
    [mail] = world.emails()
    assert mail["subject"].startswith(f"{MARK} · Mixpanel project 4242: 2 new users, ")
    assert [p["to"][0]["email"] for p in mail["personalizations"]] == list(EMAILS)
    text, html = (part["value"] for part in mail["content"])
    assert text.startswith(f"{MARK}.\n\nMixpanel project 4242\n2 new users, ")
    assert "- Ada Lovelace <ada@example.com>" in text
    assert f">{MARK}</p>" in html
    assert world.texts() == list(PHONES)
    assert all(
        m["Body"].startswith("TEST Mixpanel project 4242: 2 new users") for m in world.twilio.messages()
    )
    [posted] = world.slack.messages()
    assert posted["text"].startswith(f"{MARK}. Mixpanel project 4242: 2 new users, ")
    assert posted["blocks"][1]["elements"][0]["text"] == MARK
    # Nothing was recorded: the first real digest still goes to everyone.
    assert world.deliver().outcome == "sent"
    assert world.inboxes() == [*EMAILS, *EMAILS]


def test_send_test_skips_a_channel_whose_check_failed(world: World) -> None:
    world.twilio.auth_token = "another-token"
    report = check(world, "--send-test")
    assert report.code == 1
    assert report["test email"][0] == "PASS"
    assert report["test sms"] == ("SKIP", "not sent: its checks above failed")
    assert world.twilio.messages() == []


# -- deploy.env: the configuration deploy.sh deploys ------------------------------------------------
@pytest.mark.parametrize("settings", [REQUIRED, EVERYTHING], ids=["required only", "everything"])
def test_an_env_file_reads_as_the_environment_deploy_sh_gives_the_function(
    settings: dict[str, str], tmp_path: Path
) -> None:
    deployed = dry_run(settings, tmp_path / "deploy").function_env()
    read = deployed_environ(settings)
    assert {k: v for k, v in read.items() if v != DEFAULTS.get(k)} == deployed
    assert Settings.from_environ(read) == Settings.from_environ(deployed)


def test_a_deploy_env_s_secrets_are_read_from_secret_manager_by_their_deployed_names(
    world: World, secret_manager: SecretManagerStandIn, firestore: object, tmp_path: Path
) -> None:
    values = {"mixpanel-secret": MIXPANEL_SECRET, "sendgrid-api-key": SENDGRID_KEY}
    for kind, value in {**values, "twilio-auth-token": TWILIO_TOKEN}.items():
        secret_manager.secrets[f"projects/my-proj/secrets/signups-{kind}/versions/latest"] = value
    function = {k: v for k, v in world.environ.items() if k not in ("MIXPANEL_SECRET", "SENDGRID_API_KEY")}
    function.pop("TWILIO_AUTH_TOKEN")
    config = write_config(
        {
            "PROJECT_ID": "my-proj",
            "NAME": "signups",
            **function,
            "SECRET_MANAGER_API_URL": secret_manager.url,
        },
        tmp_path,
    )
    # The shell's own settings do not count, the emulator host does (it is not a function setting).
    world.environ = {"MIXPANEL_SECRET": "from-the-shell", **firestore.environ}  # type: ignore[attr-defined]
    report = check(world, "--env-file", str(config))
    assert report.code == 0, report.output
    assert report["configuration"][1].startswith(f"read from {config}: channels email, sms;")
    assert report["Slack"][0] == "SKIP"  # SLACK_ENABLED is false
    assert report["state store"][1] == "Firestore database signups answered a read and a write"
    assert secret_manager.reads() == 3


def test_an_env_file_with_an_unknown_setting_is_refused_naming_its_line(tmp_path: Path) -> None:
    config = tmp_path / "deploy.env"
    config.write_text("PROJECT_ID=p\n# a comment\nDISPLAY_TIME_ZONE=UTC\n")
    with pytest.raises(ConfigError, match=r"line 3: DISPLAY_TIME_ZONE is now called TIMEZONE"):
        tool_environ(str(config), {})
    config.write_text("EMAIL_TOO=a@example.com\n")
    with pytest.raises(ConfigError, match=r"line 1: unknown setting EMAIL_TOO"):
        tool_environ(str(config), {})
    config.write_text('PROJECT_LABEL="$HOME"\n')
    with pytest.raises(ConfigError, match=r"a shell would expand"):
        tool_environ(str(config), {})


def test_an_env_file_reads_quotes_as_a_shell_does(tmp_path: Path) -> None:
    config = tmp_path / "deploy.env"
    config.write_text(
        "export EMAIL_FROM=\"Notifierator <alerts@example.com>\"\nPROJECT_LABEL='Acme $iOS'  # ok\nSMS_TO=\n"
    )
    assert tool_environ(str(config), {"PATH": "/bin", "EMAIL_TO": "shell@example.com"}) == {
        "PATH": "/bin",
        "EMAIL_FROM": "Notifierator <alerts@example.com>",
        "PROJECT_LABEL": "Acme $iOS",
    }
    assert set(NAMES) >= {"EMAIL_FROM", "PROJECT_LABEL"}


# -- the command itself ---------------------------------------------------------------------------------
def test_the_command_prints_no_secret_on_any_stream(world: World, tmp_path: Path) -> None:
    world.with_slack()
    world.mixpanel.secret = "another-secret"  # failures print the providers' answers
    world.sendgrid.scopes = []
    world.twilio.numbers = []
    config = write_config(world.environ, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "notifier", "check", "--send-test", "--env-file", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert MARKER not in result.stdout + result.stderr
    assert "FAIL   Mixpanel" in result.stdout
    assert "PASS   test slack" in result.stdout
    assert "Traceback" not in result.stderr
