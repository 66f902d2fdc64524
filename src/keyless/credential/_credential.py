"""The synchronous credentials: azure-core's ``TokenCredential`` and ``SupportsTokenInfo``
protocols, implemented without azure-core (whose types are used when it is installed).

    credential = WorkloadIdentityCredential()            # tenant, client and source from the environment
    token = credential.get_token("api://blob-api/.default")
    BlobServiceClient(url, credential=credential)        # any Azure SDK client
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx

from keyless.credential._cache import Entry, TokenCache
from keyless.credential._config import (
    Settings,
    SourceName,
    as_source,
    options_kwargs,
    resolve_authority,
    workload_settings,
)
from keyless.credential._retry import RetryPolicy
from keyless.credential._sources import AssertionSource
from keyless.credential._token_client import DEFAULT_TIMEOUT, TokenClient, Verify, normalize_authority
from keyless.credential._types import AccessToken, AccessTokenInfo, TokenRequestOptions

__all__ = ["ClientAssertionCredential", "WorkloadIdentityCredential"]

Clock = Callable[[], float]


class CredentialCore:
    """What the sync and async credentials share: settings, the source, the cache."""

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        assertion: Callable[[], Any] | AssertionSource,
        *,
        authority: str | None,
        additionally_allowed_tenants: Iterable[str],
        clock: Clock,
    ) -> None:
        self._settings = Settings.build(tenant_id, client_id, additionally_allowed_tenants)
        self._tenant_id = self._settings.tenant_id
        self.authority = normalize_authority(resolve_authority(authority))
        self.source: AssertionSource = as_source(assertion, clock)
        self._clock = clock
        self._cache = TokenCache(clock)

    @property
    def tenant_id(self) -> str:
        return self._settings.tenant_id

    @property
    def client_id(self) -> str:
        return self._settings.client_id

    def __repr__(self) -> str:
        what = getattr(self.source, "description", repr(self.source))
        return (
            f"{type(self).__name__}(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, "
            f"authority={self.authority!r}, source={what!r})"
        )


class ClientAssertionCredential(CredentialCore):
    """Access tokens for ``client_id`` in ``tenant_id``, authenticating with a federated assertion.

    ``assertion`` is a zero-argument callable returning the assertion (called for every token
    request, as azure-identity's ``func``) or an assertion source (``TokenFileAssertion``,
    ``MetadataServerAssertion``...). ``authority`` defaults to ``KEYLESS_AUTHORITY_HOST``, then
    ``AZURE_AUTHORITY_HOST``, then ``https://login.microsoftonline.com``; https only.
    ``verify`` is an ``ssl.SSLContext``, a CA file, or a bool (default: httpx's, which honours
    ``SSL_CERT_FILE``). ``retry`` tunes retries, including the bounded retry of AADSTS70021.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        assertion: Callable[[], str] | AssertionSource,
        *,
        authority: str | None = None,
        additionally_allowed_tenants: Iterable[str] = (),
        verify: Verify = True,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http_client: httpx.Client | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(
            tenant_id,
            client_id,
            assertion,
            authority=authority,
            additionally_allowed_tenants=additionally_allowed_tenants,
            clock=clock,
        )
        self._client = TokenClient(
            self.authority, http_client=http_client, verify=verify, timeout=timeout, retry=retry, clock=clock
        )

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """An access token for ``scopes`` (``{resource}/.default``), from the cache when fresh."""
        entry = self._cache.entries.get((tenant_id or self._tenant_id, scopes, claims, enable_cae))
        if entry is not None and self._clock() < entry.check_at:
            return entry.access_token
        return self._entry(scopes, claims, tenant_id, enable_cae).access_token

    def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | Mapping[str, Any] | None = None
    ) -> AccessTokenInfo:
        """The token with ``token_type`` and ``refresh_on`` (azure-core's ``SupportsTokenInfo``)."""
        if not options:
            entry = self._cache.entries.get((self._tenant_id, scopes, None, False))
            if entry is not None and self._clock() < entry.check_at:
                return entry.info
        return self._entry(scopes, **options_kwargs(options)).info

    def _entry(
        self,
        scopes: tuple[str, ...],
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
    ) -> Entry:
        key, form_claims = self._settings.request(scopes, claims, tenant_id, enable_cae)
        tenant, client_id, source = key[0], self.client_id, self.source

        def fetch() -> Any:
            return self._client.request_token(tenant, client_id, scopes, form_claims, source.get)

        return self._cache.get(key, fetch)

    def close(self) -> None:
        """Close the HTTP connections (the credential can still be used: they are re-opened)."""
        self._client.close()
        close = getattr(self.source, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> ClientAssertionCredential:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class WorkloadIdentityCredential(ClientAssertionCredential):
    """A ``ClientAssertionCredential`` configured from the environment, with its source picked
    automatically: a token file (``AZURE_FEDERATED_TOKEN_FILE``), a token in ``KEYLESS_FEDERATED_TOKEN``,
    GitHub Actions, or the Google metadata server (see ``docs/credential.md``). Explicit arguments
    win over the environment; ``source`` forces one (``"file"``, ``"metadata"``, ``"github"``,
    ``"env"``) or is an assertion source itself.
    """

    def __init__(
        self,
        *,
        tenant_id: str | None = None,
        client_id: str | None = None,
        token_file_path: str | os.PathLike[str] | None = None,
        source: SourceName | AssertionSource = "auto",
        audience: str | None = None,
        authority: str | None = None,
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        found = workload_settings(
            tenant_id=tenant_id,
            client_id=client_id,
            token_file_path=token_file_path,
            source=source,
            audience=audience,
            authority=authority,
            environ=environ,
            clock=options.get("clock", time.time),
        )
        super().__init__(found.tenant_id, found.client_id, found.source, authority=found.authority, **options)
