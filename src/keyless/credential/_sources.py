"""Assertion sources: where the federated token presented as ``client_assertion`` comes from.

Each source has ``get()`` (sync) and ``aget()`` (async), is safe to share across threads and
tasks, and checks that what it returns looks like an unexpired JWT, raising
:class:`AssertionSourceError` that names the file, variable or endpoint otherwise:

* :class:`TokenFileAssertion`: a file (Kubernetes projected service-account token, AKS workload
  identity). The file is ``stat``-ed on every call and re-read when it changed (inode, device,
  size or mtime: the kubelet's atomic symlink swap changes the inode) or when the token it held
  is within ``refresh_margin`` of its ``exp``; an assertion is never older than the file.
* :class:`MetadataServerAssertion`: a Google ID token from the metadata server (GCE, Cloud Run,
  GKE), audience ``api://AzureADTokenExchange`` by default; ``GCE_METADATA_HOST`` is honoured.
* :class:`GitHubActionsAssertion`: GitHub Actions' OIDC token (``ACTIONS_ID_TOKEN_REQUEST_URL``
  and ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``; the job needs ``permissions: id-token: write``).
* :class:`EnvironmentAssertion`: the token itself in an environment variable.
* :class:`CallableAssertion`: any function returning the token (a coroutine function in async).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import httpx

from keyless.credential._errors import (
    AssertionSourceError,
    ClientAuthenticationError,
    CredentialUnavailableError,
)
from keyless.credential._jwt import inspect_assertion
from keyless.credential._retry import RETRY_STATUSES, RetryPolicy

__all__ = [
    "DEFAULT_AUDIENCE",
    "DEFAULT_METADATA_HOST",
    "DEFAULT_TOKEN_ENV",
    "AssertionSource",
    "CallableAssertion",
    "EnvironmentAssertion",
    "GitHubActionsAssertion",
    "MetadataServerAssertion",
    "TokenFileAssertion",
]

DEFAULT_AUDIENCE = "api://AzureADTokenExchange"
DEFAULT_METADATA_HOST = "metadata.google.internal"
DEFAULT_TOKEN_ENV = "KEYLESS_FEDERATED_TOKEN"
Clock = Callable[[], float]
_SOURCE_RETRY = RetryPolicy(max_attempts=3, base_delay=0.2, max_delay=2.0, max_retry_after=5.0)


@runtime_checkable
class AssertionSource(Protocol):
    """Anything with ``get()`` and ``aget()`` returning a client assertion (a JWT). A
    ``description`` attribute, when present, names it in errors and in ``keyless token``."""

    def get(self) -> str: ...

    async def aget(self) -> str: ...


# -- local sources ---------------------------------------------------------------------------------


class CallableAssertion:
    """``fn()`` is called for every token request; in async code it may return an awaitable."""

    def __init__(
        self,
        fn: Callable[[], str | Awaitable[str]],
        *,
        description: str | None = None,
        clock: Clock = time.time,
    ) -> None:
        if not callable(fn):
            raise TypeError("CallableAssertion needs a callable returning the assertion")
        self._fn = fn
        self._clock = clock
        self.description = description or f"assertion callable {getattr(fn, '__qualname__', fn)!r}"

    def _checked(self, value: object) -> str:
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        if not isinstance(value, str):
            raise AssertionSourceError(
                f"{self.description} returned {type(value).__name__}, not a str", source=self.description
            )
        return inspect_assertion(value, self.description, now=self._clock()).token

    def get(self) -> str:
        value = self._fn()
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()
            raise TypeError(f"{self.description} returned an awaitable: use keyless.credential.aio")
        return self._checked(value)

    async def aget(self) -> str:
        value = self._fn()
        if inspect.isawaitable(value):
            value = await value
        return self._checked(value)

    def __repr__(self) -> str:
        return f"CallableAssertion({self.description!r})"


class EnvironmentAssertion:
    """The token in environment variable ``name``, read on every call (so it may be updated)."""

    def __init__(
        self,
        name: str = DEFAULT_TOKEN_ENV,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.name = name
        self._environ = os.environ if environ is None else environ
        self._clock = clock
        self.description = f"environment variable {name}"

    def get(self) -> str:
        value = self._environ.get(self.name)
        if not value:
            raise CredentialUnavailableError(
                f"{self.description} is not set (it should hold the federated token)", source=self.description
            )
        return inspect_assertion(value, self.description, now=self._clock()).token

    async def aget(self) -> str:
        return self.get()

    def __repr__(self) -> str:
        return f"EnvironmentAssertion({self.name!r})"


@dataclass(frozen=True, slots=True)
class _FileState:
    signature: tuple[int, int, int, int]
    token: str
    exp: float | None


class TokenFileAssertion:
    """A token file, re-read when it changes or when its token nears expiry (see module docs)."""

    def __init__(
        self, path: str | os.PathLike[str], *, refresh_margin: float = 60.0, clock: Clock = time.time
    ):
        self.path = Path(path)
        self.refresh_margin = refresh_margin
        self._clock = clock
        self._state: _FileState | None = None
        self.description = f"token file {self.path}"
        self.reads = 0  # how many times the file was read (for tests and diagnostics)

    def _fail(self, why: str, *, unavailable: bool = False) -> ClientAuthenticationError:
        kind = CredentialUnavailableError if unavailable else AssertionSourceError
        return kind(f"{self.description}: {why}", source=str(self.path))

    def get(self) -> str:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise self._fail(
                "does not exist (is the projected service-account token volume mounted?)", unavailable=True
            ) from None
        except OSError as exc:
            raise self._fail(f"cannot be read: {exc.strerror}") from None
        signature = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)
        now = self._clock()
        state = self._state
        if (
            state is not None
            and state.signature == signature
            and (state.exp is None or state.exp - now > self.refresh_margin)
        ):
            return state.token
        return self._read(signature, now)

    def _read(self, signature: tuple[int, int, int, int], now: float) -> str:
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise self._fail(f"cannot be read: {exc.strerror}") from None
        self.reads += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._fail(f"not a JWT (it holds {len(raw)} bytes that are not UTF-8 text)") from None
        try:
            assertion = inspect_assertion(text, self.description, now=now)
        except AssertionSourceError as exc:
            exc.source = str(self.path)
            raise
        self._state = _FileState(signature, assertion.token, assertion.exp)
        return assertion.token

    async def aget(self) -> str:
        return self.get()  # a stat and (rarely) a read of a small local file: not worth a thread

    def __repr__(self) -> str:
        return f"TokenFileAssertion({str(self.path)!r})"


# -- sources over HTTP -----------------------------------------------------------------------------


class _HttpAssertion:
    """A token fetched with a GET, with a few quick retries on 429/5xx and transport errors."""

    description: str
    _trust_env = True

    def __init__(self, *, timeout: float, retry: RetryPolicy | None, clock: Clock) -> None:
        self.timeout = timeout
        self.retry = retry or _SOURCE_RETRY
        self._clock = clock
        self._lock = threading.Lock()
        self._sync: httpx.Client | None = None
        self._async: httpx.AsyncClient | None = None

    def _request(self) -> tuple[str, dict[str, str], dict[str, str]]:
        raise NotImplementedError

    def _token_from(self, response: httpx.Response) -> str:
        raise NotImplementedError

    def _status_problem(self, response: httpx.Response) -> AssertionSourceError:
        snippet = response.content[:200].decode("utf-8", "replace").strip()
        return AssertionSourceError(
            f"{self.description} answered HTTP {response.status_code}"
            + (f": {snippet!r}" if snippet else ""),
            status=response.status_code,
            retryable=response.status_code in RETRY_STATUSES,
            source=self.description,
        )

    def _transport_problem(self, exc: httpx.TransportError) -> AssertionSourceError:
        what = (
            "timed out" if isinstance(exc, httpx.TimeoutException) else f"failed: {type(exc).__name__}: {exc}"
        )
        return AssertionSourceError(
            f"request to {self.description} {what}", retryable=True, source=self.description
        )

    def _checked(self, token: str) -> str:
        return inspect_assertion(token, self.description, now=self._clock()).token

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._sync is None:
                self._sync = httpx.Client(timeout=self.timeout, trust_env=self._trust_env)
            return self._sync

    def _aclient(self) -> httpx.AsyncClient:
        with self._lock:
            if self._async is None:
                self._async = httpx.AsyncClient(timeout=self.timeout, trust_env=self._trust_env)
            return self._async

    def _url_and_headers(self) -> tuple[httpx.URL, dict[str, str]]:
        url, params, headers = self._request()
        # merged into the URL's own query (GitHub's URL already carries api-version)
        return httpx.URL(url).copy_merge_params(params), headers

    def get(self) -> str:
        url, headers = self._url_and_headers()
        started, attempt = time.monotonic(), 0
        while True:
            try:
                try:
                    response = self._client().get(url, headers=headers)
                except httpx.TransportError as exc:
                    raise self._transport_problem(exc) from None
                return self._token_from(response)
            except AssertionSourceError as failure:
                delay = self.retry.delay(failure, attempt, time.monotonic() - started)
                if delay is None:
                    raise
            time.sleep(delay)
            attempt += 1

    async def aget(self) -> str:
        url, headers = self._url_and_headers()
        started, attempt = time.monotonic(), 0
        while True:
            try:
                try:
                    response = await self._aclient().get(url, headers=headers)
                except httpx.TransportError as exc:
                    raise self._transport_problem(exc) from None
                return self._token_from(response)
            except AssertionSourceError as failure:
                delay = self.retry.delay(failure, attempt, time.monotonic() - started)
                if delay is None:
                    raise
            await asyncio.sleep(delay)
            attempt += 1

    def close(self) -> None:
        with self._lock:
            client, self._sync = self._sync, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        with self._lock:
            client, self._async = self._async, None
        if client is not None:
            await client.aclose()


def metadata_host(environ: Mapping[str, str] | None = None) -> str:
    """``GCE_METADATA_HOST`` (or the legacy ``GCE_METADATA_ROOT``), else metadata.google.internal."""
    env = os.environ if environ is None else environ
    return env.get("GCE_METADATA_HOST") or env.get("GCE_METADATA_ROOT") or DEFAULT_METADATA_HOST


class MetadataServerAssertion(_HttpAssertion):
    """A Google ID token for ``account`` from the metadata server's identity endpoint
    (``/computeMetadata/v1/instance/service-accounts/{account}/identity``)."""

    _trust_env = False  # never send metadata requests through a proxy

    def __init__(
        self,
        audience: str = DEFAULT_AUDIENCE,
        *,
        host: str | None = None,
        account: str = "default",
        format: Literal["standard", "full"] = "standard",
        timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(timeout=timeout, retry=retry, clock=clock)
        if not audience:
            raise ValueError("the metadata server needs a non-empty audience")
        self.audience = audience
        self.account = account
        self.format = format
        self.host = (host or metadata_host(environ)).rstrip("/")
        self.base_url = self.host if "://" in self.host else f"http://{self.host}"
        self.description = f"metadata server {self.base_url} (account {account})"

    def _request(self) -> tuple[str, dict[str, str], dict[str, str]]:
        url = f"{self.base_url}/computeMetadata/v1/instance/service-accounts/{self.account}/identity"
        return url, {"audience": self.audience, "format": self.format}, {"Metadata-Flavor": "Google"}

    def _token_from(self, response: httpx.Response) -> str:
        if response.headers.get("metadata-flavor", "").lower() != "google":
            raise AssertionSourceError(
                f"{self.description} answered HTTP {response.status_code} without 'Metadata-Flavor: Google': "
                "it is not a metadata server (check GCE_METADATA_HOST)",
                status=response.status_code,
                source=self.description,
            )
        if response.status_code == 404:
            raise AssertionSourceError(
                f"{self.description}: no such service account on this instance (HTTP 404)",
                status=404,
                source=self.description,
            )
        if response.status_code != 200:
            raise self._status_problem(response)
        return self._checked(response.text)

    def __repr__(self) -> str:
        return f"MetadataServerAssertion({self.audience!r}, host={self.host!r}, account={self.account!r})"


class GitHubActionsAssertion(_HttpAssertion):
    """GitHub Actions' OIDC token for ``audience`` (the job needs ``permissions: id-token: write``)."""

    def __init__(
        self,
        audience: str = DEFAULT_AUDIENCE,
        *,
        request_url: str | None = None,
        request_token: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(timeout=timeout, retry=retry, clock=clock)
        env = os.environ if environ is None else environ
        url = request_url or env.get("ACTIONS_ID_TOKEN_REQUEST_URL")
        token = request_token or env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        if not url or not token:
            raise CredentialUnavailableError(
                "GitHub Actions OIDC is not available: ACTIONS_ID_TOKEN_REQUEST_URL and "
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN are set only in jobs with 'permissions: id-token: write'",
                source="GitHub Actions",
            )
        self.audience = audience
        self._url = url
        self._token = token
        self.description = "GitHub Actions OIDC token endpoint"

    def _request(self) -> tuple[str, dict[str, str], dict[str, str]]:
        params = {"audience": self.audience} if self.audience else {}
        return self._url, params, {"Authorization": f"bearer {self._token}", "Accept": "application/json"}

    def _token_from(self, response: httpx.Response) -> str:
        if response.status_code != 200:
            raise self._status_problem(response)
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        value = body.get("value") if isinstance(body, dict) else None
        if not isinstance(value, str):
            raise AssertionSourceError(
                f"{self.description} answered without a 'value' member holding the token",
                source=self.description,
            )
        return self._checked(value)

    def __repr__(self) -> str:
        return f"GitHubActionsAssertion({self.audience!r})"
