"""Secret values: given inline (local runs) or read from Secret Manager once per instance."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import requests

from notifier import logs
from notifier.errors import ConfigError, SourceUnavailable
from notifier.retry import DeadlinePassed, Retrier, parse_retry_after
from notifier.settings import SecretRef

if TYPE_CHECKING:
    from google.cloud.secretmanager import SecretManagerServiceClient

SERVICE = "Secret Manager"


class SecretResolver:
    """Turns SecretRefs into values, caching each Secret Manager read for the process's life."""

    def __init__(self) -> None:
        self._clients: dict[str | None, SecretManagerServiceClient] = {}
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def value(self, ref: SecretRef, retrier: Retrier, *, api_url: str | None = None) -> str:
        """The secret's value; a version name is read from Secret Manager the first time only.

        `api_url` points the client at another endpoint (a local stand-in); None is Google's.
        """
        if not ref.is_version_name:
            return checked(ref.variable, ref.reference)
        with self._lock:
            cached = self._cache.get(ref.reference)
            if cached is None:
                # Checked before it is cached: a bad answer is never kept for the instance's life.
                cached = checked(
                    ref.variable,
                    retrier.call(lambda: self._access(ref, retrier, api_url), name="Secret Manager access"),
                )
                self._cache[ref.reference] = cached
            return cached

    def _access(self, ref: SecretRef, retrier: Retrier, api_url: str | None) -> str:
        # Imported here: the Google client is slow to import and local runs rarely need it.
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as auth_exc
        from google.protobuf import json_format

        try:
            response = retrier.bounded(
                lambda: self._client(api_url).access_secret_version(
                    name=ref.reference, retry=None, timeout=retrier.timeout()
                )
            )
        except DeadlinePassed:
            raise SourceUnavailable(
                f"{SERVICE} had not answered for {ref.variable} when the run's time ran out", service=SERVICE
            ) from None
        except (gexc.TooManyRequests, gexc.ServerError, gexc.DeadlineExceeded) as error:
            raise SourceUnavailable(
                f"{SERVICE} could not read the secret named by {ref.variable}: "
                f"{type(error).__name__} ({_code(error)})",
                service=SERVICE,
                retry_after=_retry_after(error),
            ) from None
        except gexc.GoogleAPICallError as error:
            raise ConfigError(
                f"{SERVICE} refused to read {ref.reference} ({_code(error)} {type(error).__name__}); "
                "check the version exists and the function's service account has "
                "roles/secretmanager.secretAccessor on it",
                variable=ref.variable,
            ) from None
        except auth_exc.DefaultCredentialsError:
            raise ConfigError(
                f"no Google credentials to read {ref.reference} from {SERVICE}; deployed functions have "
                "them, a local run needs `gcloud auth application-default login` or the secret's value",
                variable=ref.variable,
            ) from None
        except (requests.RequestException, auth_exc.TransportError, auth_exc.RefreshError) as error:
            raise SourceUnavailable(
                f"{SERVICE} is unreachable for {ref.variable}: {type(error).__name__}", service=SERVICE
            ) from None
        except (json_format.Error, ValueError, AttributeError, KeyError, TypeError) as error:
            # The client fails in these ways on bodies that are not Google's JSON (a proxy's page).
            raise SourceUnavailable(
                f"{SERVICE} answered {ref.variable}'s read with a malformed body ({type(error).__name__})",
                service=SERVICE,
            ) from None
        if not getattr(response, "name", ""):
            # Every real answer names the version it read; `{}` or a proxy's JSON is not an answer.
            raise SourceUnavailable(
                f"{SERVICE} answered {ref.variable}'s read without a secret version", service=SERVICE
            )
        try:
            return bytes(response.payload.data).decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError("the secret's value is not UTF-8 text", variable=ref.variable) from None

    def _client(self, api_url: str | None) -> SecretManagerServiceClient:
        client = self._clients.get(api_url)
        if client is None:
            from google.cloud.secretmanager import SecretManagerServiceClient

            if api_url:
                from google.auth.credentials import AnonymousCredentials

                client = SecretManagerServiceClient(
                    transport="rest",
                    client_options={"api_endpoint": api_url},
                    credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                )
            else:
                client = SecretManagerServiceClient()
            self._clients[api_url] = client
        return client


def _code(error: Any) -> str:
    return str(getattr(error, "code", "") or "")


def _retry_after(error: Any) -> float | None:
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    return parse_retry_after(dict(headers)) if headers else None


def checked(variable: str, value: str) -> str:
    """A secret's value, stripped of surrounding whitespace, if it can travel in an HTTP header.

    Raises ConfigError naming the variable (never the value) for an empty value, a byte-order mark,
    control characters or anything outside printable ASCII, which would otherwise fail inside a
    client library with the value in its message.
    """
    value = value.strip()
    logs.hide(value)  # even a value refused below must never reach a log
    if not value:
        raise ConfigError("the secret's value is empty", variable=variable)
    if value.startswith("\ufeff"):
        raise ConfigError(
            "the secret's value starts with a byte-order mark (saved by an editor?)", variable=variable
        )
    if not (value.isascii() and value.isprintable()) or any(char.isspace() for char in value):
        raise ConfigError(
            "the secret's value holds spaces, line breaks, control or non-ASCII characters; "
            "add it again without them (gcloud secrets versions add NAME --data-file=-)",
            variable=variable,
        )
    return value
