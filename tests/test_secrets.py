"""Secrets (SPEC: Configuration): values pass through; version names are read from Secret Manager's
REST API once per instance, and only an answer whose data matches its CRC32C is used or cached."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.errors import ConfigError, TransientError
from notifier.outcome import Outcome
from notifier.retry import RetryPolicy
from notifier.run import run
from notifier.secrets import SecretResolver, crc32c
from notifier.services import Services
from notifier.settings import SecretRef
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.secretmanager import SecretManagerStandIn
from sandbox.secretmanager import crc32c as stand_in_crc32c
from sandbox.server import Fault, Reply
from tests.conftest import (
    EMAILS,
    MIXPANEL_SECRET,
    PUBLISHED,
    SENDGRID_KEY,
    TWILIO_TOKEN,
    Clock,
    LogLines,
    World,
    retrier,
)

VERSION = "projects/demo/secrets/{}/versions/latest"


def test_a_literal_value_is_used_as_is_without_secret_manager() -> None:
    assert SecretResolver().value(SecretRef("MIXPANEL_SECRET", "plain-value"), retrier()) == "plain-value"


def test_a_version_name_is_read_from_secret_manager(secret_manager: SecretManagerStandIn) -> None:
    secret_manager.secrets[VERSION.format("mixpanel")] = "the-value\n"
    ref = SecretRef("MIXPANEL_SECRET", VERSION.format("mixpanel"))
    assert SecretResolver().value(ref, retrier(), api_url=secret_manager.url) == "the-value"
    assert secret_manager.received()[0].path == f"/v1/{VERSION.format('mixpanel')}:access"


def test_a_missing_version_is_a_config_error_naming_the_variable(
    secret_manager: SecretManagerStandIn,
) -> None:
    ref = SecretRef("SENDGRID_API_KEY", VERSION.format("nope"))
    with pytest.raises(ConfigError) as caught:
        SecretResolver().value(ref, retrier(), api_url=secret_manager.url)
    assert caught.value.variable == "SENDGRID_API_KEY"
    assert "secretAccessor" in str(caught.value)


def test_secrets_are_read_once_per_instance_however_many_runs(
    environ: dict[str, str],
    services: Services,
    secret_manager: SecretManagerStandIn,
    mixpanel: MixpanelStandIn,
    clock: Clock,
) -> None:
    secret_manager.secrets.update(
        {
            VERSION.format("mixpanel"): MIXPANEL_SECRET,
            VERSION.format("sendgrid"): SENDGRID_KEY,
            VERSION.format("twilio"): TWILIO_TOKEN,
        }
    )
    environ.update(
        MIXPANEL_SECRET=VERSION.format("mixpanel"),
        SENDGRID_API_KEY=VERSION.format("sendgrid"),
        TWILIO_AUTH_TOKEN=VERSION.format("twilio"),
        SECRET_MANAGER_API_URL=secret_manager.url,
    )
    mixpanel.profiles.append(profile("u1", "2026-11-28T08:30:00", name="Ada"))
    # Three runs, each for a message of its own with its own window.
    outcomes = []
    for hour in range(3):
        outcomes.append(
            run(b"", PUBLISHED + timedelta(hours=hour), environ=environ, services=services).outcome
        )
        clock.advance(hours=1)
    assert outcomes[0] == "sent"
    assert outcomes[1:] == ["nothing_to_send"] * 2
    assert secret_manager.reads() == 3  # one per secret, not one per run


def test_missing_google_credentials_are_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # No metadata-server probe (it is not on loopback) and no gcloud credentials on disk.
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    ref = SecretRef("TWILIO_AUTH_TOKEN", VERSION.format("twilio"))
    with pytest.raises(ConfigError) as caught:
        SecretResolver().value(ref, retrier())
    assert caught.value.variable == "TWILIO_AUTH_TOKEN"
    assert "application-default login" in str(caught.value)


def test_an_answer_whose_data_does_not_match_its_checksum_is_transient_and_never_cached(
    world: World, secret_manager: SecretManagerStandIn, log_lines: LogLines
) -> None:
    name = VERSION.format("sendgrid")
    secret_manager.secrets[name] = world.environ["SENDGRID_API_KEY"]
    world.environ.update(SENDGRID_API_KEY=name, SECRET_MANAGER_API_URL=secret_manager.url)
    world.services.policy = RetryPolicy(attempts=1)
    corrupted = base64.b64encode(b"SG.flipped-in-transit").decode()
    good = str(crc32c(secret_manager.secrets[name].encode()))
    answer = {"name": name, "payload": {"data": corrupted, "dataCrc32c": good}}
    secret_manager.script(Fault(reply=Reply.json(200, answer)))
    with pytest.raises(TransientError):
        world.deliver()
    assert any("does not match its checksum" in line for line in log_lines.lines)
    assert world.emails() == []
    assert world.deliver().outcome is Outcome.SENT
    assert secret_manager.reads() == 1  # the good answer, read again and then cached
    assert sorted(world.inboxes()) == sorted(EMAILS)


@pytest.mark.parametrize(("data", "crc"), [(b"", 0), (b"123456789", 0xE3069283), (b"\x00" * 32, 0x8A9136AA)])
def test_crc32c_gives_the_castagnoli_check_values(data: bytes, crc: int) -> None:
    assert crc32c(data) == crc  # RFC 3720, B.4


@given(st.binary(max_size=300))
def test_crc32c_agrees_with_the_stand_ins_own(data: bytes) -> None:
    assert crc32c(data) == stand_in_crc32c(data)


def test_a_secret_too_short_to_blank_is_bad_config_and_never_sent(world: World, log_lines: LogLines) -> None:
    world.environ["SENDGRID_API_KEY"] = "SG.k3y"
    summary = world.deliver()
    assert summary.outcome is Outcome.BAD_CONFIG
    assert summary.error_fields == {"variable": "SENDGRID_API_KEY"}
    assert world.sendgrid.requests == []
    assert not [line for line in log_lines.lines if "SG.k3y" in line]
