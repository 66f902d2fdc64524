"""The proxy's ``/_keyless/metrics``: only for ``metrics.allow_from`` peers, never proxied, and
counting decisions by outcome and reason and the verified-token cache's hits and misses."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tests._support.oidc_issuer import TestIssuer
from tests.guard.conftest import AUDIENCE, guard_config, serve

from keyless.errors import ConfigurationError
from keyless.guard import GuardProxy

UPSTREAM_SAW: list[str] = []


async def anything(request: Request) -> PlainTextResponse:
    UPSTREAM_SAW.append(request.url.path)
    return PlainTextResponse("upstream")


UPSTREAM = Starlette(routes=[Route("/{rest:path}", anything)])


def value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    with serve(UPSTREAM) as url:
        yield url


@pytest.fixture(scope="module")
def module_issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as issuer:
        yield issuer


def test_decisions_and_cache_hits_are_counted_and_scraped_from_loopback(
    upstream_url: str, module_issuer: TestIssuer
) -> None:
    token = module_issuer.mint(aud=AUDIENCE, sub="caller", lifetime=3600)
    proxy = GuardProxy(upstream_url, config=guard_config(module_issuer))
    with serve(proxy) as guard, httpx.Client(base_url=guard, timeout=10) as client:
        before = client.get("/_keyless/metrics")
        assert before.status_code == 200
        assert before.headers["content-type"].startswith("text/plain; version=0.0.4")
        for _ in range(3):
            assert client.get("/a", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert client.get("/a").status_code == 401
        assert client.get("/a", headers={"Authorization": "Bearer not.a.token"}).status_code == 401
        after = client.get("/_keyless/metrics").text
    old = before.text
    for labels, grew in (
        ({"outcome": "allow", "reason": "allowed"}, 3),
        ({"outcome": "deny", "reason": "no_token"}, 1),
    ):
        assert (
            value(after, "keyless_guard_decisions_total", **labels)
            - value(old, "keyless_guard_decisions_total", **labels)
            == grew
        )
    hits = value(after, "keyless_guard_token_cache_total", result="hit") - value(
        old, "keyless_guard_token_cache_total", result="hit"
    )
    assert hits >= 2  # the first use of the token verifies it, the next two hit the cache
    assert re.search(r'keyless_http_request_duration_seconds_count\{.*service="guard"', after)
    assert "/_keyless/metrics" not in UPSTREAM_SAW
    assert "caller" not in after  # no subject in any label


def test_metrics_are_refused_to_peers_outside_allow_from_and_never_reach_the_upstream(
    upstream_url: str, module_issuer: TestIssuer
) -> None:
    config = guard_config(module_issuer, metrics={"allow_from": ["10.0.0.0/8"]})
    with serve(GuardProxy(upstream_url, config=config)) as guard, httpx.Client(base_url=guard) as client:
        answer = client.get("/_keyless/metrics")
    assert answer.status_code == 404
    assert "keyless_" not in answer.text
    assert "/_keyless/metrics" not in UPSTREAM_SAW


def test_a_bad_network_in_allow_from_is_a_configuration_problem(module_issuer: TestIssuer) -> None:
    with pytest.raises(ConfigurationError, match="allow_from"):
        guard_config(module_issuer, metrics={"allow_from": ["not-a-network"]})
