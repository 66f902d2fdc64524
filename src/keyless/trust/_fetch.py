"""A small, bounded JSON GET for discovery documents and JWKS.

Remote issuers are untrusted input, so every fetch is fenced in: a URL policy (``https`` only;
plain ``http`` to a loopback host only when explicitly allowed; no userinfo), a total timeout,
no redirects, a cap on the body (read as a stream, abandoned past the cap) and a requirement for
``200`` with a JSON object. Every failure is a :class:`~keyless.errors.TransportError` whose
``retryable`` says whether trying again later may help (timeouts, connection errors, ``429``
and ``5xx``) or not (policy violations, other statuses, oversized or non-JSON bodies).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from keyless.errors import TransportError

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_TIMEOUT", "JsonFetcher", "check_fetch_url"]

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_BYTES = 512 * 1024


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_fetch_url(url: str, *, allow_http_loopback: bool) -> None:
    """Refuse URLs keyless must not fetch keys from; raises ``TransportError(retryable=False)``.

    ``https`` is required. Plain ``http`` is allowed only with ``allow_http_loopback`` and a
    loopback host (``127.0.0.0/8``, ``::1``, ``localhost``), for development and tests. URLs
    carrying userinfo (``user:pass@host``) are refused.
    """
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise TransportError(f"refusing to fetch {url!r}: not a valid URL", retryable=False) from None
    host = parts.hostname or ""
    if not host or not port_ok:
        raise TransportError(f"refusing to fetch {url!r}: the URL has no valid host", retryable=False)
    if parts.username is not None or parts.password is not None:
        raise TransportError(
            f"refusing to fetch {parts.scheme}://...@{host}: URLs with userinfo are not allowed",
            retryable=False,
        )
    scheme = parts.scheme.lower()
    if scheme == "https":
        return
    if scheme == "http" and allow_http_loopback and _is_loopback(host):
        return
    if scheme == "http":
        raise TransportError(
            f"refusing to fetch {url!r}: https is required (plain http only to a loopback host, "
            "and only when allow_http_loopback is set)",
            retryable=False,
        )
    raise TransportError(f"refusing to fetch {url!r}: https is required", retryable=False)


def _status_error(url: str, status: int) -> TransportError:
    if 300 <= status < 400:
        return TransportError(f"GET {url} returned {status}: redirects are not followed", retryable=False)
    retryable = status == 429 or status >= 500
    return TransportError(f"GET {url} returned {status}, expected 200", retryable=retryable)


def _declared_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _parse_object(url: str, body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise TransportError(f"GET {url} did not return valid JSON", retryable=False) from None
    if not isinstance(value, dict):
        raise TransportError(f"GET {url} returned JSON that is not an object", retryable=False)
    return value


@dataclass(frozen=True, slots=True)
class JsonFetcher:
    """Bounded ``GET`` of a JSON object over a shared ``httpx.AsyncClient``."""

    client: httpx.AsyncClient
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    allow_http_loopback: bool = False

    def check_url(self, url: str) -> None:
        """Apply :func:`check_fetch_url` with this fetcher's ``allow_http_loopback``."""
        check_fetch_url(url, allow_http_loopback=self.allow_http_loopback)

    async def get(self, url: str) -> dict[str, Any]:
        """Fetch ``url`` and return its JSON object; any failure raises ``TransportError``."""
        self.check_url(url)
        try:
            async with asyncio.timeout(self.timeout):
                body = await self._read(url)
        except TimeoutError:
            raise TransportError(f"GET {url} timed out after {self.timeout:g} s", retryable=True) from None
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise TransportError(f"GET {url} failed: {type(exc).__name__}: {exc}", retryable=True) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise TransportError(f"GET {url} failed: {type(exc).__name__}: {exc}", retryable=False) from None
        return _parse_object(url, body)

    async def _read(self, url: str) -> bytes:
        headers = {"Accept": "application/json"}
        async with self.client.stream(
            "GET", url, headers=headers, follow_redirects=False, timeout=self.timeout
        ) as response:
            if response.status_code != 200:
                raise _status_error(url, response.status_code)
            declared = _declared_length(response)
            if declared is not None and declared > self.max_bytes:
                raise self._too_large(url)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise self._too_large(url)
                chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, url: str) -> TransportError:
        return TransportError(f"GET {url} returned more than {self.max_bytes} bytes", retryable=False)
