"""Federated assertions against a live external issuer: key rotation at the issuer is picked up,
an issuer outage is survived on cached keys, and the development-only issuer override."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pytest
from tests._support.authority_server import Federation, RunningAuthority, run_authority, seed_federation
from tests._support.oidc_issuer import TestIssuer

from keyless.config import load_authority_settings
from keyless.errors import ConfigurationError

SUBJECT = "112233445566778899001"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def exchange(authority: RunningAuthority, federation: Federation, assertion: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": federation.client.app_id,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        "scope": federation.scope,
    }
    with httpx.Client(verify=authority.ssl_context(), timeout=15) as client:
        return client.post(authority.token_url(federation.tenant_id), data=form)


def test_issuer_keys_are_cached_between_exchanges(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    for _ in range(3):
        assert exchange(authority, federation, issuer.mint(sub=SUBJECT)).status_code == 200
    assert issuer.requests[issuer.discovery_path] == 1
    assert issuer.requests[issuer.jwks_path] == 1


def test_key_rotation_at_the_issuer_is_picked_up_on_unknown_kid_after_the_cooldown(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, issuer: TestIssuer
) -> None:
    settings = {"dev_mode": True, "allow_http_loopback_issuers": True, "jwks_refresh_cooldown": 1}
    with run_authority(tmp_path, **settings) as authority:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(authority.ca_file))
        federation = seed_federation(authority.admin, issuer=issuer.url)
        assert exchange(authority, federation, issuer.mint(sub=SUBJECT)).status_code == 200
        issuer.rotate()
        within_cooldown = exchange(authority, federation, issuer.mint(sub=SUBJECT))
        assert within_cooldown.json()["error_codes"] == [
            7000272
        ]  # no refetch yet: the cooldown protects the issuer
        time.sleep(1.1)
        response = exchange(authority, federation, issuer.mint(sub=SUBJECT))
        assert response.status_code == 200, response.text
        assert issuer.requests[issuer.jwks_path] == 2


def test_issuer_outage_is_survived_with_the_cached_keys(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    assert exchange(authority, federation, issuer.mint(sub=SUBJECT)).status_code == 200
    issuer.down()
    response = exchange(authority, federation, issuer.mint(sub=SUBJECT))
    assert response.status_code == 200, response.text


def test_unknown_kid_flood_refetches_at_most_once_per_cooldown(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    assert exchange(authority, federation, issuer.mint(sub=SUBJECT)).status_code == 200
    for n in range(10):
        response = exchange(authority, federation, issuer.mint(sub=SUBJECT, kid=f"unknown-{n}"))
        assert response.json()["error_codes"] == [7000272]
    assert issuer.requests[issuer.jwks_path] <= 2


def test_v1_resource_gets_v1_claims_and_v1_endpoint_returns_strings(
    authority: RunningAuthority, issuer: TestIssuer
) -> None:
    federation = seed_federation(authority.admin, issuer=issuer.url, token_version=1, domain="v1.example")
    form = {
        "grant_type": "client_credentials",
        "client_id": federation.client.app_id,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": issuer.mint(sub=SUBJECT),
        "resource": "api://blob-api",
    }
    with httpx.Client(verify=authority.ssl_context(), timeout=15) as client:
        response = client.post(authority.token_url("v1.example", version=1), data=form)
    body: dict[str, Any] = response.json()
    assert response.status_code == 200, body
    assert isinstance(body["expires_in"], str) and body["resource"] == "api://blob-api"
    assert int(body["expires_on"]) - int(body["not_before"]) == int(body["expires_in"]) + 300
    import jwt

    header = jwt.get_unverified_header(body["access_token"])
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert header["x5t"] == header["kid"]
    assert claims["ver"] == "1.0"
    assert claims["aud"] == "api://blob-api"
    assert claims["iss"] == f"{authority.base_url}/{federation.tenant_id}/"
    assert claims["idp"] == claims["iss"]
    assert claims["appid"] == federation.client.app_id and claims["appidacr"] == "2"


def test_issuer_override_lets_a_real_cloud_issuer_name_a_local_stand_in(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    google = "https://accounts.google.com"
    with TestIssuer() as stand_in:
        stand_in.patch_metadata(issuer=google)
        overrides = {google: stand_in.discovery_url}
        with run_authority(
            tmp_path, dev_mode=True, allow_http_loopback_issuers=True, issuer_overrides=overrides
        ) as authority:
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(authority.ca_file))
            federation = seed_federation(authority.admin, issuer=google)
            with caplog.at_level(logging.INFO, logger="keyless.audit"):
                response = exchange(authority, federation, stand_in.mint(sub=SUBJECT, iss=google))
            assert response.status_code == 200, response.text
            assert "DEVELOPMENT ISSUER OVERRIDE" in caplog.text


def test_issuer_override_is_refused_outside_development_mode(tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_authority_settings(
            data_dir=tmp_path, issuer_overrides={"https://accounts.google.com": "http://127.0.0.1:1/x"}
        )
    assert any("KEYLESS_ISSUER_OVERRIDES" in p for p in refused.value.problems)


def test_http_issuers_are_refused_outside_development_mode(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestIssuer() as issuer, run_authority(tmp_path) as authority:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(authority.ca_file))
        federation = seed_federation(authority.admin, issuer=issuer.url)
        response = exchange(authority, federation, issuer.mint(sub=SUBJECT))
        assert response.json()["error_codes"] == [90061]
        assert sum(issuer.requests.values()) == 0


def test_thirty_exchanges_against_an_issuer_whose_discovery_answers_500_cause_one_fetch(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, issuer: TestIssuer
) -> None:
    settings = {"dev_mode": True, "allow_http_loopback_issuers": True, "jwks_refresh_cooldown": 60}
    with run_authority(tmp_path, **settings) as authority:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(authority.ca_file))
        federation = seed_federation(authority.admin, issuer=issuer.url)
        issuer.set_status(issuer.discovery_path, 500)
        for _ in range(30):
            assert exchange(authority, federation, issuer.mint(sub=SUBJECT)).status_code != 200
        assert issuer.requests[issuer.discovery_path] == 1
        assert issuer.requests[issuer.jwks_path] == 0
