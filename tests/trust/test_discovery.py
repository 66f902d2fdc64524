"""OIDC discovery: the document must name exactly the issuer we asked about and a fetchable jwks_uri."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from tests._support.oidc_issuer import TestIssuer

from keyless.errors import TransportError
from keyless.trust import JsonFetcher, ProviderMetadata, discover, discovery_url_for


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as running:
        yield running


@pytest.fixture
async def fetcher() -> AsyncIterator[JsonFetcher]:
    async with httpx.AsyncClient() as client:
        yield JsonFetcher(client, allow_http_loopback=True)


async def test_discovery_returns_the_issuer_and_jwks_uri(issuer: TestIssuer, fetcher: JsonFetcher) -> None:
    metadata = await discover(issuer.url, fetcher)
    assert metadata == ProviderMetadata(issuer.url, issuer.jwks_uri, metadata.raw)
    assert metadata.raw["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
    assert issuer.requests[issuer.discovery_path] == 1


async def test_an_issuer_with_a_path_is_discovered_below_that_path(fetcher: JsonFetcher) -> None:
    with TestIssuer(path="tenant-x") as tenant:
        metadata = await discover(tenant.url, fetcher)
        assert tenant.url.endswith("/tenant-x")
        assert metadata.jwks_uri == tenant.url + "/jwks"
        assert tenant.requests["/tenant-x/.well-known/openid-configuration"] == 1


async def test_a_document_naming_another_issuer_is_refused(issuer: TestIssuer, fetcher: JsonFetcher) -> None:
    issuer.patch_metadata(issuer="https://accounts.google.com")
    with pytest.raises(TransportError, match="expected exactly") as caught:
        await discover(issuer.url, fetcher)
    assert caught.value.retryable is False


async def test_a_document_without_issuer_is_refused(issuer: TestIssuer, fetcher: JsonFetcher) -> None:
    issuer.patch_metadata(issuer=None)
    with pytest.raises(TransportError, match="has no 'issuer'"):
        await discover(issuer.url, fetcher)


async def test_a_document_without_jwks_uri_is_refused(issuer: TestIssuer, fetcher: JsonFetcher) -> None:
    issuer.patch_metadata(jwks_uri=None)
    with pytest.raises(TransportError, match="has no 'jwks_uri'") as caught:
        await discover(issuer.url, fetcher)
    assert caught.value.retryable is False


@pytest.mark.parametrize("jwks_uri", ["http://keys.example/jwks", "https://u:p@keys.example/jwks", 42])
async def test_a_jwks_uri_outside_the_url_policy_is_refused(
    issuer: TestIssuer, fetcher: JsonFetcher, jwks_uri: object
) -> None:
    issuer.patch_metadata(jwks_uri=jwks_uri)
    with pytest.raises(TransportError):
        await discover(issuer.url, fetcher)


def test_the_well_known_url_drops_one_trailing_slash_of_the_issuer() -> None:
    assert discovery_url_for("https://token.actions.githubusercontent.com") == (
        "https://token.actions.githubusercontent.com/.well-known/openid-configuration"
    )
    assert discovery_url_for("https://login.example/tenant/v2.0/") == (
        "https://login.example/tenant/v2.0/.well-known/openid-configuration"
    )


async def test_a_trailing_slash_issuer_is_fetched_without_a_double_slash_but_compared_exactly(
    issuer: TestIssuer, fetcher: JsonFetcher
) -> None:
    # The server says "http://127.0.0.1:PORT"; we asked about "http://127.0.0.1:PORT/": not the same.
    with pytest.raises(TransportError, match="expected exactly"):
        await discover(issuer.url + "/", fetcher)
    assert issuer.requests[issuer.discovery_path] == 1

    issuer.patch_metadata(issuer=issuer.url + "/")
    metadata = await discover(issuer.url + "/", fetcher)
    assert metadata.issuer == issuer.url + "/"
    assert issuer.requests[issuer.discovery_path] == 2


async def test_a_discovery_url_override_changes_only_where_the_document_comes_from(
    fetcher: JsonFetcher,
) -> None:
    with TestIssuer(path="real") as real:
        # The document at /real names issuer .../real; fetched via the override for that issuer: fine.
        metadata = await discover(real.url, fetcher, discovery_url=real.discovery_url)
        assert metadata.issuer == real.url
        # The same document cannot vouch for a different issuer, whatever URL it came from.
        with pytest.raises(TransportError, match="expected exactly"):
            await discover("https://kubernetes.default.svc", fetcher, discovery_url=real.discovery_url)


async def test_an_unreachable_discovery_document_is_a_transport_error(
    issuer: TestIssuer, fetcher: JsonFetcher
) -> None:
    issuer.down()
    with pytest.raises(TransportError, match="503") as caught:
        await discover(issuer.url, fetcher)
    assert caught.value.retryable is True
