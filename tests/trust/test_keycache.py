"""RemoteKeySet and IssuerKeyCache against a real issuer on 127.0.0.1, with an injected clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from tests._support.oidc_issuer import TestIssuer

from keyless.errors import TransportError
from keyless.trust import IssuerKeyCache, RemoteKeySet

pytest_plugins = ["tests._support.fixtures"]  # the test_issuer fixture

MAX_AGE = 3600.0
COOLDOWN = 60.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as shared:
        yield shared


def _remote(issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock, **kw: float) -> RemoteKeySet:
    return RemoteKeySet(
        issuer.url,
        client=client,
        allow_http_loopback=True,
        clock=clock,
        max_age=kw.get("max_age", MAX_AGE),
        min_refresh_interval=kw.get("min_refresh_interval", COOLDOWN),
        timeout=kw.get("timeout", 5.0),
    )


def _counts(issuer: TestIssuer) -> tuple[int, int]:
    return issuer.requests[issuer.discovery_path], issuer.requests[issuer.jwks_path]


# -- max age -------------------------------------------------------------------------------------


async def test_the_first_get_fetches_discovery_then_the_jwks(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    remote = _remote(test_issuer, client, clock)
    keys = await remote.get()
    assert keys.has_kid(test_issuer.signer.kid)
    assert _counts(test_issuer) == (1, 1)
    assert remote.metadata is not None
    assert remote.metadata.jwks_uri == test_issuer.jwks_uri


async def test_keys_younger_than_max_age_are_served_from_cache(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    remote = _remote(test_issuer, client, clock)
    first = await remote.get()
    clock.advance(MAX_AGE - 1)
    assert await remote.get() is first
    assert await remote.get_for_kid(test_issuer.signer.kid) is first
    assert _counts(test_issuer) == (1, 1)


async def test_keys_are_refetched_once_max_age_has_passed(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    remote = _remote(test_issuer, client, clock)
    await remote.get()
    new_kid = test_issuer.rotate()
    clock.advance(MAX_AGE)
    keys = await remote.get()
    assert keys.has_kid(new_kid)
    assert _counts(test_issuer) == (2, 2)  # the discovery document is cached for max_age too
    assert await remote.get() is keys
    assert remote.stats.fetches == 2


# -- unknown kid ---------------------------------------------------------------------------------


async def test_an_unknown_kid_triggers_one_refetch_that_picks_up_a_rotation(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    remote = _remote(test_issuer, client, clock)
    old_kid = test_issuer.signer.kid
    await remote.get()
    new_kid = test_issuer.rotate()
    clock.advance(COOLDOWN + 1)

    keys = await remote.get_for_kid(new_kid)
    assert keys.has_kid(new_kid)
    assert not keys.has_kid(old_kid)
    assert _counts(test_issuer) == (1, 2)  # only the JWKS: the discovery document is still fresh

    assert await remote.get_for_kid(new_kid) is keys
    assert _counts(test_issuer) == (1, 2)


async def test_an_unknown_kid_just_after_a_fetch_waits_for_the_cooldown(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    remote = _remote(test_issuer, client, clock)
    await remote.get()
    new_kid = test_issuer.rotate()
    clock.advance(COOLDOWN - 1)
    assert not (await remote.get_for_kid(new_kid)).has_kid(new_kid)
    assert _counts(test_issuer) == (1, 1)
    clock.advance(1)
    assert (await remote.get_for_kid(new_kid)).has_kid(new_kid)
    assert _counts(test_issuer) == (1, 2)


async def test_a_flood_of_unknown_kids_costs_at_most_one_fetch_per_cooldown(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    remote = _remote(test_issuer, client, clock)
    await remote.get()
    clock.advance(COOLDOWN + 1)
    for n in range(100):
        await remote.get_for_kid(f"attacker-{n}")
        clock.advance(0.1)
    assert _counts(test_issuer) == (1, 2)

    await asyncio.gather(*(remote.get_for_kid(f"concurrent-{n}") for n in range(100)))
    assert _counts(test_issuer) == (1, 2)

    clock.advance(COOLDOWN)
    await asyncio.gather(*(remote.get_for_kid(f"later-{n}") for n in range(100)))
    assert _counts(test_issuer) == (1, 3)


async def test_a_token_without_kid_never_forces_a_refetch(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    remote = _remote(test_issuer, client, clock)
    await remote.get()
    clock.advance(COOLDOWN + 1)
    await remote.get_for_kid(None)
    assert _counts(test_issuer) == (1, 1)


async def test_a_rotated_key_is_accepted_within_5_seconds_with_the_default_interval(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    remote = RemoteKeySet(test_issuer.url, client=client, allow_http_loopback=True, clock=clock)
    await remote.get()
    new_kid = test_issuer.rotate()  # just after a fetch: the worst case for pickup
    rotated_at = clock.now
    while not (await remote.get_for_kid(new_kid)).has_kid(new_kid):
        clock.advance(0.25)
        assert clock.now - rotated_at <= 5, "the rotated key was not picked up within 5 s"
    assert _counts(test_issuer) == (1, 2)


async def test_a_thousand_random_kids_in_ten_seconds_cause_at_most_a_handful_of_fetches(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    remote = RemoteKeySet(test_issuer.url, client=client, allow_http_loopback=True, clock=clock)
    await remote.get()
    for n in range(1000):
        await remote.get_for_kid(f"random-{n:04d}-{n * 7919 % 1000}")
        clock.advance(0.01)
    discovery, jwks = _counts(test_issuer)
    assert discovery == 1
    assert jwks <= 4  # the first fetch, then at most one per DEFAULT_MIN_REFRESH_INTERVAL (4 s)


# -- issuer down ---------------------------------------------------------------------------------


async def test_thirty_gets_against_an_issuer_whose_discovery_answers_500_cause_one_fetch(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    remote = _remote(test_issuer, client, clock)
    test_issuer.set_status(test_issuer.discovery_path, 500)
    for _ in range(30):
        with pytest.raises(TransportError, match="500"):
            await remote.get_for_kid("some-kid")
        clock.advance(0.1)
    assert _counts(test_issuer) == (1, 0)
    assert (remote.stats.fetches, remote.stats.backoffs) == (1, 29)


async def test_consecutive_failures_back_off_longer_up_to_the_cap_and_a_success_resets(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    remote = RemoteKeySet(
        test_issuer.url,
        client=client,
        allow_http_loopback=True,
        clock=clock,
        min_refresh_interval=5,
        max_failure_backoff=20,
    )
    test_issuer.set_status(test_issuer.discovery_path, 500)
    attempts = []
    for second in range(60):
        with pytest.raises(TransportError):
            await remote.get()
        if test_issuer.requests[test_issuer.discovery_path] > len(attempts):
            attempts.append(second)
        clock.advance(1)
    assert attempts == [0, 5, 15, 35, 55]  # waits of 5, 10, 20, then 20 (the cap)
    test_issuer.set_status(test_issuer.discovery_path, None)
    clock.advance(20)
    assert (await remote.get()).has_kid(test_issuer.signer.kid)
    assert remote.stats.failures == 5


# -- issuer down (with a last good set) -----------------------------------------------------------


async def test_the_last_good_set_is_served_while_the_issuer_is_down(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    remote = _remote(test_issuer, client, clock)
    good = await remote.get()
    test_issuer.down()
    clock.advance(MAX_AGE + 1)

    with caplog.at_level(logging.WARNING, logger="keyless.trust"):
        assert await remote.get() is good
    assert remote.stats.failures == 1
    assert remote.stats.last_error is not None
    assert "503" in remote.stats.last_error
    assert any("serving the last good set" in r.getMessage() for r in caplog.records)
    attempts = sum(_counts(test_issuer))

    # No hammering: a failed issuer is retried at most once per cooldown.
    for _ in range(20):
        assert await remote.get() is good
        assert await remote.get_for_kid("unknown") is good
    assert sum(_counts(test_issuer)) == attempts

    clock.advance(COOLDOWN)
    assert await remote.get() is good
    assert remote.stats.failures == 2

    test_issuer.up()
    clock.advance(COOLDOWN)
    fresh = await remote.get()
    assert fresh is not good
    assert fresh.has_kid(test_issuer.signer.kid)
    assert await remote.get() is fresh


async def test_an_issuer_down_with_no_prior_key_set_raises_transport_error(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    remote = _remote(test_issuer, client, clock)
    test_issuer.down()
    with pytest.raises(TransportError, match="503") as caught:
        await remote.get()
    assert caught.value.retryable is True
    assert remote.cached is None

    test_issuer.up()
    with pytest.raises(TransportError, match="503"):  # still backing off: no request
        await remote.get()
    assert _counts(test_issuer) == (1, 0)
    clock.advance(COOLDOWN)
    assert (await remote.get()).has_kid(test_issuer.signer.kid)


async def test_an_unreachable_issuer_with_no_prior_key_set_raises_transport_error(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    with TestIssuer() as issuer:
        url = issuer.url
    remote = RemoteKeySet(url, client=client, allow_http_loopback=True, clock=clock)
    with pytest.raises(TransportError) as caught:
        await remote.get()
    assert caught.value.retryable is True


async def test_a_jwks_with_no_usable_keys_does_not_replace_the_last_good_set(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    remote = _remote(test_issuer, client, clock)
    good = await remote.get()
    test_issuer.set_body(test_issuer.jwks_path, {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})
    clock.advance(MAX_AGE)
    assert await remote.get() is good
    assert remote.stats.last_error is not None
    assert "no usable keys" in remote.stats.last_error


async def test_a_failed_jwks_fetch_rediscovers_next_time(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    remote = _remote(test_issuer, client, clock)
    await remote.get()
    test_issuer.set_status(test_issuer.jwks_path, 404)
    clock.advance(COOLDOWN)
    await remote.get_for_kid("rotated")
    assert _counts(test_issuer) == (1, 2)

    test_issuer.set_status(test_issuer.jwks_path, None)
    clock.advance(COOLDOWN)
    await remote.get_for_kid("rotated")
    assert _counts(test_issuer) == (2, 3)


# -- single flight -------------------------------------------------------------------------------


async def test_fifty_concurrent_gets_share_one_discovery_and_one_jwks_fetch(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    test_issuer.set_delay(test_issuer.jwks_path, 0.1)
    remote = _remote(test_issuer, client, clock)
    results = await asyncio.gather(*(remote.get() for _ in range(50)))
    assert _counts(test_issuer) == (1, 1)
    assert all(keys is results[0] for keys in results)
    assert remote.stats.fetches == 1


async def test_fifty_concurrent_gets_against_a_down_issuer_share_one_failure(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    test_issuer.down()
    test_issuer.set_delay(test_issuer.discovery_path, 0.1)
    remote = _remote(test_issuer, client, clock)
    results = await asyncio.gather(*(remote.get() for _ in range(50)), return_exceptions=True)
    assert all(isinstance(r, TransportError) for r in results)
    assert _counts(test_issuer) == (1, 0)


async def test_a_cancelled_fetch_lets_the_next_caller_fetch(
    test_issuer: TestIssuer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    test_issuer.set_delay(test_issuer.discovery_path, 0.3)
    remote = _remote(test_issuer, client, clock)
    first = asyncio.create_task(remote.get())
    await asyncio.sleep(0.05)
    second = asyncio.create_task(remote.get())
    await asyncio.sleep(0.05)
    first.cancel()
    keys = await second
    assert keys.has_kid(test_issuer.signer.kid)
    with pytest.raises(asyncio.CancelledError):
        await first


# -- registry ------------------------------------------------------------------------------------


async def test_the_registry_fetches_each_issuer_once_and_refetches_for_an_unknown_kid(
    test_issuer: TestIssuer, clock: FakeClock
) -> None:
    async with IssuerKeyCache(allow_http_loopback=True, clock=clock) as cache:
        keys = await cache.get(test_issuer.url, test_issuer.signer.kid)
        assert await cache.get(test_issuer.url, test_issuer.signer.kid) is keys
        new_kid = test_issuer.rotate()
        clock.advance(COOLDOWN)
        assert (await cache.get(test_issuer.url, new_kid)).has_kid(new_kid)
        assert _counts(test_issuer) == (1, 2)
        assert cache.remote(test_issuer.url).stats.fetches == 2


async def test_the_registry_evicts_the_least_recently_used_issuer(client: httpx.AsyncClient) -> None:
    with TestIssuer(path="a") as a, TestIssuer(path="b") as b, TestIssuer(path="c") as c:
        cache = IssuerKeyCache(client=client, max_issuers=2, allow_http_loopback=True)
        await cache.get(a.url, None)
        await cache.get(b.url, None)
        await cache.get(a.url, None)  # a is now more recent than b
        await cache.get(c.url, None)
        assert cache.issuers == [a.url, c.url]
        assert len(cache) == 2

        await cache.get(b.url, None)  # b was forgotten: fetched again; a goes
        assert cache.issuers == [c.url, b.url]
        assert _counts(a) == (1, 1)
        assert _counts(b) == (2, 2)
        assert _counts(c) == (1, 1)
        await cache.aclose()
    assert not client.is_closed  # a client passed in is the caller's to close


async def test_the_registry_closes_the_client_it_created() -> None:
    cache = IssuerKeyCache()
    client = cache._client
    await cache.aclose()
    assert client.is_closed


async def test_a_discovery_url_override_is_a_separate_entry(
    test_issuer: TestIssuer, clock: FakeClock
) -> None:
    async with IssuerKeyCache(allow_http_loopback=True, clock=clock) as cache:
        await cache.get(test_issuer.url, None)
        await cache.get(test_issuer.url, None, discovery_url=test_issuer.discovery_url)
        assert len(cache) == 2
        assert _counts(test_issuer) == (2, 2)


async def test_a_plain_http_issuer_is_refused_without_the_loopback_flag(test_issuer: TestIssuer) -> None:
    async with IssuerKeyCache() as cache:
        with pytest.raises(TransportError, match="https is required") as caught:
            await cache.get(test_issuer.url, None)
    assert caught.value.retryable is False
    assert _counts(test_issuer) == (0, 0)


@pytest.mark.parametrize(
    "tuning",
    [{"max_age": 0}, {"min_refresh_interval": -1}, {"timeout": 0}, {"max_keys": 0}, {"max_issuers": 0}],
)
async def test_nonsense_tuning_is_refused(tuning: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(tuning))):
        IssuerKeyCache(**tuning)  # type: ignore[arg-type]
