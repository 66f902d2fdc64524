"""The guard's reverse proxy backs off from an issuer whose discovery fails: a flood of tokens
claiming that issuer costs one outbound fetch per interval, not one per request."""

from __future__ import annotations

import httpx
from tests._support.oidc_issuer import TestIssuer
from tests.guard.conftest import AUDIENCE, guard_config

from keyless._net import bind_socket
from keyless._serving import ServerThread
from keyless.guard import GuardProxy


def test_thirty_requests_against_an_issuer_whose_discovery_answers_500_cause_one_fetch(
    issuer: TestIssuer,
) -> None:
    issuer.set_status(issuer.discovery_path, 500)
    config = guard_config(issuer, keys={"refresh_cooldown": 60}, upstream="http://127.0.0.1:9")
    proxy = GuardProxy(config=config)
    with (
        ServerThread(proxy, bind_socket("127.0.0.1", 0), proxy_headers=False) as server,
        httpx.Client(timeout=10) as client,
    ):
        for _ in range(30):
            token = issuer.mint(sub="caller", aud=AUDIENCE)
            answer = client.get(
                f"http://127.0.0.1:{server.port}/x", headers={"Authorization": f"Bearer {token}"}
            )
            assert answer.status_code in (401, 503)
    assert issuer.requests[issuer.discovery_path] == 1
    assert issuer.requests[issuer.jwks_path] == 0
