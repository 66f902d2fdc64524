"""Attacks on certificate client assertions, over real HTTPS: an assertion made for another
authority cannot be redeemed by naming that authority's host, and lifetimes are bounded (no
ten-year or 2**63 expiries, no iat in the future), with the store's or Redis's replay check."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests._services import redis_url_or_skip
from tests._support.authority_server import Federation, RunningAuthority, run_authority, seed_federation
from tests._support.certs import make_client_certificate
from tests.authority.test_token_errors import _cert_assertion, assert_refused, federated_form, post

ISSUER = "https://issuer.example"  # never fetched: these tests use certificate assertions only


def _certificate_case(authority: RunningAuthority) -> tuple[Federation, Any]:
    federation = seed_federation(authority.admin, issuer=ISSUER)
    cert = make_client_certificate()
    authority.admin.add_certificate(federation.client, cert.cert_pem)
    return federation, cert


def _exchange(authority: RunningAuthority, aud: str | None = None, **claims: Any) -> Any:
    federation, cert = _certificate_case(authority)
    assertion = _cert_assertion(
        federation, cert.key_pem, cert.sha1_hex, aud or authority.token_url(federation.tenant_id), **claims
    )
    return post(authority, federation.tenant_id, federated_form(federation, assertion))


def test_an_assertion_for_entra_is_not_redeemed_by_sending_entras_host_name(
    authority: RunningAuthority,
) -> None:
    federation, cert = _certificate_case(authority)
    entra = f"https://login.microsoftonline.com/{federation.tenant_id}/oauth2/v2.0/token"
    assertion = _cert_assertion(federation, cert.key_pem, cert.sha1_hex, entra)
    for headers in (
        {"Host": "login.microsoftonline.com"},
        {"X-Forwarded-Host": "login.microsoftonline.com", "X-Forwarded-Proto": "https"},
    ):
        response = post(
            authority, federation.tenant_id, federated_form(federation, assertion), headers=headers
        )
        assert_refused(response, 700023, "invalid_client", 401)


def test_an_assertion_for_the_configured_public_url_is_accepted_whatever_the_host_header(
    authority: RunningAuthority,
) -> None:
    federation, cert = _certificate_case(authority)
    assertion = _cert_assertion(
        federation, cert.key_pem, cert.sha1_hex, authority.token_url(federation.tenant_id)
    )
    response = post(
        authority,
        federation.tenant_id,
        federated_form(federation, assertion),
        headers={"Host": "other.example"},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("label", "exp_after_now"),
    [("ten years", 10 * 365 * 86400), ("two hours", 7200)],
)
def test_a_certificate_assertion_living_past_the_bound_is_refused(
    authority: RunningAuthority, label: str, exp_after_now: int
) -> None:
    body = assert_refused(
        _exchange(authority, exp=int(time.time()) + exp_after_now), 50027, "invalid_request", 400
    )
    assert "at most 3600 s" in body["error_description"]


@pytest.mark.parametrize("exp", [2**63 - 1, 1e308], ids=["int64-max", "1e308"])
def test_out_of_range_expiries_are_a_clear_400(authority: RunningAuthority, exp: float) -> None:
    assert_refused(_exchange(authority, exp=exp), 50027, "invalid_request", 400)


def test_an_iat_in_the_future_is_refused(authority: RunningAuthority) -> None:
    assert_refused(_exchange(authority, iat=int(time.time()) + 3600), 50027, "invalid_request", 400)


def test_azure_identitys_thirty_minute_assertion_is_accepted(authority: RunningAuthority) -> None:
    now = int(time.time())
    response = _exchange(authority, iat=now, exp=now + 1800)
    assert response.status_code == 200, response.text


def test_the_lifetime_bound_is_a_setting(tmp_path: Path) -> None:
    with run_authority(tmp_path / "a", max_assertion_lifetime=600) as authority:
        response = _exchange(authority, exp=int(time.time()) + 1800)
    body = assert_refused(response, 50027, "invalid_request", 400)
    assert "at most 600 s" in body["error_description"]


@pytest.fixture
def redis_authority(tmp_path: Path) -> Iterator[RunningAuthority]:
    with run_authority(tmp_path / "a", redis_url=redis_url_or_skip()) as running:
        yield running


@pytest.mark.redis
@pytest.mark.parametrize("exp", [2**63 - 1, 1e308], ids=["int64-max", "1e308"])
def test_out_of_range_expiries_are_a_clear_400_with_the_redis_replay_store(
    redis_authority: RunningAuthority, exp: float
) -> None:
    assert_refused(_exchange(redis_authority, exp=exp), 50027, "invalid_request", 400)
