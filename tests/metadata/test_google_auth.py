"""Unmodified google-auth 2.x, pointed at the emulator with GCE_METADATA_HOST / GCE_METADATA_IP
(in a subprocess: it reads them at import), gets ID and access tokens, detects "GCE" and its
project, and verifies the emulator's tokens against its published keys."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from unittest.mock import ANY

import httpx
import pytest
from tests.metadata.conftest import FLAVOR, GoogleAuth

from keyless.jose import parse_compact
from keyless.metadata import DEFAULT_ACCOUNT_EMAIL, DEFAULT_UNIQUE_ID, MetadataServer, load_metadata_config

AUDIENCE = "api://AzureADTokenExchange"
IDENTITY = "/computeMetadata/v1/instance/service-accounts/default/identity"


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert "error" not in result, result
    return result


def test_fetch_id_token_pings_reads_the_account_then_gets_a_full_token(
    emulator: MetadataServer, google_auth: GoogleAuth
) -> None:
    emulator.requests.clear()
    [result] = google_auth(emulator, [{"op": "fetch_id_token", "audience": AUDIENCE}])
    payload = parse_compact(str(ok(result)["token"])).payload
    assert payload["iss"] == emulator.url
    assert payload["aud"] == AUDIENCE
    assert payload["sub"] == payload["azp"] == DEFAULT_UNIQUE_ID
    assert payload["email"] == DEFAULT_ACCOUNT_EMAIL
    assert payload["email_verified"] is True
    assert payload["exp"] - payload["iat"] == 3600
    assert payload["google"]["compute_engine"]["project_id"] == "keyless-local"
    assert list(emulator.requests) == [
        "GET /",
        "GET /computeMetadata/v1/instance/service-accounts/default/?recursive=true",
        f"GET {IDENTITY}?audience=api%3A%2F%2FAzureADTokenExchange&format=full",
    ]


def test_id_token_credentials_refresh_with_expiry_from_the_token(
    emulator: MetadataServer, google_auth: GoogleAuth
) -> None:
    [result] = google_auth(emulator, [{"op": "id_token_credentials", "audience": AUDIENCE}])
    ok(result)
    assert result["email"] == DEFAULT_ACCOUNT_EMAIL
    assert result["expiry"] == parse_compact(str(result["token"])).payload["exp"]


def test_compute_engine_credentials_get_an_access_token(
    emulator: MetadataServer, google_auth: GoogleAuth
) -> None:
    plain, scoped = google_auth(
        emulator,
        [{"op": "access_token"}, {"op": "access_token", "scopes": ["openid", "https://example.test/scope"]}],
    )
    assert str(ok(plain)["token"]).startswith("ya29.")
    assert plain["email"] == DEFAULT_ACCOUNT_EMAIL
    assert plain["scopes"] == ["https://www.googleapis.com/auth/cloud-platform"]
    assert 3500 < plain["expiry"] - time.time() <= 3600
    info = emulator.issuer.access_token_info(str(ok(scoped)["token"]))
    assert info is not None
    assert info.scopes == ("openid", "https://example.test/scope")


def test_google_auth_default_detects_the_emulator_and_its_project(
    emulator: MetadataServer, google_auth: GoogleAuth
) -> None:
    ping, default = google_auth(emulator, [{"op": "ping"}, {"op": "default"}])
    assert ok(ping) == {"on_gce": True}
    assert ok(default) == {"type": "Credentials", "project": "keyless-local"}


def test_verify_token_accepts_emulator_tokens_with_its_jwks_and_its_pem_map(
    emulator: MetadataServer, google_auth: GoogleAuth
) -> None:
    token = httpx.get(f"{emulator.url}{IDENTITY}", params={"audience": AUDIENCE}, headers=FLAVOR).text
    jwks, pem, wrong_audience = google_auth(
        emulator,
        [
            {"op": "verify", "token": token, "audience": AUDIENCE, "certs_url": emulator.jwks_uri},
            {
                "op": "verify",
                "token": token,
                "audience": AUDIENCE,
                "certs_url": f"{emulator.url}/oauth2/v1/certs",
            },
            {"op": "verify", "token": token, "audience": "api://other", "certs_url": emulator.jwks_uri},
        ],
    )
    assert ok(jwks)["claims"] == ok(pem)["claims"]
    assert jwks["claims"]["sub"] == DEFAULT_UNIQUE_ID
    assert wrong_audience["error"] == "InvalidAudienceError"


def test_identical_identity_requests_reuse_the_token_and_another_audience_gets_its_own(
    emulator: MetadataServer, google_auth: GoogleAuth
) -> None:
    first, second, other = google_auth(
        emulator,
        [
            {"op": "fetch_id_token", "audience": "https://svc.example/reuse"},
            {"op": "fetch_id_token", "audience": "https://svc.example/reuse"},
            {"op": "fetch_id_token", "audience": "https://svc.example/other"},
        ],
    )
    assert ok(first)["token"] == ok(second)["token"]
    assert ok(other)["token"] != first["token"]


@pytest.fixture
def rotating_emulator() -> Iterator[MetadataServer]:
    with MetadataServer(load_metadata_config(license_ids=["1000010"])) as server:
        yield server


def test_after_rotation_old_tokens_still_verify_and_new_tokens_use_the_new_key(
    rotating_emulator: MetadataServer, google_auth: GoogleAuth
) -> None:
    server = rotating_emulator
    fetch = {"op": "fetch_id_token", "audience": AUDIENCE}
    [before] = google_auth(server, [fetch])
    old_kid = parse_compact(str(ok(before)["token"])).kid
    new_kid = server.issuer.rotate_keys()
    after = httpx.get(
        f"{server.url}{IDENTITY}", params={"audience": AUDIENCE, "format": "full"}, headers=FLAVOR
    )
    assert parse_compact(after.text).kid == new_kid != old_kid
    old_verified, new_verified = google_auth(
        server,
        [
            {"op": "verify", "token": before["token"], "audience": AUDIENCE, "certs_url": server.jwks_uri},
            {"op": "verify", "token": after.text, "audience": AUDIENCE, "certs_url": server.jwks_uri},
        ],
    )
    assert ok(old_verified)["claims"] == ok(new_verified)["claims"] | {"iat": ANY, "exp": ANY}
    published = [k["kid"] for k in httpx.get(server.jwks_uri).json()["keys"]]
    assert published == [new_kid, old_kid]


def test_full_format_claims_with_licenses_verify_with_google_auth(
    rotating_emulator: MetadataServer, google_auth: GoogleAuth
) -> None:
    server = rotating_emulator
    token = httpx.get(
        f"{server.url}{IDENTITY}",
        params={"audience": AUDIENCE, "format": "full", "licenses": "TRUE"},
        headers=FLAVOR,
    ).text
    [verified] = google_auth(
        server, [{"op": "verify", "token": token, "audience": AUDIENCE, "certs_url": server.jwks_uri}]
    )
    engine = ok(verified)["claims"]["google"]["compute_engine"]
    assert engine == {
        "instance_creation_timestamp": 1704067200,
        "instance_id": "4815162342108000001",
        "instance_name": "keyless-local",
        "project_id": "keyless-local",
        "project_number": 123456789012,
        "zone": "us-central1-a",
        "license_id": ["1000010"],
    }
