"""The one network call of the credential: ``POST {authority}/{tenant}/oauth2/v2.0/token`` with a
``client_assertion`` (client credentials with a JWT bearer client assertion), answered by Entra ID
or keyless.

The request carries ``client_id``, ``grant_type=client_credentials``, ``client_assertion_type``
(jwt-bearer), ``client_assertion``, ``scope`` and, when asked for, ``claims`` (the fields
azure-identity sends). The answer is read in both shapes: v2 (integers) and v1 (numbers as
strings, ``expires_on``); ``expires_on`` wins over ``expires_in``, and ``refresh_in`` gives the
proactive refresh time. An error body becomes a :class:`ClientAuthenticationError` carrying the
AADSTS code, description, trace and correlation ids. Retries follow :class:`RetryPolicy`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import ssl
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import httpx

from keyless import __version__
from keyless.credential._errors import (
    AssertionSourceError,
    ClientAuthenticationError,
    CredentialUnavailableError,
)
from keyless.credential._retry import RETRY_STATUSES, RetryPolicy, parse_retry_after
from keyless.errors import ConfigurationError

__all__ = [
    "DEFAULT_AUTHORITY",
    "JWT_BEARER",
    "AsyncTokenClient",
    "TokenClient",
    "TokenResult",
    "Verify",
    "check_tenant",
    "merge_cae_claims",
    "normalize_authority",
    "parse_token_response",
    "ssl_verify",
]

log = logging.getLogger("keyless.credential")

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEFAULT_TIMEOUT = 10.0
USER_AGENT = f"keyless-credential/{__version__}"
_TENANT = re.compile(r"[A-Za-z0-9.-]+")
_AADSTS = re.compile(r"^AADSTS(\d+)")
_TRACE = re.compile(r"Trace ID: ([0-9A-Fa-f-]+)")
_CORRELATION = re.compile(r"Correlation ID: ([0-9A-Fa-f-]+)")
_TIMESTAMP = re.compile(r"Timestamp: ([0-9: -]+Z)")

Verify: TypeAlias = ssl.SSLContext | bool | str | os.PathLike[str]


# -- configuration ---------------------------------------------------------------------------------


def normalize_authority(authority: str) -> str:
    """``https://host[:port][/path]`` without a trailing slash; https is required (as azure-identity)."""
    value = authority.strip().rstrip("/")
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    if parts.scheme.lower() != "https":
        raise ConfigurationError(
            f"{authority!r} is an invalid authority: it must be a TLS protected (https) URL, "
            "like https://login.microsoftonline.com or https://localhost:8443 for keyless"
        )
    if not parts.hostname or parts.query or parts.fragment:
        raise ConfigurationError(f"{authority!r} is an invalid authority: expected https://host[:port]")
    return value


def check_tenant(tenant_id: str) -> str:
    """A tenant id or domain: letters, digits, ``-`` and ``.`` only (it becomes a URL path segment)."""
    if not tenant_id or not _TENANT.fullmatch(tenant_id):
        raise ConfigurationError(
            f"{tenant_id!r} is not a tenant id: use the tenant's GUID or domain (letters, digits, '-', '.')"
        )
    return tenant_id


def ssl_verify(verify: Verify) -> ssl.SSLContext | bool:
    """httpx's ``verify``: a CA file path becomes an SSLContext (httpx 0.28 deprecates paths)."""
    if isinstance(verify, ssl.SSLContext | bool):
        return verify
    return ssl.create_default_context(cafile=os.fspath(verify))


def merge_cae_claims(claims: str | None, enable_cae: bool) -> str | None:
    """The ``claims`` parameter: the caller's claims, plus the CP1 capability when CAE is enabled
    (merged the way azure-identity merges them)."""
    if not enable_cae:
        return claims or None
    merged: dict[str, Any] = {"access_token": {"xms_cc": {"values": ["CP1"]}}}
    if claims:
        try:
            extra = json.loads(claims)
        except ValueError:
            raise ValueError("claims must be a JSON object (a claims challenge)") from None
        if not isinstance(extra, dict):
            raise ValueError("claims must be a JSON object (a claims challenge)")
        for name, value in extra.items():
            if isinstance(merged.get(name), dict) and isinstance(value, dict):
                merged[name].update(value)
            else:
                merged[name] = value
    return json.dumps(merged, separators=(",", ":"))


# -- the response ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenResult:
    """An access token as the token endpoint issued it."""

    token: str
    token_type: str
    expires_on: int  # Unix seconds
    refresh_in: float | None  # the server's refresh_in, when it sent one
    requested_at: float  # the clock when the request was sent


def _number(value: Any) -> float | None:
    """v2 sends integers, v1 the same numbers as strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _oauth_error(url: str, status: int, body: Mapping[str, Any], retry_after: float | None) -> Exception:
    error = _text(body.get("error"))
    description = _text(body.get("error_description")) or ""
    codes = [c for c in body.get("error_codes") or [] if isinstance(c, int) and not isinstance(c, bool)]
    found = _AADSTS.match(description)
    aadsts = codes[0] if codes else int(found.group(1)) if found else None
    trace = _text(body.get("trace_id")) or _group(_TRACE, description)
    correlation = _text(body.get("correlation_id")) or _group(_CORRELATION, description)
    return ClientAuthenticationError(
        f"token request to {url} failed (HTTP {status}): ({error or 'no error code'}) {description}".rstrip(),
        error=error,
        error_description=description or None,
        aadsts=aadsts,
        error_codes=codes,
        trace_id=trace,
        correlation_id=correlation,
        timestamp=_text(body.get("timestamp")) or _group(_TIMESTAMP, description),
        error_uri=_text(body.get("error_uri")),
        status=status,
        retryable=status in RETRY_STATUSES,
        retry_after=retry_after,
    )


def _group(pattern: re.Pattern[str], text: str) -> str | None:
    found = pattern.search(text)
    return found.group(1) if found else None


def _snippet(content: bytes) -> str:
    text = content[:200].decode("utf-8", "replace").strip()
    return f": {text!r}" if text else ""


def parse_token_response(response: httpx.Response, *, url: str, requested_at: float) -> TokenResult:
    """The token in ``response``, or the error it describes (ClientAuthenticationError)."""
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    if isinstance(body, dict) and ("error" in body or status >= 400):
        raise _oauth_error(url, status, body, retry_after)
    if status >= 400:
        raise ClientAuthenticationError(
            f"token request to {url} failed (HTTP {status}){_snippet(response.content)}",
            status=status,
            retryable=status in RETRY_STATUSES,
            retry_after=retry_after,
        )
    if not isinstance(body, dict):
        what = "no content" if not response.content else "a body that is not a JSON object"
        raise ClientAuthenticationError(
            f"token endpoint {url} answered HTTP {status} with {what}", status=status
        )
    token = body.get("access_token")
    expires_on, expires_in = _number(body.get("expires_on")), _number(body.get("expires_in"))
    if not isinstance(token, str) or not token or (expires_on is None and expires_in is None):
        raise ClientAuthenticationError(
            f"unexpected response from {url}: no access_token or no expires_in/expires_on "
            f"(members: {', '.join(sorted(body)) or 'none'})",
            status=status,
        )
    if expires_on is None:
        assert expires_in is not None
        expires_on = requested_at + expires_in
    return TokenResult(
        token=token,
        token_type=_text(body.get("token_type")) or "Bearer",
        expires_on=int(expires_on),
        refresh_in=_number(body.get("refresh_in")),
        requested_at=requested_at,
    )


# -- transport failures ----------------------------------------------------------------------------


def _untrusted_certificate(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def transport_failure(exc: httpx.TransportError, url: str, timeout: float) -> ClientAuthenticationError:
    if isinstance(exc, httpx.TimeoutException):
        return ClientAuthenticationError(
            f"token request to {url} timed out ({type(exc).__name__} after {timeout:g} s)", retryable=True
        )
    if _untrusted_certificate(exc):
        return ClientAuthenticationError(
            f"the certificate of {url} is not trusted: pass verify=<CA file or ssl.SSLContext> or set "
            "SSL_CERT_FILE (for keyless: the local CA is <data dir>/tls/ca.pem)",
            retryable=False,
        )
    return ClientAuthenticationError(
        f"token request to {url} failed: {type(exc).__name__}: {exc}", retryable=True
    )


# -- the clients -----------------------------------------------------------------------------------


class _TokenClientBase:
    def __init__(
        self,
        authority: str,
        *,
        verify: Verify = True,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.authority = normalize_authority(authority)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._verify = verify
        self._clock = clock
        self._monotonic = monotonic
        self._client_lock = threading.Lock()

    def token_url(self, tenant_id: str) -> str:
        return f"{self.authority}/{tenant_id}/oauth2/v2.0/token"

    @staticmethod
    def form(client_id: str, scopes: Sequence[str], claims: str | None) -> dict[str, str]:
        form = {
            "client_id": client_id,
            "grant_type": "client_credentials",
            "client_assertion_type": JWT_BEARER,
            "scope": " ".join(scopes),
        }
        if claims:
            form["claims"] = claims
        return form

    @staticmethod
    def headers() -> dict[str, str]:
        return {
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "x-ms-client-request-id": str(uuid.uuid4()),
        }

    def _client_options(self) -> dict[str, Any]:
        return {"verify": ssl_verify(self._verify), "timeout": self.timeout, "follow_redirects": False}

    def _next_delay(self, failure: ClientAuthenticationError, attempt: int, started: float) -> float | None:
        elapsed = self._monotonic() - started
        delay = self.retry.delay(failure, attempt, elapsed)
        if delay is None:
            if attempt:
                failure.add_note(f"gave up after {attempt + 1} attempts in {elapsed:.1f} s")
            return None
        log.info("token request failed (%s); retrying in %.2f s", failure.message, delay)
        return delay


class TokenClient(_TokenClientBase):
    """Synchronous token requests with retries; safe to share across threads."""

    def __init__(
        self,
        authority: str,
        *,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **options: Any,
    ) -> None:
        super().__init__(authority, **options)
        self._http = http_client
        self._owns_http = http_client is None
        self._sleep = sleep

    def _client(self) -> httpx.Client:
        client = self._http
        if client is None:
            with self._client_lock:
                if self._http is None:
                    self._http = httpx.Client(**self._client_options())
                client = self._http
        return client

    def request_token(
        self,
        tenant_id: str,
        client_id: str,
        scopes: Sequence[str],
        claims: str | None,
        assertion: Callable[[], str],
    ) -> TokenResult:
        url, form = self.token_url(tenant_id), self.form(client_id, scopes, claims)
        started = self._monotonic()
        attempt = 0
        while True:
            try:
                return self._once(url, form, assertion())
            except ClientAuthenticationError as failure:
                if isinstance(failure, AssertionSourceError | CredentialUnavailableError):
                    raise  # the assertion source failed; it retries on its own
                delay = self._next_delay(failure, attempt, started)
                if delay is None:
                    raise
            self._sleep(delay)
            attempt += 1

    def _once(self, url: str, form: dict[str, str], assertion: str) -> TokenResult:
        requested_at = self._clock()
        try:
            response = self._client().post(
                url, data={**form, "client_assertion": assertion}, headers=self.headers()
            )
        except httpx.TransportError as exc:
            raise transport_failure(exc, url, self.timeout) from None
        return parse_token_response(response, url=url, requested_at=requested_at)

    def close(self) -> None:
        with self._client_lock:
            client, self._http = self._http, None
        if client is not None and self._owns_http:
            client.close()
        elif client is not None:
            self._http = client  # not ours to close


class AsyncTokenClient(_TokenClientBase):
    """Asynchronous token requests with retries (httpx.AsyncClient)."""

    def __init__(
        self,
        authority: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(authority, **options)
        self._http = http_client
        self._owns_http = http_client is None
        self._sleep = sleep

    def _client(self) -> httpx.AsyncClient:
        client = self._http
        if client is None:
            with self._client_lock:
                if self._http is None:
                    self._http = httpx.AsyncClient(**self._client_options())
                client = self._http
        return client

    async def request_token(
        self,
        tenant_id: str,
        client_id: str,
        scopes: Sequence[str],
        claims: str | None,
        assertion: Callable[[], Awaitable[str]],
    ) -> TokenResult:
        url, form = self.token_url(tenant_id), self.form(client_id, scopes, claims)
        started = self._monotonic()
        attempt = 0
        while True:
            try:
                return await self._once(url, form, await assertion())
            except ClientAuthenticationError as failure:
                if isinstance(failure, AssertionSourceError | CredentialUnavailableError):
                    raise
                delay = self._next_delay(failure, attempt, started)
                if delay is None:
                    raise
            await (self._sleep or asyncio.sleep)(delay)
            attempt += 1

    async def _once(self, url: str, form: dict[str, str], assertion: str) -> TokenResult:
        requested_at = self._clock()
        try:
            response = await self._client().post(
                url, data={**form, "client_assertion": assertion}, headers=self.headers()
            )
        except httpx.TransportError as exc:
            raise transport_failure(exc, url, self.timeout) from None
        return parse_token_response(response, url=url, requested_at=requested_at)

    async def aclose(self) -> None:
        with self._client_lock:
            client, self._http = self._http, None
        if client is not None and self._owns_http:
            await client.aclose()
        elif client is not None:
            self._http = client
