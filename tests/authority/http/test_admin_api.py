"""The admin API: admin-key checks, Graph-shaped resources through their whole lifecycle, Graph-shaped
errors (400/401/404/409/412, never 422), the OpenAPI document, and trust documents over HTTP."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from keyless.authority._service import Authority
from keyless.authority.directory.secrets import secret_matches
from keyless.authority.http.admin import create_admin_api
from keyless.authority.http.app import create_app
from keyless.config import load_authority_settings
from keyless.jose._x509 import self_signed_certificate

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
APP_ID = "11111111-1111-1111-1111-111111111111"
ROLE_ID = "33333333-3333-3333-3333-333333333333"
GOOGLE = "https://accounts.google.com"
FIC_TYPE = "#microsoft.graph.federatedIdentityCredential"


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
async def store_authority(tmp_path: Path) -> AsyncIterator[Authority]:
    """An authority on a temporary data directory, not serving: the admin API is called in-process."""
    opened = Authority.open(load_authority_settings(data_dir=tmp_path / "data", port=0))
    yield opened
    await opened.aclose()


@pytest.fixture
def admin_key(store_authority: Authority) -> str:
    return (store_authority.settings.data_dir / "admin.key").read_text().strip()


@pytest.fixture
async def client(store_authority: Authority, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_admin_api(store_authority))
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://keyless.test", headers=headers) as c:
        yield c


@pytest.fixture
async def anonymous(store_authority: Authority) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_admin_api(store_authority))
    async with httpx.AsyncClient(transport=transport, base_url="http://keyless.test") as c:
        yield c


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Graph's error shape: {"error": {"code", "message", "details", "innerError"}}."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "details", "innerError"}
    assert error["code"] == code
    assert set(error["innerError"]) == {"date", "request-id"}
    return error


async def _tenant(client: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    body = {"id": TENANT_ID, "displayName": "Contoso", "domains": ["contoso.example"], **extra}
    created: dict[str, Any] = _ok(await client.post("/v1.0/tenants", json=body), 201)
    return created


async def _app(client: httpx.AsyncClient, name: str, **extra: Any) -> dict[str, Any]:
    created: dict[str, Any] = _ok(
        await client.post(f"/v1.0/tenants/{TENANT_ID}/applications", json={"displayName": name, **extra}), 201
    )
    return created


def _fic(name: str = "cloud-run", subject: str = "112233445566778899001", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "issuer": GOOGLE,
        "subject": subject,
        "audiences": ["api://AzureADTokenExchange"],
        **extra,
    }


def _certificate() -> x509.Certificate:
    der = self_signed_certificate(ec.generate_private_key(ec.SECP256R1()), "deploy")
    return x509.load_der_x509_certificate(der)


# --------------------------------------------------------------------------- the admin key


async def test_a_request_without_an_admin_key_is_401_with_a_bearer_challenge(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.get("/v1.0/tenants")

    error = _error(response, 401, "InvalidAuthenticationToken")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="keyless-admin"'
    assert "Authorization: Bearer" in error["message"]


async def test_a_wrong_admin_key_is_401(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.post(
        "/v1.0/tenants", json={"displayName": "x"}, headers={"Authorization": "Bearer kla_wrong"}
    )

    assert _error(response, 401, "InvalidAuthenticationToken")["message"] == "The admin key is not valid."
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="keyless-admin"'


async def test_another_authorization_scheme_is_401(anonymous: httpx.AsyncClient, admin_key: str) -> None:
    response = await anonymous.get("/v1.0/tenants", headers={"Authorization": f"Basic {admin_key}"})

    _error(response, 401, "InvalidAuthenticationToken")


async def test_the_openapi_document_is_served_and_lists_the_routes(anonymous: httpx.AsyncClient) -> None:
    document = _ok(await anonymous.get("/openapi.json"))

    assert document["info"]["title"] == "keyless admin API"
    paths = document["paths"]
    for path in (
        "/v1.0/tenants",
        "/v1.0/tenants/{tenant}",
        "/v1.0/tenants/{tenant}/applications/{app}",
        "/v1.0/tenants/{tenant}/applications/{app}/addPassword",
        "/v1.0/tenants/{tenant}/applications/{app}/removePassword",
        "/v1.0/tenants/{tenant}/applications/{app}/passwordCredentials",
        "/v1.0/tenants/{tenant}/applications/{app}/keyCredentials/{key_id}",
        "/v1.0/tenants/{tenant}/applications/{app}/federatedIdentityCredentials/{fic}",
        "/v1.0/tenants/{tenant}/appRoleAssignments/{assignment}",
        "/v1.0/tenants/{tenant}/signingKeys/rotate",
        "/v1.0/trust/plan",
        "/v1.0/trust/apply",
    ):
        assert path in paths
    assert set(paths["/v1.0/tenants/{tenant}"]) == {"get", "patch", "delete"}
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert (await anonymous.get("/docs")).status_code == 200


async def test_the_full_app_mounts_the_admin_api_under_admin(
    store_authority: Authority, admin_key: str
) -> None:
    transport = httpx.ASGITransport(app=create_app(store_authority, background=False))
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(transport=transport, base_url="https://id.test", headers=headers) as c:
        assert "/v1.0/tenants" in _ok(await c.get("/admin/openapi.json"))["paths"]
        _ok(await c.post("/admin/v1.0/tenants", json={"id": TENANT_ID, "displayName": "Contoso"}), 201)
        _ok(await c.post(f"/admin/v1.0/tenants/{TENANT_ID}/applications", json={"displayName": "a"}), 201)
        fic = _ok(
            await c.post(
                f"/admin/v1.0/tenants/{TENANT_ID}/applications/a/federatedIdentityCredentials", json=_fic()
            ),
            201,
        )

    assert fic["@odata.context"].startswith("https://id.test/admin/v1.0/$metadata#applications('")


# --------------------------------------------------------------------------- tenants


async def test_tenant_lifecycle(client: httpx.AsyncClient) -> None:
    created = await _tenant(client, signingAlgorithm="ES256")
    assert created == {
        "id": TENANT_ID,
        "displayName": "Contoso",
        "domains": ["contoso.example"],
        "signingAlgorithm": "ES256",
        "detailedErrors": False,
        "maxFederatedIdentityCredentialsPerApp": 20,
    }
    assert _ok(await client.get("/v1.0/tenants")) == {"value": [created]}
    by_domain = await client.get("/v1.0/tenants/contoso.example")
    assert _ok(by_domain) == created
    etag = by_domain.headers["ETag"]

    patched = await client.patch(
        f"/v1.0/tenants/{TENANT_ID}",
        json={"displayName": "Contoso Ltd", "detailedErrors": True},
        headers={"If-Match": etag},
    )
    assert patched.status_code == 204
    assert patched.headers["ETag"] != etag
    now = _ok(await client.get(f"/v1.0/tenants/{TENANT_ID}"))
    assert (now["displayName"], now["detailedErrors"], now["signingAlgorithm"]) == (
        "Contoso Ltd",
        True,
        "ES256",
    )

    assert (await client.delete(f"/v1.0/tenants/{TENANT_ID}")).status_code == 204
    _error(await client.get(f"/v1.0/tenants/{TENANT_ID}"), 404, "Request_ResourceNotFound")


async def test_creating_a_tenant_with_an_existing_id_is_409(client: httpx.AsyncClient) -> None:
    await _tenant(client)

    _error(
        await client.post("/v1.0/tenants", json={"id": TENANT_ID, "displayName": "Again"}), 409, "Conflict"
    )


async def test_a_stale_if_match_is_412(client: httpx.AsyncClient) -> None:
    await _tenant(client)

    response = await client.patch(
        f"/v1.0/tenants/{TENANT_ID}", json={"displayName": "x"}, headers={"If-Match": '"7"'}
    )

    assert "does not match the current version" in _error(response, 412, "PreconditionFailed")["message"]


async def test_invalid_input_is_400_in_graph_shape_never_422(client: httpx.AsyncClient) -> None:
    several = await client.post(
        "/v1.0/tenants", json={"id": "nope", "displayName": "", "domains": ["no-dot"], "colour": "red"}
    )
    error = _error(several, 400, "Request_BadRequest")
    # The request's shape first, every problem at once; the directory's rules once it has one.
    assert error["message"] == "The request has 3 problems (see details)."
    assert [d["message"] for d in error["details"]] == [
        "id: 'nope' is not a GUID",
        "displayName: must not be empty",
        "Property 'colour' does not exist on this object.",
    ]
    bad_domain = await client.post("/v1.0/tenants", json={"displayName": "Contoso", "domains": ["no-dot"]})
    assert "domain 'no-dot' is not a DNS name" in _error(bad_domain, 400, "Request_BadRequest")["message"]
    await _tenant(client)
    bad_uri = await client.post(
        f"/v1.0/tenants/{TENANT_ID}/applications",
        json={"displayName": "api", "identifierUris": ["no scheme"]},
    )
    assert "no scheme" in _error(bad_uri, 400, "Request_BadRequest")["message"]
    not_json = await client.post("/v1.0/tenants", content=b"{", headers={"Content-Type": "application/json"})
    assert _error(not_json, 400, "Request_BadRequest")["message"] == "The request body is not valid JSON."
    _error(await client.post("/v1.0/tenants", json=[1]), 400, "Request_BadRequest")


async def test_an_unknown_route_is_a_graph_shaped_404(client: httpx.AsyncClient) -> None:
    _error(await client.get("/v1.0/nothing-here"), 404, "Request_ResourceNotFound")


# --------------------------------------------------------------------------- applications


async def test_application_lifecycle(client: httpx.AsyncClient) -> None:
    await _tenant(client)
    created = await _app(
        client,
        "blob-api",
        appId=APP_ID.upper(),
        identifierUris=["api://blob-api"],
        appRoles=[
            {"id": ROLE_ID, "value": "Blob.Read", "displayName": "Read blobs"},
            {"value": "Blob.Write"},
        ],
        api={"requestedAccessTokenVersion": 2},
        appRoleAssignmentRequired=True,
    )
    assert created["appId"] == APP_ID
    assert created["api"] == {"requestedAccessTokenVersion": 2}
    assert created["appRoles"][0] == {
        "id": ROLE_ID,
        "value": "Blob.Read",
        "displayName": "Read blobs",
        "description": "",
        "allowedMemberTypes": ["Application"],
        "isEnabled": True,
    }
    generated = created["appRoles"][1]["id"]
    assert len(generated) == 36
    base = f"/v1.0/tenants/{TENANT_ID}/applications"
    for ref in (created["id"], APP_ID, "blob-api"):
        assert _ok(await client.get(f"{base}/{ref}")) == created
    assert _ok(await client.get(base)) == {"value": [created]}

    patched = await client.patch(
        f"{base}/blob-api",
        json={"requestedAccessTokenVersion": None, "appRoles": [{"value": "Blob.Write", "isEnabled": False}]},
    )
    assert patched.status_code == 204
    now = _ok(await client.get(f"{base}/{APP_ID}"))
    assert now["api"] == {"requestedAccessTokenVersion": None}
    assert [(r["id"], r["value"], r["isEnabled"]) for r in now["appRoles"]] == [
        (generated, "Blob.Write", False)
    ]
    assert (now["displayName"], now["identifierUris"], now["appRoleAssignmentRequired"]) == (
        "blob-api",
        ["api://blob-api"],
        True,
    )

    assert (await client.delete(f"{base}/{APP_ID}")).status_code == 204
    _error(await client.get(f"{base}/{APP_ID}"), 404, "Request_ResourceNotFound")


async def test_a_get_body_sent_back_as_patch_changes_only_what_was_edited(client: httpx.AsyncClient) -> None:
    await _tenant(client)
    app = await _app(client, "a", appRoles=[{"value": "R"}], identifierUris=["api://a"])
    edited = {**app, "displayName": "renamed"}
    url = f"/v1.0/tenants/{TENANT_ID}/applications/{app['id']}"

    assert (await client.patch(url, json=edited)).status_code == 204
    assert _ok(await client.get(url)) == edited
    error = _error(await client.patch(url, json={**edited, "appId": APP_ID}), 400, "Request_BadRequest")
    assert error["message"] == "appId is read-only"


async def test_application_patch_honours_if_match(client: httpx.AsyncClient) -> None:
    await _tenant(client)
    await _app(client, "a")
    url = f"/v1.0/tenants/{TENANT_ID}/applications/a"
    etag = (await client.get(url)).headers["ETag"]

    assert (await client.patch(url, json={"displayName": "b"}, headers={"If-Match": etag})).status_code == 204
    stale = await client.patch(
        f"/v1.0/tenants/{TENANT_ID}/applications/b", json={"displayName": "c"}, headers={"If-Match": etag}
    )
    _error(stale, 412, "PreconditionFailed")


async def test_application_input_rules(client: httpx.AsyncClient) -> None:
    await _tenant(client)
    await _app(client, "a", appId=APP_ID, identifierUris=["api://shared"])
    url = f"/v1.0/tenants/{TENANT_ID}/applications"

    _error(await client.post(url, json={"displayName": "b", "appId": APP_ID}), 409, "Conflict")
    taken = await client.post(url, json={"displayName": "b", "identifierUris": ["api://shared/"]})
    message = _error(taken, 400, "Request_BadRequest")["message"]
    assert message.startswith(
        "Another object with the same value for property identifierUris already exists."
    )
    assert "'b'" in message and "'a'" in message  # names the application and the owner
    disagree = await client.post(
        url,
        json={
            "displayName": "b",
            "api": {"requestedAccessTokenVersion": 2},
            "requestedAccessTokenVersion": 1,
        },
    )
    assert "disagree" in _error(disagree, 400, "Request_BadRequest")["message"]
    twice = await client.post(url, json={"displayName": "b", "appRoles": [{"value": "R"}, {"value": "R"}]})
    assert _error(twice, 400, "Request_BadRequest")["message"] == "app role value 'R' is used twice"
    _error(
        await client.post(url, json={"displayName": "b", "requestedAccessTokenVersion": 3}),
        400,
        "Request_BadRequest",
    )
    _error(await client.get("/v1.0/tenants/nowhere.example/applications"), 404, "Request_ResourceNotFound")


# --------------------------------------------------------------------------- password credentials


async def test_a_password_is_shown_once_and_never_listed_with_its_value(
    client: httpx.AsyncClient, store_authority: Authority
) -> None:
    await _tenant(client)
    await _app(client, "caller")
    base = f"/v1.0/tenants/{TENANT_ID}/applications/caller"

    created = _ok(
        await client.post(f"{base}/addPassword", json={"passwordCredential": {"displayName": "ci"}})
    )

    assert set(created) == {"keyId", "displayName", "hint", "secretText", "startDateTime", "endDateTime"}
    assert len(created["secretText"]) == 40
    assert created["hint"] == created["secretText"][:3]
    assert created["endDateTime"].endswith("Z")
    (stored,) = store_authority.store.list_secrets(_ok(await client.get(base))["id"])
    assert secret_matches(created["secretText"], stored.secret_hash, stored.salt)
    listing = await client.get(f"{base}/passwordCredentials")
    (listed,) = _ok(listing)["value"]
    assert listed == {**created, "secretText": None}
    assert created["secretText"] not in listing.text
    assert "hash" not in listing.text.lower()

    removed = await client.post(f"{base}/removePassword", json={"keyId": created["keyId"]})
    assert removed.status_code == 204
    assert _ok(await client.get(f"{base}/passwordCredentials")) == {"value": []}
    again = await client.post(f"{base}/removePassword", json={"keyId": created["keyId"]})
    _error(again, 404, "Request_ResourceNotFound")


async def test_add_password_accepts_an_empty_body_and_an_end_date(client: httpx.AsyncClient) -> None:
    await _tenant(client)
    await _app(client, "caller")
    base = f"/v1.0/tenants/{TENANT_ID}/applications/caller"

    assert _ok(await client.post(f"{base}/addPassword"))["displayName"] == ""
    dated = _ok(
        await client.post(
            f"{base}/addPassword", json={"passwordCredential": {"endDateTime": "2099-01-01T00:00:00Z"}}
        )
    )
    assert dated["endDateTime"] == "2099-01-01T00:00:00Z"
    past = await client.post(
        f"{base}/addPassword", json={"passwordCredential": {"endDateTime": "2001-01-01T00:00:00Z"}}
    )
    assert _error(past, 400, "Request_BadRequest")["message"] == "endDateTime must be in the future."


# --------------------------------------------------------------------------- key credentials


async def test_key_credential_lifecycle(client: httpx.AsyncClient) -> None:
    await _tenant(client)
    await _app(client, "caller")
    base = f"/v1.0/tenants/{TENANT_ID}/applications/caller/keyCredentials"
    cert = _certificate()
    der = cert.public_bytes(Encoding.DER)

    created = _ok(
        await client.post(
            base, json={"displayName": "deploy", "key": cert.public_bytes(Encoding.PEM).decode()}
        ),
        201,
    )

    assert created["customKeyIdentifier"] == hashlib.sha1(der).hexdigest().upper()
    assert (created["type"], created["usage"], created["displayName"]) == (
        "AsymmetricX509Cert",
        "Verify",
        "deploy",
    )
    assert created["startDateTime"].endswith("Z")
    assert created["endDateTime"].endswith("Z")
    assert _ok(await client.get(base)) == {"value": [created]}
    duplicate = await client.post(base, json={"key": base64.b64encode(der).decode()})
    _error(duplicate, 409, "Conflict")

    assert (await client.delete(f"{base}/{created['keyId']}")).status_code == 204
    assert _ok(await client.get(base)) == {"value": []}
    _error(await client.delete(f"{base}/{created['keyId']}"), 404, "Request_ResourceNotFound")
    as_base64_der = _ok(await client.post(base, json={"key": base64.b64encode(der).decode()}), 201)
    assert as_base64_der["customKeyIdentifier"] == created["customKeyIdentifier"]


async def test_a_key_that_is_not_a_certificate_is_400(client: httpx.AsyncClient) -> None:
    await _tenant(client)
    await _app(client, "caller")
    base = f"/v1.0/tenants/{TENANT_ID}/applications/caller/keyCredentials"

    _error(await client.post(base, json={"key": "not base64 !"}), 400, "Request_BadRequest")
    _error(
        await client.post(base, json={"key": base64.b64encode(b"junk").decode()}), 400, "Request_BadRequest"
    )
    _error(await client.post(base, json={"key": "x", "type": "Symmetric"}), 400, "Request_BadRequest")


# --------------------------------------------------------------------------- federated identity credentials


async def test_fic_lifecycle_in_graph_shape(client: httpx.AsyncClient) -> None:
    await _tenant(client)
    app = await _app(client, "caller")
    base = f"/v1.0/tenants/{TENANT_ID}/applications/caller/federatedIdentityCredentials"

    created = _ok(await client.post(base, json={"@odata.type": FIC_TYPE, **_fic()}), 201)

    expected = {
        "@odata.type": FIC_TYPE,
        "id": created["id"],
        "name": "cloud-run",
        "issuer": GOOGLE,
        "subject": "112233445566778899001",
        "description": None,
        "audiences": ["api://AzureADTokenExchange"],
    }
    assert created == {
        "@odata.context": f"http://keyless.test/v1.0/$metadata#applications('{app['id']}')"
        "/federatedIdentityCredentials/$entity",
        **expected,
    }
    assert _ok(await client.get(base)) == {"value": [expected]}
    assert _ok(await client.get(f"{base}/{created['id']}")) == expected
    assert _ok(await client.get(f"{base}/cloud-run")) == expected

    patched = await client.patch(f"{base}/cloud-run", json={"subject": "998877", "description": "moved"})
    assert patched.status_code == 204
    assert patched.content == b""
    now = _ok(await client.get(f"{base}/cloud-run"))
    assert (now["subject"], now["description"], now["issuer"]) == ("998877", "moved", GOOGLE)
    renamed = await client.patch(f"{base}/cloud-run", json={"name": "other"})
    assert "immutable" in _error(renamed, 400, "Request_BadRequest")["message"]
    assert (
        await client.patch(f"{base}/cloud-run", json={"name": "cloud-run", "description": None})
    ).status_code == 204

    assert (await client.delete(f"{base}/cloud-run")).status_code == 204
    _error(await client.get(f"{base}/cloud-run"), 404, "Request_ResourceNotFound")
    _error(await client.delete(f"{base}/cloud-run"), 404, "Request_ResourceNotFound")


async def test_a_fic_with_two_audiences_is_refused_with_graphs_message(client: httpx.AsyncClient) -> None:
    await _tenant(client)
    await _app(client, "caller")
    base = f"/v1.0/tenants/{TENANT_ID}/applications/caller/federatedIdentityCredentials"

    response = await client.post(base, json=_fic(audiences=["api://AzureADTokenExchange", "api://other"]))

    error = _error(response, 400, "Request_BadRequest")
    assert error["message"] == "Federated identity credentials must have exactly one audience."
    assert error["details"] == [{"message": "Federated identity credentials must have exactly one audience."}]
    _ok(await client.post(base, json=_fic()), 201)
    patched = await client.patch(f"{base}/cloud-run", json={"audiences": []})
    assert _error(patched, 400, "Request_BadRequest")["message"] == (
        "Federated identity credentials must have exactly one audience."
    )


async def test_fic_names_and_issuer_subject_pairs_are_unique_per_application(
    client: httpx.AsyncClient,
) -> None:
    await _tenant(client)
    await _app(client, "caller")
    base = f"/v1.0/tenants/{TENANT_ID}/applications/caller/federatedIdentityCredentials"
    _ok(await client.post(base, json=_fic()), 201)

    same_name = await client.post(base, json=_fic(subject="other"))
    same_pair = await client.post(base, json=_fic(name="another"))
    bad_name = await client.post(base, json=_fic(name="-x"))

    assert "already exists" in _error(same_name, 409, "Conflict")["message"]
    assert _error(same_pair, 409, "Conflict")["message"] == (
        "Issuer and subject combination already exists for this application."
    )
    assert "must be 3-120 characters" in _error(bad_name, 400, "Request_BadRequest")["message"]


async def test_the_fic_limit_per_application_is_twenty_or_the_tenants_setting(
    client: httpx.AsyncClient,
) -> None:
    await _tenant(client)
    await _app(client, "caller")
    base = f"/v1.0/tenants/{TENANT_ID}/applications/caller/federatedIdentityCredentials"
    for i in range(20):
        _ok(await client.post(base, json=_fic(name=f"fic-{i:02}", subject=str(i))), 201)

    over = await client.post(base, json=_fic(name="fic-20", subject="20"))

    assert (
        "already has 20 federated identity credentials" in _error(over, 400, "Request_BadRequest")["message"]
    )
    patched = await client.patch(
        f"/v1.0/tenants/{TENANT_ID}", json={"maxFederatedIdentityCredentialsPerApp": 21}
    )
    assert patched.status_code == 204
    _ok(await client.post(base, json=_fic(name="fic-20", subject="20")), 201)
    _error(await client.post(base, json=_fic(name="fic-21", subject="21")), 400, "Request_BadRequest")


# --------------------------------------------------------------------------- app role assignments


async def test_role_assignment_lifecycle_in_graph_and_friendly_forms(client: httpx.AsyncClient) -> None:
    await _tenant(client)
    resource = await _app(
        client, "blob-api", appRoles=[{"id": ROLE_ID, "value": "Blob.Read"}, {"value": "Blob.Write"}]
    )
    caller = await _app(client, "caller")
    base = f"/v1.0/tenants/{TENANT_ID}/appRoleAssignments"

    graph = _ok(
        await client.post(
            base,
            json={
                "principalId": caller["servicePrincipalId"],
                "resourceId": resource["servicePrincipalId"],
                "appRoleId": ROLE_ID,
            },
        ),
        201,
    )
    friendly = _ok(
        await client.post(
            base, json={"client": "caller", "resource": resource["appId"], "appRole": "Blob.Write"}
        ),
        201,
    )

    assert {k: v for k, v in graph.items() if k not in ("id", "createdDateTime")} == {
        "principalId": caller["servicePrincipalId"],
        "resourceId": resource["servicePrincipalId"],
        "appRoleId": ROLE_ID,
        "principalDisplayName": "caller",
        "resourceDisplayName": "blob-api",
        "appRoleValue": "Blob.Read",
    }
    assert friendly["appRoleValue"] == "Blob.Write"
    assert _ok(await client.get(base)) == {"value": [graph, friendly]}
    twice = await client.post(base, json={"client": "caller", "resource": "blob-api", "appRole": ROLE_ID})
    _error(twice, 409, "Conflict")

    assert (await client.delete(f"{base}/{graph['id']}")).status_code == 204
    assert _ok(await client.get(base)) == {"value": [friendly]}
    _error(await client.delete(f"{base}/{graph['id']}"), 404, "Request_ResourceNotFound")


async def test_role_assignment_mistakes_are_400(client: httpx.AsyncClient) -> None:
    await _tenant(client)
    await _app(client, "blob-api", appId=APP_ID, appRoles=[{"value": "Blob.Read"}])
    await _app(client, "caller")
    base = f"/v1.0/tenants/{TENANT_ID}/appRoleAssignments"

    unknown_role = await client.post(
        base, json={"client": "caller", "resource": "blob-api", "appRole": "Nope"}
    )
    assert _error(unknown_role, 400, "Request_BadRequest")["message"] == (
        f"Permission being assigned was not found on application '{APP_ID}'."
    )
    missing = await client.post(base, json={"client": "ghost", "resource": "phantom", "appRole": "x"})
    assert [d["message"] for d in _error(missing, 400, "Request_BadRequest")["details"]] == [
        "Client 'ghost' is not an application of this tenant.",
        "Resource 'phantom' is not an application of this tenant.",
    ]
    mixed = await client.post(base, json={"client": "caller", "appRoleId": ROLE_ID})
    _error(mixed, 400, "Request_BadRequest")


# --------------------------------------------------------------------------- signing keys


async def test_signing_keys_are_listed_without_private_material_and_rotation_adds_one(
    client: httpx.AsyncClient,
) -> None:
    await _tenant(client)
    base = f"/v1.0/tenants/{TENANT_ID}/signingKeys"

    (first,) = _ok(await client.get(base))["value"]
    assert set(first) == {"kid", "alg", "state", "createdDateTime", "activatesDateTime", "retiredDateTime"}
    assert (first["alg"], first["state"], first["retiredDateTime"]) == ("RS256", "active", None)

    rotated = _ok(await client.post(f"{base}/rotate", json={"publishDelaySeconds": 3600}), 201)
    assert rotated["state"] == "pending"
    assert [k["kid"] for k in _ok(await client.get(base))["value"]] == [first["kid"], rotated["kid"]]
    now = _ok(await client.post(f"{base}/rotate"), 201)
    assert now["kid"] not in (first["kid"], rotated["kid"])
    _error(await client.post(f"{base}/rotate", json={"publishDelaySeconds": -1}), 400, "Request_BadRequest")


# --------------------------------------------------------------------------- trust documents


def _document() -> dict[str, Any]:
    return {
        "tenants": [
            {
                "id": TENANT_ID,
                "displayName": "Contoso",
                "applications": [
                    {
                        "displayName": "blob-api",
                        "appId": APP_ID,
                        "appRoles": [{"id": ROLE_ID, "value": "Blob.Read"}],
                    },
                    {
                        "displayName": "caller",
                        "appId": "22222222-2222-2222-2222-222222222222",
                        "federatedIdentityCredentials": [_fic()],
                        "appRoleAssignments": [{"resource": "blob-api", "appRole": "Blob.Read"}],
                    },
                ],
            }
        ]
    }


async def test_trust_documents_are_planned_applied_and_exported_over_the_api(
    client: httpx.AsyncClient,
) -> None:
    planned = _ok(await client.post("/v1.0/trust/plan", json=_document()))
    assert [(c["action"], c["kind"], c["name"]) for c in planned["value"]] == [
        ("create", "tenant", "Contoso"),
        ("create", "application", "Contoso/blob-api"),
        ("create", "application", "Contoso/caller"),
        ("create", "fic", "Contoso/caller/cloud-run"),
        ("create", "roleAssignment", "Contoso/caller -> blob-api/Blob.Read"),
    ]
    assert _ok(await client.get("/v1.0/tenants")) == {"value": []}

    assert _ok(await client.post("/v1.0/trust/apply", json=_document())) == planned
    assert _ok(await client.post("/v1.0/trust/apply?prune=true", json=_document())) == {"value": []}
    exported = _ok(await client.get("/v1.0/trust/export", params={"tenant": TENANT_ID}))
    assert _ok(await client.post("/v1.0/trust/plan?prune=true", json=exported)) == {"value": []}


async def test_trust_documents_over_the_api_are_validated_and_may_not_read_server_files(
    client: httpx.AsyncClient,
) -> None:
    document = _document()
    caller = document["tenants"][0]["applications"][1]
    caller["passwordCredentials"] = [{"displayName": "ci", "valueFrom": {"env": "KEYLESS_KEK"}}]
    caller["federatedIdentityCredentials"][0]["subjekt"] = "x"

    error = _error(await client.post("/v1.0/trust/apply", json=document), 400, "Request_BadRequest")

    assert [d["message"] for d in error["details"]] == [
        "<api>: tenants[0].applications[1].federatedIdentityCredentials[0].subjekt: "
        "federatedIdentityCredential 'cloud-run': unknown key 'subjekt' (did you mean 'subject'?)",
        "<api>: tenants[0].applications[1].passwordCredentials[0].valueFrom.env: passwordCredential 'ci' "
        "valueFrom: env references are not accepted here (they would read the server's)",
    ]
    assert _ok(await client.get("/v1.0/tenants")) == {"value": []}


BAD_INPUTS = [
    ("POST", "/applications", {"displayName": "x", "requestedAccessTokenVersion": True}),
    ("POST", "/applications", {"displayName": "x", "appRoles": [[]]}),
    ("POST", "/applications", {"displayName": "x", "appRoles": [{"value": "with space"}]}),
    (
        "POST",
        "/applications/a/federatedIdentityCredentials",
        {"name": "abc", "issuer": "https://i", "subject": 1},
    ),
    (
        "POST",
        "/applications/a/federatedIdentityCredentials",
        {"name": "abc", "issuer": "x" * 700, "subject": ""},
    ),
    ("PATCH", "/applications/a", {"appRoles": None}),
    ("PATCH", "/applications/a", {"api": {"requestedAccessTokenVersion": 7}}),
    ("POST", "/applications/a/addPassword", {"passwordCredential": {"endDateTime": "soon"}}),
    ("POST", "/applications/a/removePassword", {"keyId": "not-a-guid"}),
    ("POST", "/appRoleAssignments", {"principalId": TENANT_ID}),
    ("POST", "/signingKeys/rotate", {"publishDelaySeconds": 10**20}),
    ("PATCH", "", {"maxFederatedIdentityCredentialsPerApp": 0}),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_INPUTS)
async def test_bad_input_is_a_graph_shaped_400_never_a_500(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    await _tenant(client)
    await _app(client, "a")

    response = await client.request(method, f"/v1.0/tenants/{TENANT_ID}{path}", json=body)

    assert _error(response, 400, "Request_BadRequest")["details"]


async def test_bad_trust_documents_are_400_never_500(client: httpx.AsyncClient) -> None:
    for document in (
        {"tenants": "x"},
        {"tenants": [{"id": TENANT_ID, "displayName": "C", "applications": [{"appRoles": [[]]}, 5, None]}]},
        {"tenants": [None]},
    ):
        _error(await client.post("/v1.0/trust/plan", json=document), 400, "Request_BadRequest")
