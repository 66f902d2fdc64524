"""Unmodified MSAL Python, azure-identity and @azure/msal-node get tokens from keyless over HTTPS;
every token is verified with PyJWT against the key set found through OIDC discovery."""

from __future__ import annotations

import ssl
from typing import Any

import jwt
import msal
import pytest
import requests
from azure.identity import CertificateCredential, ClientAssertionCredential, ClientSecretCredential
from tests._support.authority_server import Federation, RunningAuthority
from tests._support.certs import make_client_certificate
from tests._support.node import msal_node_acquire
from tests._support.oidc_issuer import TestIssuer

SUBJECT = "112233445566778899001"


def verified_claims(authority: RunningAuthority, tenant: str, token: str, audience: str) -> dict[str, Any]:
    """Verify ``token`` the way a resource server would: discovery -> jwks_uri -> signature + claims."""
    metadata = requests.get(
        f"{authority.base_url}/{tenant}/v2.0/.well-known/openid-configuration",
        verify=str(authority.ca_file),
        timeout=10,
    ).json()
    context = ssl.create_default_context(cafile=str(authority.ca_file))
    key = jwt.PyJWKClient(metadata["jwks_uri"], ssl_context=context).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience=audience,
        issuer=metadata["issuer"],
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
    )
    return claims


def assert_app_only_v2(claims: dict[str, Any], federation: Federation, appidacr: str) -> None:
    assert claims["ver"] == "2.0"
    assert claims["aud"] == federation.resource.app_id
    assert claims["azp"] == federation.client.app_id
    assert claims["azpacr"] == appidacr
    assert claims["tid"] == federation.tenant_id
    assert claims["idtyp"] == "app"
    assert claims["oid"] == claims["sub"] == federation.client.service_principal_id
    assert claims["roles"] == ["Blob.Read"]
    assert 3600 <= claims["exp"] - claims["iat"] - 300 <= 5400


def msal_app(
    authority: RunningAuthority, federation: Federation, credential: Any
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        federation.client.app_id,
        authority=f"{authority.base_url}/{federation.tenant_id}",
        client_credential=credential,
        instance_discovery=False,
        verify=str(authority.ca_file),
    )


def test_msal_python_exchanges_a_federated_assertion_from_a_callable(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    calls = []

    def assertion() -> str:
        calls.append(1)
        return issuer.mint(sub=SUBJECT)

    app = msal_app(authority, federation, {"client_assertion": assertion})
    result = app.acquire_token_for_client(scopes=[federation.scope])
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer"
    assert_app_only_v2(
        verified_claims(authority, federation.tenant_id, result["access_token"], federation.resource.app_id),
        federation,
        "2",
    )
    again = app.acquire_token_for_client(scopes=[federation.scope])
    assert again["token_source"] == "cache"
    assert len(calls) == 1


def test_msal_python_authenticates_with_a_certificate(
    authority: RunningAuthority, federation: Federation
) -> None:
    cert = make_client_certificate()
    authority.admin.add_certificate(federation.client, cert.cert_pem)
    app = msal_app(
        authority,
        federation,
        {"private_key": cert.key_pem.decode(), "public_certificate": cert.cert_pem.decode()},
    )
    result = app.acquire_token_for_client(scopes=[federation.scope])
    assert "access_token" in result, result
    assert_app_only_v2(
        verified_claims(authority, federation.tenant_id, result["access_token"], federation.resource.app_id),
        federation,
        "2",
    )


def test_msal_python_authenticates_with_a_client_secret(
    authority: RunningAuthority, federation: Federation
) -> None:
    secret = authority.admin.add_secret(federation.client, "ci")
    result = msal_app(authority, federation, secret.value).acquire_token_for_client(scopes=[federation.scope])
    assert "access_token" in result, result
    assert_app_only_v2(
        verified_claims(authority, federation.tenant_id, result["access_token"], federation.resource.app_id),
        federation,
        "1",
    )


def test_msal_python_uses_the_instance_discovery_endpoint_keyless_serves(
    authority: RunningAuthority, federation: Federation
) -> None:
    secret = authority.admin.add_secret(federation.client, "ci")
    app = msal.ConfidentialClientApplication(
        federation.client.app_id,
        authority=f"{authority.base_url}/contoso.example",
        client_credential=secret.value,
        instance_discovery=f"{authority.base_url}/common/discovery/instance",
        verify=str(authority.ca_file),
    )
    result = app.acquire_token_for_client(scopes=[federation.scope])
    assert "access_token" in result, result


def test_azure_identity_client_assertion_credential_gets_a_token(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    credential = ClientAssertionCredential(
        federation.tenant_id,
        federation.client.app_id,
        lambda: issuer.mint(sub=SUBJECT),
        authority=authority.base_url,
        connection_verify=str(authority.ca_file),
    )
    token = credential.get_token(federation.scope)
    claims = verified_claims(authority, federation.tenant_id, token.token, federation.resource.app_id)
    assert_app_only_v2(claims, federation, "2")
    # The client adds expires_in to its own clock, read before the request: a second boundary
    # crossed in between puts it one second short (as against Entra ID).
    assert claims["exp"] - 1 <= token.expires_on <= claims["exp"]


def test_azure_identity_certificate_credential_gets_a_token(
    authority: RunningAuthority, federation: Federation
) -> None:
    cert = make_client_certificate()
    authority.admin.add_certificate(federation.client, cert.cert_pem)
    credential = CertificateCredential(
        federation.tenant_id,
        federation.client.app_id,
        certificate_data=cert.key_pem + cert.cert_pem,
        authority=authority.base_url,
        disable_instance_discovery=True,
        connection_verify=str(authority.ca_file),
    )
    token = credential.get_token(federation.scope)
    assert_app_only_v2(
        verified_claims(authority, federation.tenant_id, token.token, federation.resource.app_id),
        federation,
        "2",
    )


def test_azure_identity_client_secret_credential_gets_a_token(
    authority: RunningAuthority, federation: Federation
) -> None:
    secret = authority.admin.add_secret(federation.client, "ci")
    credential = ClientSecretCredential(
        "contoso.example",
        federation.client.app_id,
        secret.value,
        authority=authority.base_url,
        disable_instance_discovery=True,
        connection_verify=str(authority.ca_file),
    )
    token = credential.get_token(federation.scope)
    assert_app_only_v2(
        verified_claims(authority, federation.tenant_id, token.token, federation.resource.app_id),
        federation,
        "1",
    )


def _node_config(authority: RunningAuthority, federation: Federation, **auth: Any) -> dict[str, Any]:
    host = authority.base_url.split("://", 1)[1]
    return {
        "authority": f"{authority.base_url}/{federation.tenant_id}",
        "clientId": federation.client.app_id,
        "scopes": [federation.scope],
        "knownAuthorities": [host],
        **auth,
    }


@pytest.mark.node
def test_msal_node_exchanges_a_federated_assertion(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    config = _node_config(authority, federation, clientAssertion=issuer.mint(sub=SUBJECT))
    result = msal_node_acquire(config, ca_file=authority.ca_file)
    assert result["ok"], result
    assert_app_only_v2(
        verified_claims(authority, federation.tenant_id, result["accessToken"], federation.resource.app_id),
        federation,
        "2",
    )


@pytest.mark.node
def test_msal_node_authenticates_with_secret_and_certificate(
    authority: RunningAuthority, federation: Federation
) -> None:
    secret = authority.admin.add_secret(federation.client, "node")
    result = msal_node_acquire(
        _node_config(authority, federation, clientSecret=secret.value), ca_file=authority.ca_file
    )
    assert result["ok"], result
    cert = make_client_certificate()
    authority.admin.add_certificate(federation.client, cert.cert_pem)
    by_cert = _node_config(
        authority,
        federation,
        clientCertificate={
            "thumbprintSha256": cert.sha256_hex,
            "privateKey": cert.key_pem.decode(),
            "x5c": cert.cert_pem.decode(),
        },
    )
    result = msal_node_acquire(by_cert, ca_file=authority.ca_file)
    assert result["ok"], result
    claims = verified_claims(
        authority, federation.tenant_id, result["accessToken"], federation.resource.app_id
    )
    assert claims["azpacr"] == "2"


@pytest.mark.node
def test_msal_node_reports_an_entra_error_for_a_wrong_secret(
    authority: RunningAuthority, federation: Federation
) -> None:
    result = msal_node_acquire(
        _node_config(authority, federation, clientSecret="wrong"), ca_file=authority.ca_file
    )
    assert not result["ok"]
    assert result["errorCode"] == "invalid_client"
    assert "AADSTS7000215" in result["errorMessage"]
