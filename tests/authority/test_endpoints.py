"""Discovery documents, key sets and instance discovery, shaped as Entra's."""

from __future__ import annotations

import httpx
import pytest
from tests._support.authority_server import Federation, RunningAuthority


def get(authority: RunningAuthority, path: str) -> httpx.Response:
    with httpx.Client(verify=authority.ssl_context(), timeout=15) as client:
        return client.get(authority.base_url + path)


def test_v2_discovery_names_endpoints_on_the_tenant_guid_even_when_asked_by_domain(
    authority: RunningAuthority, federation: Federation
) -> None:
    response = get(authority, "/contoso.example/v2.0/.well-known/openid-configuration")
    doc = response.json()
    tid = federation.tenant_id
    assert response.status_code == 200
    assert response.headers["cache-control"] == "max-age=86400, private"
    assert doc["issuer"] == f"{authority.base_url}/{tid}/v2.0"
    assert doc["token_endpoint"] == f"{authority.base_url}/{tid}/oauth2/v2.0/token"
    assert doc["jwks_uri"] == f"{authority.base_url}/{tid}/discovery/v2.0/keys"
    for required in (
        "authorization_endpoint",
        "token_endpoint",
        "issuer",
        "jwks_uri",
    ):  # MSAL and msal-node need these
        assert doc[required].startswith("https://")


def test_v1_discovery_has_the_sts_shaped_issuer(authority: RunningAuthority, federation: Federation) -> None:
    doc = get(authority, f"/{federation.tenant_id}/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"{authority.base_url}/{federation.tenant_id}/"
    assert doc["token_endpoint"].endswith("/oauth2/token")
    assert doc["jwks_uri"].endswith("/discovery/keys")


def test_common_discovery_returns_the_templated_issuer(authority: RunningAuthority) -> None:
    doc = get(authority, "/common/v2.0/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"{authority.base_url}/{{tenantid}}/v2.0"


def test_unknown_tenant_discovery_is_a_400_with_90002(authority: RunningAuthority) -> None:
    response = get(authority, "/00000000-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_tenant"
    assert response.json()["error_codes"] == [90002]


@pytest.mark.parametrize("path", ["/discovery/v2.0/keys", "/discovery/keys"])
def test_jwks_publishes_kid_equal_to_x5t_with_the_certificate(
    authority: RunningAuthority, federation: Federation, path: str
) -> None:
    keys = get(authority, f"/{federation.tenant_id}{path}").json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "RSA" and key["use"] == "sig"
    assert key["kid"] == key["x5t"]
    assert key["x5c"] and key["n"] and key["e"] == "AQAB"
    assert "d" not in key and "p" not in key
    assert key["issuer"].startswith(f"{authority.base_url}/{federation.tenant_id}/")


def test_instance_discovery_answers_for_its_own_host_only(
    authority: RunningAuthority, federation: Federation
) -> None:
    host = authority.base_url.split("://", 1)[1]
    ok = get(
        authority,
        f"/common/discovery/instance?api-version=1.1&authorization_endpoint=https://{host}/{federation.tenant_id}/oauth2/v2.0/authorize",
    ).json()
    assert (
        ok["tenant_discovery_endpoint"]
        == f"https://{host}/{federation.tenant_id}/v2.0/.well-known/openid-configuration"
    )
    assert ok["metadata"][0]["aliases"] == [host]
    other = get(
        authority,
        "/common/discovery/instance?authorization_endpoint=https://login.example.com/x/oauth2/v2.0/authorize",
    )
    assert other.status_code == 400
    assert other.json()["error"] == "invalid_instance"


def test_es256_tenant_signs_with_p256(authority: RunningAuthority) -> None:
    tenant = authority.admin.create_tenant("Fabrikam", domains=["fabrikam.example"], signing_alg="ES256")
    resource = authority.admin.create_application(
        tenant.id, "api", identifier_uris=["api://fab"], requested_access_token_version=2
    )
    client = authority.admin.create_application(tenant.id, "caller")
    secret = authority.admin.add_secret(client)
    keys = get(authority, f"/{tenant.id}/discovery/v2.0/keys").json()["keys"]
    assert keys[0]["kty"] == "EC" and keys[0]["crv"] == "P-256"
    with httpx.Client(verify=authority.ssl_context()) as http:
        token = http.post(
            authority.token_url(tenant.id),
            data={
                "grant_type": "client_credentials",
                "client_id": client.app_id,
                "client_secret": secret.value,
                "scope": "api://fab/.default",
            },
        ).json()["access_token"]
    import jwt

    key = jwt.PyJWK(keys[0])
    claims = jwt.decode(token, key.key, algorithms=["ES256"], audience=resource.app_id)
    assert claims["tid"] == tenant.id


def test_health_reports_ok(authority: RunningAuthority) -> None:
    assert get(authority, "/healthz").json()["status"] == "ok"


def test_unknown_path_is_a_json_404(authority: RunningAuthority) -> None:
    response = get(authority, "/nope/nothing/here")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
