"""The admin API's OpenAPI document types every JSON answer, and the types are true: each answer
of a whole lifecycle validates against the model its route documents, unknown properties refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from keyless.authority._service import Authority
from keyless.authority.http.admin import create_admin_api
from keyless.authority.http.admin.schemas import RESPONSES
from keyless.config import load_authority_settings
from keyless.jose._x509 import self_signed_certificate

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    authority = Authority.open(load_authority_settings(data_dir=tmp_path / "data", port=0))
    key = (authority.settings.data_dir / "admin.key").read_text().strip()
    transport = httpx.ASGITransport(app=create_admin_api(authority))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://keyless.test", headers={"Authorization": f"Bearer {key}"}
    ) as c:
        yield c
    await authority.aclose()


def check(route: str, response: httpx.Response) -> Any:
    """The answer validates against what ``route`` documents for its status."""
    documented = RESPONSES[route]
    assert response.status_code in documented, (route, response.status_code, response.text)
    model = documented[response.status_code]["model"]
    body = response.json()
    model.model_validate(body)
    return body


async def test_every_documented_answer_matches_its_model(client: httpx.AsyncClient) -> None:
    base = f"/v1.0/tenants/{TENANT}"
    check("create_tenant", await client.post("/v1.0/tenants", json={"id": TENANT, "displayName": "Contoso"}))
    check("list_tenants", await client.get("/v1.0/tenants"))
    check("get_tenant", await client.get(base))
    api = check(
        "create_application",
        await client.post(
            f"{base}/applications", json={"displayName": "api", "appRoles": [{"value": "Data.Read"}]}
        ),
    )
    check("create_application", await client.post(f"{base}/applications", json={"displayName": "caller"}))
    check("list_applications", await client.get(f"{base}/applications"))
    check("get_application", await client.get(f"{base}/applications/caller"))
    app = f"{base}/applications/caller"
    check("add_password", await client.post(f"{app}/addPassword", json={}))
    check("list_passwords", await client.get(f"{app}/passwordCredentials"))
    der = self_signed_certificate(ec.generate_private_key(ec.SECP256R1()), "deploy")
    pem = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode()
    check("add_key_credential", await client.post(f"{app}/keyCredentials", json={"key": pem}))
    check("list_key_credentials", await client.get(f"{app}/keyCredentials"))
    exact = {"name": "google", "issuer": "https://accounts.google.com", "subject": "1122"}
    check("create_fic", await client.post(f"{app}/federatedIdentityCredentials", json=exact))
    flexible = {
        "name": "github",
        "issuer": "https://token.actions.githubusercontent.com",
        "claimsMatchingExpression": {"value": "claims['sub'] matches 'repo:contoso/*'", "languageVersion": 1},
        "condition": "claims.ref == 'refs/heads/main'",
    }
    check(
        "create_fic",
        await client.post(
            f"/beta/tenants/{TENANT}/applications/caller/federatedIdentityCredentials", json=flexible
        ),
    )
    check("get_fic", await client.get(f"{app}/federatedIdentityCredentials/github"))
    check("list_fics", await client.get(f"{app}/federatedIdentityCredentials"))
    assignment = {"client": "caller", "resource": "api", "appRole": "Data.Read"}
    check("create_assignment", await client.post(f"{base}/appRoleAssignments", json=assignment))
    check("list_assignments", await client.get(f"{base}/appRoleAssignments"))
    check("list_signing_keys", await client.get(f"{base}/signingKeys"))
    check(
        "rotate_signing_key", await client.post(f"{base}/signingKeys/rotate", json={"publishDelaySeconds": 0})
    )
    exported = (await client.get("/v1.0/trust/export")).json()
    check("plan_trust", await client.post("/v1.0/trust/plan", json=exported))
    check("apply_trust", await client.post("/v1.0/trust/apply", json=exported))
    check("explain", await client.post(f"{app}/explain", json={"assertion": "a.b.c"}))
    check("refusals", await client.get(f"{base}/refusals"))
    assert api["appRoles"][0]["value"] == "Data.Read"


async def test_the_openapi_document_names_the_models(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    for name in (
        "TenantOut",
        "ApplicationOut",
        "FederatedIdentityCredentialOut",
        "ExplanationOut",
        "RefusalList",
    ):
        assert name in schemas
    created = document["paths"]["/v1.0/tenants/{tenant}/applications/{app}/federatedIdentityCredentials"][
        "post"
    ]
    assert created["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/FederatedIdentityCredentialOut"
    }
    assert "/beta/tenants/{tenant}/applications/{app}/federatedIdentityCredentials" in document["paths"]
