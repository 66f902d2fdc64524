"""verify_remote: the signature step against a remote issuer's keys, with rotation pickup."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests._support.oidc_issuer import TestIssuer

from keyless.errors import InvalidSignature, TransportError, UnknownKey, UnsupportedAlgorithm
from keyless.jose import parse_compact
from keyless.trust import IssuerKeyCache, verify_remote

pytest_plugins = ["tests._support.fixtures"]  # the test_issuer fixture

ALGS = ("RS256", "ES256")


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def cache(clock: FakeClock) -> AsyncIterator[IssuerKeyCache]:
    async with IssuerKeyCache(allow_http_loopback=True, clock=clock, min_refresh_interval=60) as shared:
        yield shared


async def test_a_token_signed_by_the_issuer_verifies(test_issuer: TestIssuer, cache: IssuerKeyCache) -> None:
    token = parse_compact(test_issuer.mint())
    key = await verify_remote(token, test_issuer.url, cache, ALGS)
    assert key.kid == test_issuer.signer.kid


async def test_a_token_from_a_rotated_key_verifies_after_one_refetch(
    test_issuer: TestIssuer, cache: IssuerKeyCache, clock: FakeClock
) -> None:
    await verify_remote(parse_compact(test_issuer.mint()), test_issuer.url, cache, ALGS)
    new_kid = test_issuer.rotate()
    clock.now += 61
    key = await verify_remote(parse_compact(test_issuer.mint()), test_issuer.url, cache, ALGS)
    assert key.kid == new_kid
    assert test_issuer.requests[test_issuer.jwks_path] == 2


async def test_an_unknown_kid_is_refused_after_the_refetch(
    test_issuer: TestIssuer, cache: IssuerKeyCache, clock: FakeClock
) -> None:
    await cache.get(test_issuer.url, None)
    clock.now += 61
    with pytest.raises(UnknownKey, match="no-such-key"):
        await verify_remote(parse_compact(test_issuer.mint(kid="no-such-key")), test_issuer.url, cache, ALGS)
    assert test_issuer.requests[test_issuer.jwks_path] == 2


async def test_a_disallowed_algorithm_is_refused_before_any_fetch(
    test_issuer: TestIssuer, cache: IssuerKeyCache
) -> None:
    token = parse_compact(test_issuer.mint(alg="ES256"))
    with pytest.raises(UnsupportedAlgorithm, match="ES256"):
        await verify_remote(token, test_issuer.url, cache, ["RS256"])
    assert sum(test_issuer.requests.values()) == 0


async def test_a_tampered_token_is_refused(test_issuer: TestIssuer, cache: IssuerKeyCache) -> None:
    header, _, signature = test_issuer.mint().split(".")
    forged = test_issuer.mint(sub="admin").split(".")[1]
    with pytest.raises(InvalidSignature):
        await verify_remote(parse_compact(f"{header}.{forged}.{signature}"), test_issuer.url, cache, ALGS)


async def test_a_token_signed_by_another_issuer_with_the_same_kid_is_refused(
    test_issuer: TestIssuer, cache: IssuerKeyCache
) -> None:
    with TestIssuer() as impostor:
        token = parse_compact(impostor.mint(kid=test_issuer.signer.kid, iss=test_issuer.url))
    with pytest.raises(InvalidSignature):
        await verify_remote(token, test_issuer.url, cache, ALGS)


async def test_an_unreachable_issuer_is_a_transport_error(
    test_issuer: TestIssuer, cache: IssuerKeyCache
) -> None:
    test_issuer.down()
    with pytest.raises(TransportError):
        await verify_remote(parse_compact(test_issuer.mint()), test_issuer.url, cache, ALGS)
