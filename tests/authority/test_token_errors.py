"""Every refusal of the token endpoint, produced by sending the bad input over HTTPS: Entra's JSON
shape, its AADSTS code and HTTP status, and never a 500."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from tests._support.authority_server import Federation, RunningAuthority
from tests._support.certs import make_client_certificate
from tests._support.oidc_issuer import TestIssuer

from keyless.authority.model import FIC_AUDIENCE_DEFAULT
from keyless.jose import Signer, b64url, encode_jwt

SUBJECT = "112233445566778899001"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def post(
    authority: RunningAuthority, tenant: str, data: Any = None, *, version: int = 2, **kwargs: Any
) -> httpx.Response:
    with httpx.Client(verify=authority.ssl_context(), timeout=15) as client:
        return client.post(authority.token_url(tenant, version), data=data, **kwargs)


def federated_form(federation: Federation, assertion: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": federation.client.app_id,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        "scope": federation.scope,
        **extra,
    }


def assert_refused(response: httpx.Response, code: int, error: str, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store, no-cache"
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert f"Trace ID: {body['trace_id']}" in body["error_description"]
    assert f"Correlation ID: {body['correlation_id']}" in body["error_description"]
    assert time.strptime(body["timestamp"], "%Y-%m-%d %H:%M:%SZ")
    return body


# -- tenant and request shape -------------------------------------------------------------------------
def test_unknown_tenant_is_90002(authority: RunningAuthority, federation: Federation) -> None:
    assert_refused(
        post(authority, str(uuid.uuid4()), {"grant_type": "client_credentials"}), 90002, "invalid_tenant", 400
    )


def test_tenant_that_is_neither_guid_nor_domain_is_900023(authority: RunningAuthority) -> None:
    assert_refused(
        post(authority, "not_a_tenant!", {"grant_type": "client_credentials"}), 900023, "invalid_request", 400
    )


def test_client_credentials_over_common_is_9001023(authority: RunningAuthority) -> None:
    assert_refused(
        post(authority, "common", {"grant_type": "client_credentials"}), 9001023, "invalid_request", 400
    )


def test_get_on_the_token_endpoint_is_900561(authority: RunningAuthority, federation: Federation) -> None:
    with httpx.Client(verify=authority.ssl_context()) as client:
        response = client.get(authority.token_url(federation.tenant_id))
    assert_refused(response, 900561, "invalid_request", 400)


@pytest.mark.parametrize("missing", ["grant_type", "client_id", "scope"])
def test_missing_parameter_is_900144(
    authority: RunningAuthority, federation: Federation, missing: str
) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": federation.client.app_id,
        "client_secret": "x",
        "scope": federation.scope,
    }
    del form[missing]
    body = assert_refused(post(authority, federation.tenant_id, form), 900144, "invalid_request", 400)
    assert f"'{missing}'" in body["error_description"]


def test_unsupported_grant_type_is_70003(authority: RunningAuthority, federation: Federation) -> None:
    body = assert_refused(
        post(authority, federation.tenant_id, {"grant_type": "password"}),
        70003,
        "unsupported_grant_type",
        400,
    )
    assert "'password'" in body["error_description"]


def test_wrong_content_type_is_refused_as_invalid_request(
    authority: RunningAuthority, federation: Federation
) -> None:
    response = post(
        authority,
        federation.tenant_id,
        content=json.dumps({"grant_type": "client_credentials"}),
        headers={"content-type": "application/json"},
    )
    assert_refused(response, 90014, "invalid_request", 400)


def test_oversized_body_is_refused_without_reading_it_all(
    authority: RunningAuthority, federation: Federation
) -> None:
    response = post(
        authority, federation.tenant_id, {"grant_type": "client_credentials", "pad": "x" * 200_000}
    )
    assert_refused(response, 90014, "invalid_request", 400)


def test_undecodable_body_is_refused(authority: RunningAuthority, federation: Federation) -> None:
    response = post(
        authority,
        federation.tenant_id,
        content=b"grant_type=\xff\xfe",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_refused(response, 90014, "invalid_request", 400)


def test_duplicate_parameters_are_9002313(authority: RunningAuthority, federation: Federation) -> None:
    body = f"grant_type=client_credentials&client_id={federation.client.app_id}&client_id=other"
    response = post(
        authority,
        federation.tenant_id,
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_refused(response, 9002313, "invalid_request", 400)


# -- client identification and secrets ------------------------------------------------------------------
def test_unknown_client_is_700016(authority: RunningAuthority, federation: Federation) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": str(uuid.uuid4()),
        "client_secret": "x",
        "scope": federation.scope,
    }
    assert_refused(post(authority, federation.tenant_id, form), 700016, "unauthorized_client", 400)


def test_no_client_authentication_is_7000218(authority: RunningAuthority, federation: Federation) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": federation.client.app_id,
        "scope": federation.scope,
    }
    assert_refused(post(authority, federation.tenant_id, form), 7000218, "invalid_client", 401)


def test_wrong_client_secret_is_7000215_with_401(authority: RunningAuthority, federation: Federation) -> None:
    authority.admin.add_secret(federation.client, "ci")
    form = {
        "grant_type": "client_credentials",
        "client_id": federation.client.app_id,
        "client_secret": "nope",
        "scope": federation.scope,
    }
    assert_refused(post(authority, federation.tenant_id, form), 7000215, "invalid_client", 401)


def test_expired_client_secret_is_7000222(authority: RunningAuthority, federation: Federation) -> None:
    secret = authority.admin.add_secret(federation.client, "old", lifetime=-60)
    form = {
        "grant_type": "client_credentials",
        "client_id": federation.client.app_id,
        "client_secret": secret.value,
        "scope": federation.scope,
    }
    assert_refused(post(authority, federation.tenant_id, form), 7000222, "invalid_client", 401)


def test_http_basic_client_secret_is_accepted(authority: RunningAuthority, federation: Federation) -> None:
    secret = authority.admin.add_secret(federation.client, "basic")
    response = post(
        authority,
        federation.tenant_id,
        {"grant_type": "client_credentials", "scope": federation.scope},
        auth=(federation.client.app_id, secret.value),
    )
    assert response.status_code == 200, response.text


def test_secret_and_assertion_together_are_9002313(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    form = federated_form(federation, issuer.mint(sub=SUBJECT), client_secret="x")
    assert_refused(post(authority, federation.tenant_id, form), 9002313, "invalid_request", 400)


def test_wrong_client_assertion_type_is_9002313(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    form = federated_form(federation, issuer.mint(sub=SUBJECT), client_assertion_type="urn:other")
    assert_refused(post(authority, federation.tenant_id, form), 9002313, "invalid_request", 400)


# -- scope and resource ----------------------------------------------------------------------------------
def _secret_form(authority: RunningAuthority, federation: Federation, scope: str) -> dict[str, str]:
    secret = authority.admin.add_secret(federation.client, f"s{uuid.uuid4().hex[:6]}")
    return {
        "grant_type": "client_credentials",
        "client_id": federation.client.app_id,
        "client_secret": secret.value,
        "scope": scope,
    }


def test_scope_without_default_suffix_is_1002012(authority: RunningAuthority, federation: Federation) -> None:
    form = _secret_form(authority, federation, "api://blob-api/Blob.Read")
    assert_refused(post(authority, federation.tenant_id, form), 1002012, "invalid_scope", 400)


def test_scope_for_two_resources_is_700022(authority: RunningAuthority, federation: Federation) -> None:
    authority.admin.create_application(federation.tenant_id, "other-api", identifier_uris=["api://other"])
    form = _secret_form(authority, federation, "api://blob-api/.default api://other/.default")
    assert_refused(post(authority, federation.tenant_id, form), 700022, "invalid_scope", 400)


def test_unknown_resource_is_500011(authority: RunningAuthority, federation: Federation) -> None:
    form = _secret_form(authority, federation, "api://nothing-here/.default")
    body = assert_refused(post(authority, federation.tenant_id, form), 500011, "invalid_resource", 400)
    assert "api://nothing-here" in body["error_description"]


def test_resource_requiring_assignment_refuses_a_client_without_roles_with_501051(
    authority: RunningAuthority, federation: Federation
) -> None:
    locked = authority.admin.create_application(
        federation.tenant_id,
        "locked-api",
        identifier_uris=["api://locked"],
        app_role_assignment_required=True,
    )
    form = _secret_form(authority, federation, "api://locked/.default")
    body = assert_refused(post(authority, federation.tenant_id, form), 501051, "invalid_grant", 400)
    assert locked.app_id in body["error_description"]


def test_resource_by_app_id_and_trailing_slash_resolve(
    authority: RunningAuthority, federation: Federation
) -> None:
    for scope in (f"{federation.resource.app_id}/.default", "api://blob-api//.default"):
        response = post(authority, federation.tenant_id, _secret_form(authority, federation, scope))
        assert response.status_code == 200, response.text


# -- federated assertions ------------------------------------------------------------------------------
def test_app_without_federated_credentials_is_70021(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    bare = authority.admin.create_application(federation.tenant_id, "bare")
    form = federated_form(federation, issuer.mint(sub=SUBJECT), client_id=bare.app_id)
    body = assert_refused(post(authority, federation.tenant_id, form), 70021, "invalid_client", 401)
    assert f"Assertion Issuer: '{issuer.url}'" in body["error_description"]


def test_unregistered_issuer_is_700211_and_never_fetched(
    authority: RunningAuthority, federation: Federation
) -> None:
    with TestIssuer() as stranger:
        response = post(
            authority, federation.tenant_id, federated_form(federation, stranger.mint(sub=SUBJECT))
        )
        assert_refused(response, 700211, "invalid_client", 401)
        assert sum(stranger.requests.values()) == 0


def test_wrong_audience_is_700212(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    response = post(
        authority,
        federation.tenant_id,
        federated_form(federation, issuer.mint(sub=SUBJECT, aud="api://wrong")),
    )
    body = assert_refused(response, 700212, "invalid_client", 401)
    assert "'api://wrong'" in body["error_description"]


def test_wrong_subject_is_700213(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    response = post(authority, federation.tenant_id, federated_form(federation, issuer.mint(sub="999")))
    assert_refused(response, 700213, "invalid_client", 401)


def test_subject_differing_only_by_case_is_7002138(authority: RunningAuthority, issuer: TestIssuer) -> None:
    from tests._support.authority_server import seed_federation

    fed = seed_federation(
        authority.admin, issuer=issuer.url, subject="repo:Org/App:ref:refs/heads/main", domain="gh.example"
    )
    response = post(
        authority, fed.tenant_id, federated_form(fed, issuer.mint(sub="repo:org/app:ref:refs/heads/main"))
    )
    assert_refused(response, 7002138, "invalid_client", 401)


def test_expired_assertion_is_700024_with_the_times(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    old = time.time() - 3600
    response = post(
        authority,
        federation.tenant_id,
        federated_form(federation, issuer.mint(sub=SUBJECT, now=old, lifetime=600)),
    )
    body = assert_refused(response, 700024, "invalid_client", 401)
    assert "Current time: " in body["error_description"]
    assert "expiry time of assertion " in body["error_description"]


def test_assertion_within_clock_skew_is_accepted(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    skewed = time.time() - 600 - 120  # expired two minutes ago: inside the five-minute leeway
    response = post(
        authority,
        federation.tenant_id,
        federated_form(federation, issuer.mint(sub=SUBJECT, now=skewed, lifetime=600)),
    )
    assert response.status_code == 200, response.text


def test_bad_signature_is_700027(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    good = issuer.mint(sub=SUBJECT)
    header, payload, _ = good.split(".")
    forged = f"{header}.{payload}.{b64url(Signer.generate().sign(f'{header}.{payload}'.encode()))}"
    assert_refused(
        post(authority, federation.tenant_id, federated_form(federation, forged)),
        700027,
        "invalid_client",
        401,
    )


def test_alg_none_is_refused(authority: RunningAuthority, federation: Federation, issuer: TestIssuer) -> None:
    claims = jwt.decode(issuer.mint(sub=SUBJECT), options={"verify_signature": False})
    unsigned = b64url(b'{"alg":"none","typ":"JWT"}') + "." + b64url(json.dumps(claims).encode()) + "."
    for token in (unsigned, unsigned + "c2ln"):
        body = assert_refused(
            post(authority, federation.tenant_id, federated_form(federation, token)),
            700027,
            "invalid_client",
            401,
        )
        assert "'none'" in body["error_description"]


def test_hs256_signed_with_the_issuers_public_key_is_refused(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    from cryptography.hazmat.primitives import serialization

    claims = jwt.decode(issuer.mint(sub=SUBJECT), options={"verify_signature": False})
    public_pem = issuer.signer.public_key().key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import hashlib
    import hmac

    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.signer.kid}).encode())
    body = b64url(json.dumps(claims).encode())
    mac = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{body}.{b64url(mac)}"
    response = post(authority, federation.tenant_id, federated_form(federation, forged))
    body_json = assert_refused(response, 700027, "invalid_client", 401)
    assert "HS256" in body_json["error_description"]


@pytest.mark.parametrize(
    "assertion",
    [
        "garbage",
        "a.b.c.d.e",  # JWE
        "!!!.e30.c2ln",  # bad base64
        b64url(b"[1]") + ".e30.c2ln",  # header not an object
        b64url(b'{"alg":"RS256","crit":["exp"]}') + ".e30.c2ln",
        b64url(b'{"alg":"RS256","cty":"JWT"}') + ".e30.c2ln",
        b64url(b'{"alg":"RS256","alg":"none"}') + ".e30.c2ln",  # duplicate member
    ],
    ids=["garbage", "jwe", "bad-base64", "header-not-object", "crit", "nested", "duplicate-member"],
)
def test_malformed_assertions_are_50027(
    authority: RunningAuthority, federation: Federation, assertion: str
) -> None:
    assert_refused(
        post(authority, federation.tenant_id, federated_form(federation, assertion)),
        50027,
        "invalid_request",
        400,
    )


def test_unknown_kid_after_refetch_is_7000272(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    stray = Signer.generate()
    now = int(time.time())
    claims = {"iss": issuer.url, "sub": SUBJECT, "aud": FIC_AUDIENCE_DEFAULT, "iat": now, "exp": now + 600}
    response = post(authority, federation.tenant_id, federated_form(federation, encode_jwt(claims, stray)))
    assert_refused(response, 7000272, "invalid_client", 401)


def test_issuer_unreachable_without_cached_keys_is_90061(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    assertion = issuer.mint(sub=SUBJECT)
    issuer.down()
    assert_refused(
        post(authority, federation.tenant_id, federated_form(federation, assertion)),
        90061,
        "invalid_request",
        400,
    )


def test_tokens_of_keyless_itself_are_not_federated_credentials_700222(
    authority: RunningAuthority, federation: Federation
) -> None:
    secret = authority.admin.add_secret(federation.client, "s")
    own = post(
        authority,
        federation.tenant_id,
        {
            "grant_type": "client_credentials",
            "client_id": federation.client.app_id,
            "client_secret": secret.value,
            "scope": federation.scope,
        },
    ).json()["access_token"]
    assert_refused(
        post(authority, federation.tenant_id, federated_form(federation, own)), 700222, "invalid_client", 401
    )


def test_detailed_errors_tenant_names_the_near_miss(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    import dataclasses

    tenant = authority.admin.store.get_tenant(federation.tenant_id)
    authority.admin.update_tenant(dataclasses.replace(tenant, detailed_errors=True))
    response = post(
        authority,
        federation.tenant_id,
        federated_form(federation, issuer.mint(sub=SUBJECT, iss=issuer.url + "/")),
    )
    body = assert_refused(response, 700211, "invalid_client", 401)
    assert "trailing slash" in body["error_description"]


# -- certificate assertions --------------------------------------------------------------------------------
def _cert_assertion(federation: Federation, key_pem: bytes, sha1_hex: str, aud: str, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": federation.client.app_id,
        "sub": federation.client.app_id,
        "aud": aud,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "exp": now + 600,
        **claims,
    }
    x5t = base64.urlsafe_b64encode(bytes.fromhex(sha1_hex)).rstrip(b"=").decode()
    return jwt.encode(payload, key_pem, algorithm="RS256", headers={"x5t": x5t})


def test_certificate_assertion_replay_is_700025(authority: RunningAuthority, federation: Federation) -> None:
    cert = make_client_certificate()
    authority.admin.add_certificate(federation.client, cert.cert_pem)
    assertion = _cert_assertion(
        federation, cert.key_pem, cert.sha1_hex, authority.token_url(federation.tenant_id)
    )
    assert post(authority, federation.tenant_id, federated_form(federation, assertion)).status_code == 200
    assert_refused(
        post(authority, federation.tenant_id, federated_form(federation, assertion)),
        700025,
        "invalid_client",
        401,
    )


def test_certificate_assertion_for_another_audience_is_700023(
    authority: RunningAuthority, federation: Federation
) -> None:
    cert = make_client_certificate()
    authority.admin.add_certificate(federation.client, cert.cert_pem)
    assertion = _cert_assertion(federation, cert.key_pem, cert.sha1_hex, "https://elsewhere.example/token")
    assert_refused(
        post(authority, federation.tenant_id, federated_form(federation, assertion)),
        700023,
        "invalid_client",
        401,
    )


def test_certificate_assertion_with_unregistered_certificate_is_700027(
    authority: RunningAuthority, federation: Federation
) -> None:
    cert = make_client_certificate()
    assertion = _cert_assertion(
        federation, cert.key_pem, cert.sha1_hex, authority.token_url(federation.tenant_id)
    )
    assert_refused(
        post(authority, federation.tenant_id, federated_form(federation, assertion)),
        700027,
        "invalid_client",
        401,
    )


def test_no_request_ever_produces_a_server_error(authority: RunningAuthority, federation: Federation) -> None:
    with httpx.Client(verify=authority.ssl_context(), timeout=15) as client:
        for body in (b"", b"&&&", b"=", b"a=b=c", b"%zz", b"grant_type=client_credentials&client_id=%00"):
            response = client.post(
                authority.token_url(federation.tenant_id),
                content=body,
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert response.status_code < 500, (body, response.text)
