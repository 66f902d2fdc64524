"""Configuration shared by the sync and async credentials: the authority, the tenant, the options
of ``get_token`` / ``get_token_info``, and, for ``WorkloadIdentityCredential``, the environment.

Environment variables (a ``KEYLESS_*`` name wins over its ``AZURE_*`` twin):

=============================  =====================================  ==================================
``KEYLESS_TENANT_ID``          ``AZURE_TENANT_ID``                    tenant (GUID or domain)
``KEYLESS_CLIENT_ID``          ``AZURE_CLIENT_ID``                    the application (client) id
``KEYLESS_AUTHORITY_HOST``     ``AZURE_AUTHORITY_HOST``               https authority; default Entra ID
``KEYLESS_FEDERATED_TOKEN_FILE`` ``AZURE_FEDERATED_TOKEN_FILE``       token file (Kubernetes)
``KEYLESS_FEDERATED_TOKEN``                                           the token itself
``KEYLESS_ASSERTION_SOURCE``                                          auto, file, metadata, github, env
``KEYLESS_ASSERTION_AUDIENCE``                                        audience (metadata, GitHub)
``KEYLESS_METADATA_ACCOUNT``                                          service account (metadata)
=============================  =====================================  ==================================
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from keyless.credential._cache import CacheKey
from keyless.credential._errors import ClientAuthenticationError, CredentialUnavailableError
from keyless.credential._sources import (
    DEFAULT_AUDIENCE,
    DEFAULT_TOKEN_ENV,
    AssertionSource,
    CallableAssertion,
    EnvironmentAssertion,
    GitHubActionsAssertion,
    MetadataServerAssertion,
    TokenFileAssertion,
)
from keyless.credential._token_client import DEFAULT_AUTHORITY, check_tenant, merge_cae_claims
from keyless.credential._types import TokenRequestOptions

__all__ = [
    "SOURCE_NAMES",
    "Settings",
    "SourceName",
    "as_source",
    "detect_source",
    "make_source",
    "options_kwargs",
    "resolve_authority",
    "workload_settings",
]

SourceName = Literal["auto", "file", "metadata", "github", "env"]
SOURCE_NAMES: tuple[str, ...] = get_args(SourceName)
Clock = Callable[[], float]
_PRODUCT_NAME = Path("/sys/class/dmi/id/product_name")
_GOOGLE_RUNTIME_VARIABLES = ("K_SERVICE", "CLOUD_RUN_JOB", "FUNCTION_TARGET", "GAE_APPLICATION")


def _env(environ: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = environ.get(name)
        if value:
            return value
    return None


def resolve_authority(authority: str | None, environ: Mapping[str, str] | None = None) -> str:
    """``authority``, else KEYLESS_AUTHORITY_HOST, else AZURE_AUTHORITY_HOST, else Entra ID."""
    env = os.environ if environ is None else environ
    return authority or _env(env, "KEYLESS_AUTHORITY_HOST", "AZURE_AUTHORITY_HOST") or DEFAULT_AUTHORITY


def as_source(assertion: object, clock: Clock) -> AssertionSource:
    """An assertion source from what ``ClientAssertionCredential`` was given."""
    if isinstance(assertion, AssertionSource):
        return assertion
    if isinstance(assertion, str | bytes):
        raise TypeError(
            "assertion must be a callable or an assertion source, not a fixed token: a fixed token expires "
            "(wrap it in a function, or use EnvironmentAssertion / TokenFileAssertion)"
        )
    if callable(assertion):
        return CallableAssertion(assertion, clock=clock)
    raise TypeError(f"assertion must be a callable or an assertion source, not {type(assertion).__name__}")


# -- per-call options ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """What every credential call needs, checked once at construction."""

    tenant_id: str
    client_id: str
    allowed_tenants: frozenset[str]

    @classmethod
    def build(cls, tenant_id: str, client_id: str, additionally_allowed_tenants: Iterable[str]) -> Settings:
        if not client_id:
            raise ValueError("client_id must be the application (client) id")
        return cls(check_tenant(tenant_id), client_id, frozenset(additionally_allowed_tenants))

    def tenant_for(self, tenant_id: str | None) -> str:
        """The tenant of a request: ours, or an allowed other one (as azure-identity)."""
        if not tenant_id or tenant_id == self.tenant_id:
            return self.tenant_id
        if "*" in self.allowed_tenants or tenant_id in self.allowed_tenants:
            return check_tenant(tenant_id)
        raise ClientAuthenticationError(
            f"this credential is for tenant {self.tenant_id!r}; to get tokens for {tenant_id!r} add it to "
            "additionally_allowed_tenants (or '*' for any)"
        )

    def request(
        self, scopes: tuple[str, ...], claims: str | None, tenant_id: str | None, enable_cae: bool
    ) -> tuple[CacheKey, str | None]:
        """The cache key and the ``claims`` form value of a request."""
        if not scopes:
            raise ValueError('"get_token" requires at least one scope')
        tenant = self.tenant_for(tenant_id)
        return (tenant, scopes, claims, bool(enable_cae)), merge_cae_claims(claims, bool(enable_cae))


def options_kwargs(options: TokenRequestOptions | Mapping[str, Any] | None) -> dict[str, Any]:
    """``get_token_info``'s options as ``get_token``'s keywords."""
    if not options:
        return {}
    return {
        "claims": options.get("claims"),
        "tenant_id": options.get("tenant_id"),
        "enable_cae": bool(options.get("enable_cae", False)),
    }


# -- WorkloadIdentityCredential's environment -------------------------------------------------------


def _on_google_cloud(environ: Mapping[str, str]) -> bool:
    """Cloud Run / Functions / App Engine variables, or a GCE / GKE machine (as google-auth checks)."""
    if any(environ.get(name) for name in _GOOGLE_RUNTIME_VARIABLES):
        return True
    try:
        return _PRODUCT_NAME.read_text().strip().startswith("Google")
    except OSError:
        return False


def detect_source(environ: Mapping[str, str], token_file: str | None) -> str | None:
    """The source this environment offers, in order: a token file, the token in a variable,
    GitHub Actions, the Google metadata server. None when there is none."""
    if token_file:
        return "file"
    if environ.get(DEFAULT_TOKEN_ENV):
        return "env"
    if environ.get("ACTIONS_ID_TOKEN_REQUEST_URL") and environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"):
        return "github"
    if environ.get("GCE_METADATA_HOST") or environ.get("GCE_METADATA_ROOT") or _on_google_cloud(environ):
        return "metadata"
    return None


NO_SOURCE = (
    "no assertion source found: set AZURE_FEDERATED_TOKEN_FILE (Kubernetes workload identity), run on "
    "Google Cloud (or set GCE_METADATA_HOST), run in GitHub Actions with 'permissions: id-token: write', "
    f"or put the token in {DEFAULT_TOKEN_ENV}; KEYLESS_ASSERTION_SOURCE chooses one explicitly"
)


def make_source(
    name: str,
    environ: Mapping[str, str],
    *,
    token_file: str | None,
    audience: str | None,
    clock: Clock,
) -> AssertionSource:
    """The source called ``name`` (``auto``: :func:`detect_source`), configured from ``environ``."""
    if name not in SOURCE_NAMES:
        raise ValueError(f"unknown assertion source {name!r}: expected one of {', '.join(SOURCE_NAMES)}")
    chosen = detect_source(environ, token_file) if name == "auto" else name
    audience = audience or _env(environ, "KEYLESS_ASSERTION_AUDIENCE") or DEFAULT_AUDIENCE
    if chosen == "file":
        if not token_file:
            raise CredentialUnavailableError(
                "the file source needs token_file_path, AZURE_FEDERATED_TOKEN_FILE or "
                "KEYLESS_FEDERATED_TOKEN_FILE"
            )
        return TokenFileAssertion(token_file, clock=clock)
    if chosen == "env":
        return EnvironmentAssertion(DEFAULT_TOKEN_ENV, environ=environ, clock=clock)
    if chosen == "github":
        return GitHubActionsAssertion(audience, environ=environ, clock=clock)
    if chosen == "metadata":
        account = _env(environ, "KEYLESS_METADATA_ACCOUNT") or "default"
        return MetadataServerAssertion(audience, account=account, environ=environ, clock=clock)
    raise CredentialUnavailableError(NO_SOURCE)


@dataclass(frozen=True, slots=True)
class WorkloadSettings:
    tenant_id: str
    client_id: str
    authority: str
    source: AssertionSource


def workload_settings(
    *,
    tenant_id: str | None,
    client_id: str | None,
    token_file_path: str | os.PathLike[str] | None,
    source: str | AssertionSource,
    audience: str | None,
    authority: str | None,
    environ: Mapping[str, str] | None,
    clock: Clock = time.time,
) -> WorkloadSettings:
    """WorkloadIdentityCredential's configuration; every missing setting reported at once."""
    env = os.environ if environ is None else environ
    tenant = tenant_id or _env(env, "KEYLESS_TENANT_ID", "AZURE_TENANT_ID")
    client = client_id or _env(env, "KEYLESS_CLIENT_ID", "AZURE_CLIENT_ID")
    missing = [
        what
        for what, value in (
            ("tenant_id (or AZURE_TENANT_ID / KEYLESS_TENANT_ID)", tenant),
            ("client_id (or AZURE_CLIENT_ID / KEYLESS_CLIENT_ID)", client),
        )
        if not value
    ]
    if missing:
        raise CredentialUnavailableError("WorkloadIdentityCredential needs " + " and ".join(missing))
    assert tenant is not None
    assert client is not None
    if isinstance(source, str):
        name = source if source != "auto" else (_env(env, "KEYLESS_ASSERTION_SOURCE") or "auto")
        token_file = (
            os.fspath(token_file_path)
            if token_file_path
            else _env(env, "KEYLESS_FEDERATED_TOKEN_FILE", "AZURE_FEDERATED_TOKEN_FILE")
        )
        chosen = make_source(name, env, token_file=token_file, audience=audience, clock=clock)
    else:
        chosen = source
    return WorkloadSettings(tenant, client, resolve_authority(authority, env), chosen)
