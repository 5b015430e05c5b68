"""Secrets (SPEC: Configuration): values pass through; version names are read once per instance."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from notifier.errors import ConfigError
from notifier.run import run
from notifier.secrets import SecretResolver
from notifier.services import Services
from notifier.settings import SecretRef
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.secretmanager import SecretManagerStandIn
from tests.conftest import MARKER, MIXPANEL_SECRET, PUBLISHED, SENDGRID_KEY, TWILIO_TOKEN, Clock, retrier

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
    assert MARKER not in repr(services.secrets.__dict__.get("_clients"))


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
