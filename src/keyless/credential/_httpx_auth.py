"""``httpx.Auth`` for plain httpx users: a bearer token from any credential on every request.

    with httpx.Client(auth=KeylessAuth(credential, "api://blob-api/.default")) as client:
        client.get("https://blob-api.example/blobs/a")

It works with the sync credentials on ``httpx.Client`` and with both on ``httpx.AsyncClient``
(the async credentials are awaited). The token comes from the credential's cache, so it is
refreshed before expiry. A ``401`` carrying a CAE claims challenge
(``WWW-Authenticate: Bearer error="insufficient_claims", claims="<base64>"``) is answered once with
a token requested with those claims. Like azure-core, it refuses to send a token over plain
http unless ``enforce_https=False``.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import re
from collections.abc import AsyncGenerator, Generator, Iterable
from typing import Any, Protocol

import httpx

from keyless.errors import ConfigurationError

__all__ = ["KeylessAuth"]

_CHALLENGE_ERROR = re.compile(r'error\s*=\s*"?insufficient_claims"?', re.IGNORECASE)
_CHALLENGE_CLAIMS = re.compile(r'claims\s*=\s*"([^"]+)"', re.IGNORECASE)


class TokenProvider(Protocol):
    def get_token(self, *scopes: str, claims: str | None = None, **kwargs: Any) -> Any: ...


def claims_challenge(response: httpx.Response) -> str | None:
    """The claims a ``401`` asks for (CAE), decoded from base64; None when there is no challenge."""
    if response.status_code != 401:
        return None
    header = response.headers.get("www-authenticate", "")
    found = _CHALLENGE_CLAIMS.search(header)
    if not found or not _CHALLENGE_ERROR.search(header):
        return None
    raw = found.group(1)
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


class KeylessAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <token>`` for ``scopes`` from ``credential``."""

    requires_request_body = True  # a claims challenge replays the request

    def __init__(
        self, credential: TokenProvider, scopes: str | Iterable[str], *, enforce_https: bool = True
    ) -> None:
        self.credential = credential
        self.scopes = (scopes,) if isinstance(scopes, str) else tuple(scopes)
        if not self.scopes:
            raise ValueError("KeylessAuth needs at least one scope, like 'api://blob-api/.default'")
        self.enforce_https = enforce_https

    def _check(self, request: httpx.Request) -> None:
        if self.enforce_https and request.url.scheme != "https":
            raise ConfigurationError(
                f"refusing to send a bearer token over plain http to {request.url.host}: use https "
                "(or KeylessAuth(..., enforce_https=False) for local development)"
            )

    def _authorize(self, request: httpx.Request, token: Any) -> None:
        request.headers["Authorization"] = f"Bearer {token.token}"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._check(request)
        self._authorize(request, self._sync_token())
        response = yield request
        claims = claims_challenge(response)
        if claims is not None:
            self._authorize(request, self._sync_token(claims))
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        self._check(request)
        self._authorize(request, await self._async_token())
        response = yield request
        claims = claims_challenge(response)
        if claims is not None:
            self._authorize(request, await self._async_token(claims))
            yield request

    def _sync_token(self, claims: str | None = None) -> Any:
        token = self.credential.get_token(*self.scopes, claims=claims)
        if inspect.isawaitable(token):
            if inspect.iscoroutine(token):
                token.close()
            raise TypeError("an async credential (keyless.credential.aio) needs an httpx.AsyncClient")
        return token

    async def _async_token(self, claims: str | None = None) -> Any:
        token = self.credential.get_token(*self.scopes, claims=claims)
        if inspect.isawaitable(token):
            token = await token
        return token
