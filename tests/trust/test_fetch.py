"""The bounded JSON GET: URL policy, status handling, body cap, timeouts."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from tests._support.oidc_issuer import TestIssuer

from keyless.errors import TransportError
from keyless.trust import JsonFetcher, check_fetch_url


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as running:
        yield running


def _mock_fetcher(
    handler: Callable[[httpx.Request], httpx.Response], *, max_bytes: int = 512 * 1024
) -> JsonFetcher:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return JsonFetcher(client, max_bytes=max_bytes)


# -- URL policy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", [False, True])
def test_https_urls_are_allowed(flag: bool) -> None:
    check_fetch_url("https://accounts.google.com/.well-known/openid-configuration", allow_http_loopback=flag)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://example.com/jwks"]
)
def test_plain_http_is_refused_without_the_loopback_flag(url: str) -> None:
    with pytest.raises(TransportError, match="https is required") as caught:
        check_fetch_url(url, allow_http_loopback=False)
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/jwks", "http://127.9.9.9/jwks", "http://[::1]:9000/jwks", "http://LOCALHOST/x"],
)
def test_plain_http_to_loopback_is_allowed_with_the_flag(url: str) -> None:
    check_fetch_url(url, allow_http_loopback=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/jwks",
        "http://10.0.0.1/jwks",
        "http://169.254.169.254/",
        "http://localhost.evil.com/",
    ],
)
def test_plain_http_to_other_hosts_is_refused_even_with_the_flag(url: str) -> None:
    with pytest.raises(TransportError, match="https is required"):
        check_fetch_url(url, allow_http_loopback=True)


@pytest.mark.parametrize(
    "url", ["https://user:secret@issuer.example/jwks", "https://user@issuer.example/jwks"]
)
def test_urls_with_userinfo_are_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(TransportError, match="userinfo") as caught:
        check_fetch_url(url, allow_http_loopback=True)
    assert "secret" not in str(caught.value)
    assert caught.value.retryable is False


@pytest.mark.parametrize("url", ["ftp://issuer.example/jwks", "file:///etc/passwd", "https:///jwks", "jwks"])
def test_other_schemes_and_hostless_urls_are_refused(url: str) -> None:
    with pytest.raises(TransportError):
        check_fetch_url(url, allow_http_loopback=True)


async def test_the_fetcher_applies_the_url_policy_before_any_request() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    fetcher = _mock_fetcher(handler)
    with pytest.raises(TransportError, match="https is required"):
        await fetcher.get("http://issuer.example/jwks")
    assert seen == []


# -- responses -----------------------------------------------------------------------------------


async def test_a_json_object_is_returned(issuer: TestIssuer) -> None:
    async with httpx.AsyncClient() as client:
        document = await JsonFetcher(client, allow_http_loopback=True).get(issuer.discovery_url)
    assert document["issuer"] == issuer.url
    assert issuer.requests[issuer.discovery_path] == 1


async def test_a_body_larger_than_the_cap_is_refused() -> None:
    fetcher = _mock_fetcher(lambda _: httpx.Response(200, content=b"{" + b" " * 2000 + b"}"), max_bytes=1024)
    with pytest.raises(TransportError, match="more than 1024 bytes") as caught:
        await fetcher.get("https://issuer.example/jwks")
    assert caught.value.retryable is False


async def test_a_streamed_body_is_abandoned_once_past_the_cap() -> None:
    produced: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for n in range(10_000):
            produced.append(n)
            yield b" " * 1024

    fetcher = _mock_fetcher(lambda _: httpx.Response(200, content=endless()), max_bytes=4096)
    with pytest.raises(TransportError, match="more than 4096 bytes"):
        await fetcher.get("https://issuer.example/jwks")
    assert len(produced) <= 6


async def test_a_body_within_the_cap_is_accepted() -> None:
    fetcher = _mock_fetcher(lambda _: httpx.Response(200, json={"keys": []}), max_bytes=64)
    assert await fetcher.get("https://issuer.example/jwks") == {"keys": []}


@pytest.mark.parametrize("body", [b"<html>not json</html>", b"", b"[1, 2]", b'"text"', b"{"])
async def test_non_json_or_non_object_bodies_are_refused(body: bytes) -> None:
    fetcher = _mock_fetcher(lambda _: httpx.Response(200, content=body))
    with pytest.raises(TransportError, match=re.escape("https://issuer.example/jwks")) as caught:
        await fetcher.get("https://issuer.example/jwks")
    assert caught.value.retryable is False


async def test_404_is_not_retryable_and_names_url_and_status(issuer: TestIssuer) -> None:
    async with httpx.AsyncClient() as client:
        fetcher = JsonFetcher(client, allow_http_loopback=True)
        with pytest.raises(TransportError) as caught:
            await fetcher.get(issuer.base_url + "/missing")
    assert caught.value.retryable is False
    assert "/missing" in str(caught.value)
    assert "404" in str(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_server_errors_and_429_are_retryable(status: int) -> None:
    fetcher = _mock_fetcher(lambda _: httpx.Response(status, json={}))
    with pytest.raises(TransportError, match=str(status)) as caught:
        await fetcher.get("https://issuer.example/jwks")
    assert caught.value.retryable is True


async def test_503_from_a_real_server_is_retryable(issuer: TestIssuer) -> None:
    issuer.down()
    async with httpx.AsyncClient() as client:
        with pytest.raises(TransportError, match="503") as caught:
            await JsonFetcher(client, allow_http_loopback=True).get(issuer.jwks_uri)
    assert caught.value.retryable is True


@pytest.mark.parametrize("status", [400, 401, 403, 410])
async def test_other_client_errors_are_not_retryable(status: int) -> None:
    fetcher = _mock_fetcher(lambda _: httpx.Response(status, json={}))
    with pytest.raises(TransportError) as caught:
        await fetcher.get("https://issuer.example/jwks")
    assert caught.value.retryable is False


async def test_redirects_are_not_followed() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "https://elsewhere.example/jwks"})

    fetcher = _mock_fetcher(handler)
    with pytest.raises(TransportError, match="redirects are not followed") as caught:
        await fetcher.get("https://issuer.example/jwks")
    assert caught.value.retryable is False
    assert seen == ["https://issuer.example/jwks"]


async def test_a_server_slower_than_the_timeout_is_a_retryable_failure(issuer: TestIssuer) -> None:
    issuer.set_delay(issuer.jwks_path, 1.5)
    async with httpx.AsyncClient() as client:
        fetcher = JsonFetcher(client, timeout=0.4, allow_http_loopback=True)
        with pytest.raises(TransportError, match="timed out") as caught:
            await fetcher.get(issuer.jwks_uri)
    assert caught.value.retryable is True


async def test_a_refused_connection_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with httpx.AsyncClient() as client:
        with pytest.raises(TransportError, match="ConnectError") as caught:
            await JsonFetcher(client, allow_http_loopback=True).get(f"http://127.0.0.1:{port}/jwks")
    assert caught.value.retryable is True
