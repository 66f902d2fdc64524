"""``RedisOneTimeUse``: the shared replay cache behaves like ``Store.use_once``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from tests._services import redis_url_or_skip

from keyless.authority.model import new_id
from keyless.authority.store import RedisOneTimeUse
from keyless.authority.store._redis_once import KEY_PREFIX

if TYPE_CHECKING:
    import redis

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_url() -> str:
    return redis_url_or_skip()


@pytest.fixture
def once(redis_url: str) -> Iterator[RedisOneTimeUse]:
    store = RedisOneTimeUse(redis_url)
    yield store
    store.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    import redis  # lazily, like the module under test

    raw = redis.Redis.from_url(redis_url)
    yield raw
    raw.close()


def test_use_once_is_true_first_then_false(once: RedisOneTimeUse) -> None:
    key = new_id()
    assert once.use_once(key, time.time() + 60) is True
    assert once.use_once(key, time.time() + 60) is False


def test_use_once_keys_are_independent(once: RedisOneTimeUse) -> None:
    assert once.use_once(new_id(), time.time() + 60) is True
    assert once.use_once(new_id(), time.time() + 60) is True


def test_record_expires_at_the_given_time(once: RedisOneTimeUse, client: redis.Redis) -> None:
    key = new_id()
    expires_at = time.time() + 120
    once.use_once(key, expires_at)
    remaining = client.ttl(KEY_PREFIX + key)
    assert isinstance(remaining, int)
    assert 115 <= remaining <= 121
    client.delete(KEY_PREFIX + key)


def test_use_once_with_past_expiry_keeps_nothing(once: RedisOneTimeUse) -> None:
    key = new_id()
    assert once.use_once(key, time.time() - 10) is True
    assert once.use_once(key, time.time() + 60) is True


def test_use_once_race_has_exactly_one_winner(once: RedisOneTimeUse) -> None:
    key = new_id()
    start = threading.Barrier(20)

    def attempt() -> bool:
        start.wait()
        return once.use_once(key, time.time() + 60)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = [future.result() for future in [pool.submit(attempt) for _ in range(20)]]
    assert results.count(True) == 1
