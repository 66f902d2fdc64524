"""The seed scenario end to end (Google Cloud -> keyless authority, no secrets): google-auth gets an
ID token for a service account from the emulator; MSAL Python and azure-identity present it as a
client assertion to a real HTTPS authority whose app trusts (issuer, the account's unique id,
``api://AzureADTokenExchange``); an access token with the app's roles comes back. Also Entra's
refusals (700212, 700213, 700024) and Google-issuer mode with the development-only override."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import msal
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential
from tests._support.authority_server import Federation, RunningAuthority, run_authority, seed_federation
from tests.metadata.conftest import FLAVOR, GoogleAuth

from keyless.config import load_authority_settings
from keyless.errors import ConfigurationError
from keyless.metadata import (
    DEFAULT_ACCOUNT_EMAIL,
    DEFAULT_UNIQUE_ID,
    GOOGLE_ISSUER,
    MetadataServer,
    ServiceAccount,
    load_metadata_config,
)

AUDIENCE = "api://AzureADTokenExchange"
OTHER = ServiceAccount("batch@keyless-local.iam.gserviceaccount.com", "998877665544332211009")


@pytest.fixture(scope="module")
def self_emulator() -> Iterator[MetadataServer]:
    config = load_metadata_config(
        service_accounts=[ServiceAccount(DEFAULT_ACCOUNT_EMAIL, DEFAULT_UNIQUE_ID), OTHER]
    )
    with MetadataServer(config) as server:
        yield server


@pytest.fixture(scope="module")
def google_emulator() -> Iterator[MetadataServer]:
    with MetadataServer(load_metadata_config(issuer="google")) as server:
        yield server


@pytest.fixture(scope="module")
def authority(
    tmp_path_factory: pytest.TempPathFactory, google_emulator: MetadataServer
) -> Iterator[RunningAuthority]:
    with (
        pytest.MonkeyPatch.context() as patch,
        run_authority(
            tmp_path_factory.mktemp("authority"),
            dev_mode=True,
            allow_http_loopback_issuers=True,
            issuer_overrides={GOOGLE_ISSUER: google_emulator.discovery_url},
        ) as running,
    ):
        # requests (under MSAL and azure-core) lets these override ``verify=``; this machine sets them.
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            patch.setenv(name, str(running.ca_file))
        yield running


@pytest.fixture(scope="module")
def federation(authority: RunningAuthority, self_emulator: MetadataServer) -> Federation:
    """blob-api with roles; cloud-run-caller trusts the emulator's tokens for the default account."""
    return seed_federation(authority.admin, issuer=self_emulator.url, subject=DEFAULT_UNIQUE_ID)


@pytest.fixture(scope="module")
def google_federation(authority: RunningAuthority) -> Federation:
    """The same trust written for the real cloud: issuer https://accounts.google.com."""
    return seed_federation(
        authority.admin, issuer=GOOGLE_ISSUER, subject=DEFAULT_UNIQUE_ID, domain="gcp.example"
    )


def id_token_from_google_auth(
    google_auth: GoogleAuth, server: MetadataServer, audience: str = AUDIENCE
) -> str:
    [result] = google_auth(server, [{"op": "fetch_id_token", "audience": audience}])
    assert "error" not in result, result
    return str(result["token"])


def msal_token(authority: RunningAuthority, federation: Federation, assertion: str) -> dict[str, Any]:
    app = msal.ConfidentialClientApplication(
        federation.client.app_id,
        authority=f"{authority.base_url}/{federation.tenant_id}",
        client_credential={"client_assertion": lambda: assertion},
        instance_discovery=False,
        verify=str(authority.ca_file),
    )
    try:
        result: dict[str, Any] = app.acquire_token_for_client(scopes=[federation.scope])
    finally:
        app.http_client.close()  # no keep-alive connection may outlive the module's authority
    return result


def verified_access_token(authority: RunningAuthority, federation: Federation, token: str) -> dict[str, Any]:
    """Check the access token as blob-api would: discovery -> jwks_uri -> signature and claims."""
    with requests.Session() as session:
        metadata = session.get(
            f"{authority.base_url}/{federation.tenant_id}/v2.0/.well-known/openid-configuration",
            verify=str(authority.ca_file),
            timeout=10,
        ).json()
    context = ssl.create_default_context(cafile=str(authority.ca_file))
    key = jwt.PyJWKClient(metadata["jwks_uri"], ssl_context=context).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["RS256"], audience=federation.resource.app_id, issuer=metadata["issuer"]
    )
    return claims


def assert_error_code(result: dict[str, Any], code: int) -> None:
    assert "access_token" not in result, result
    assert result["error_codes"] == [code], result
    assert result["error_description"].startswith(f"AADSTS{code}:")


# -- success ---------------------------------------------------------------------------------------


def test_msal_exchanges_a_google_auth_id_token_for_an_access_token_with_the_role(
    authority: RunningAuthority,
    federation: Federation,
    self_emulator: MetadataServer,
    google_auth: GoogleAuth,
) -> None:
    assertion = id_token_from_google_auth(google_auth, self_emulator)
    result = msal_token(authority, federation, assertion)
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer"
    claims = verified_access_token(authority, federation, result["access_token"])
    assert claims["roles"] == ["Blob.Read"]
    assert claims["azp"] == federation.client.app_id
    assert claims["tid"] == federation.tenant_id


def test_azure_identity_client_assertion_credential_exchanges_the_same_token(
    authority: RunningAuthority,
    federation: Federation,
    self_emulator: MetadataServer,
    google_auth: GoogleAuth,
) -> None:
    assertion = id_token_from_google_auth(google_auth, self_emulator)
    credential = ClientAssertionCredential(
        federation.tenant_id,
        federation.client.app_id,
        lambda: assertion,
        authority=authority.base_url,
        connection_verify=str(authority.ca_file),
    )
    with credential:
        token = credential.get_token(federation.scope)
    claims = verified_access_token(authority, federation, token.token)
    assert claims["roles"] == ["Blob.Read"]
    # The client adds expires_in to its own clock, read before the request: a second boundary
    # crossed in between puts it one second short (as against Entra ID).
    assert claims["exp"] - 1 <= token.expires_on <= claims["exp"]


def test_google_issuer_mode_works_with_a_trust_written_for_the_real_cloud(
    authority: RunningAuthority,
    google_federation: Federation,
    google_emulator: MetadataServer,
    google_auth: GoogleAuth,
) -> None:
    assertion = id_token_from_google_auth(google_auth, google_emulator)
    assert jwt.decode(assertion, options={"verify_signature": False})["iss"] == GOOGLE_ISSUER
    result = msal_token(authority, google_federation, assertion)
    assert "access_token" in result, result
    assert verified_access_token(authority, google_federation, result["access_token"])["roles"] == [
        "Blob.Read"
    ]


# -- refusals --------------------------------------------------------------------------------------


def test_a_token_for_another_audience_is_refused_with_700212(
    authority: RunningAuthority,
    federation: Federation,
    self_emulator: MetadataServer,
    google_auth: GoogleAuth,
) -> None:
    assertion = id_token_from_google_auth(google_auth, self_emulator, audience="api://not-entra")
    assert_error_code(msal_token(authority, federation, assertion), 700212)


def test_a_token_for_another_service_account_is_refused_with_700213(
    authority: RunningAuthority, federation: Federation, self_emulator: MetadataServer
) -> None:
    response = httpx.get(
        f"{self_emulator.url}/computeMetadata/v1/instance/service-accounts/{OTHER.email}/identity",
        params={"audience": AUDIENCE, "format": "full"},
        headers=FLAVOR,
    )
    assert jwt.decode(response.text, options={"verify_signature": False})["sub"] == OTHER.unique_id
    assert_error_code(msal_token(authority, federation, response.text), 700213)


def test_an_expired_token_is_refused_with_700024(
    authority: RunningAuthority, federation: Federation, self_emulator: MetadataServer
) -> None:
    account = self_emulator.config.default_account
    expired = self_emulator.issuer.mint_identity_token(
        account, AUDIENCE, format="full", now=time.time() - 7200
    )
    assert_error_code(msal_token(authority, federation, expired), 700024)
    credential = ClientAssertionCredential(
        federation.tenant_id,
        federation.client.app_id,
        lambda: expired,
        authority=authority.base_url,
        connection_verify=str(authority.ca_file),
    )
    with credential, pytest.raises(ClientAuthenticationError, match="AADSTS700024"):
        credential.get_token(federation.scope)


def test_the_authority_refuses_issuer_overrides_without_development_mode(
    tmp_path: Path, google_emulator: MetadataServer
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_authority_settings(
            data_dir=tmp_path, dev_mode=False, issuer_overrides={GOOGLE_ISSUER: google_emulator.discovery_url}
        )
    assert "KEYLESS_ISSUER_OVERRIDES is refused unless KEYLESS_DEV_MODE=true" in caught.value.problems
