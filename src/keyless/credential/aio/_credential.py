"""The asynchronous credentials: the twins of ``keyless.credential``'s, for asyncio (azure-core's
``AsyncTokenCredential`` and ``AsyncSupportsTokenInfo`` protocols).

    async with WorkloadIdentityCredential() as credential:
        token = await credential.get_token("api://blob-api/.default")
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx

from keyless.credential._cache import Entry
from keyless.credential._config import SourceName, options_kwargs, workload_settings
from keyless.credential._credential import CredentialCore
from keyless.credential._retry import RetryPolicy
from keyless.credential._sources import AssertionSource
from keyless.credential._token_client import DEFAULT_TIMEOUT, AsyncTokenClient, Verify
from keyless.credential._types import AccessToken, AccessTokenInfo, TokenRequestOptions

__all__ = ["ClientAssertionCredential", "WorkloadIdentityCredential"]

Clock = Callable[[], float]


class ClientAssertionCredential(CredentialCore):
    """The async ``ClientAssertionCredential``: ``assertion`` may also be a coroutine function.

    Concurrent ``get_token`` calls from many tasks of one event loop share a single token
    request per key; see ``keyless.credential.ClientAssertionCredential`` for the options.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        assertion: Callable[[], str | Awaitable[str]] | AssertionSource,
        *,
        authority: str | None = None,
        additionally_allowed_tenants: Iterable[str] = (),
        verify: Verify = True,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
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
        self._client = AsyncTokenClient(
            self.authority, http_client=http_client, verify=verify, timeout=timeout, retry=retry, clock=clock
        )

    async def get_token(
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
        return (await self._entry(scopes, claims, tenant_id, enable_cae)).access_token

    async def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | Mapping[str, Any] | None = None
    ) -> AccessTokenInfo:
        """The token with ``token_type`` and ``refresh_on`` (azure-core's ``AsyncSupportsTokenInfo``)."""
        if not options:
            entry = self._cache.entries.get((self._tenant_id, scopes, None, False))
            if entry is not None and self._clock() < entry.check_at:
                return entry.info
        return (await self._entry(scopes, **options_kwargs(options))).info

    async def _entry(
        self,
        scopes: tuple[str, ...],
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
    ) -> Entry:
        key, form_claims = self._settings.request(scopes, claims, tenant_id, enable_cae)
        tenant, client_id, source = key[0], self.client_id, self.source

        async def fetch() -> Any:
            return await self._client.request_token(tenant, client_id, scopes, form_claims, source.aget)

        return await self._cache.aget(key, fetch)

    async def close(self) -> None:
        """Close the HTTP connections (the credential can still be used: they are re-opened)."""
        await self._client.aclose()
        aclose = getattr(self.source, "aclose", None)
        if callable(aclose):
            await aclose()

    async def __aenter__(self) -> ClientAssertionCredential:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class WorkloadIdentityCredential(ClientAssertionCredential):
    """The async ``WorkloadIdentityCredential``: configured from the environment like the sync one."""

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
