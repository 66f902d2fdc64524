"""Flexible credentials and conditions over the admin API: Graph beta's paths and JSON, errors
with the column at write time, the broad-match rule, and an application with 1,000 credentials."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keyless.authority._service import Authority
from keyless.authority.http.admin import create_admin_api
from keyless.config import load_authority_settings

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
GITHUB = "https://token.actions.githubusercontent.com"
EXPRESSION = "claims['sub'] matches 'repo:contoso/*:ref:refs/heads/release/*'"


@pytest.fixture
async def authority(tmp_path: Path) -> AsyncIterator[Authority]:
    opened = Authority.open(load_authority_settings(data_dir=tmp_path / "data", port=0))
    yield opened
    await opened.aclose()


@pytest.fixture
async def client(authority: Authority) -> AsyncIterator[httpx.AsyncClient]:
    key = (authority.settings.data_dir / "admin.key").read_text().strip()
    transport = httpx.ASGITransport(app=create_admin_api(authority))
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://keyless.test", headers=headers) as c:
        body = {"id": TENANT_ID, "displayName": "Contoso", "domains": ["contoso.example"]}
        assert (await c.post("/v1.0/tenants", json=body)).status_code == 201
        app = {"displayName": "deployer"}
        assert (await c.post(f"/v1.0/tenants/{TENANT_ID}/applications", json=app)).status_code == 201
        yield c


def _fics(version: str = "beta") -> str:
    return f"/{version}/tenants/{TENANT_ID}/applications/deployer/federatedIdentityCredentials"


def _flexible(name: str = "gh-releases", expression: str = EXPRESSION, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "issuer": GITHUB,
        "claimsMatchingExpression": {"value": expression, "languageVersion": 1},
        "audiences": ["api://AzureADTokenExchange"],
        **extra,
    }


def _bad_request(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    message: str = response.json()["error"]["message"]
    return message


async def test_a_flexible_credential_round_trips_in_graph_betas_shape(client: httpx.AsyncClient) -> None:
    created = await client.post(_fics(), json=_flexible())
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["@odata.context"].startswith("http://keyless.test/beta/$metadata#")
    assert body["subject"] is None
    assert body["claimsMatchingExpression"] == {"value": EXPRESSION, "languageVersion": 1}
    fetched = (await client.get(f"{_fics()}/gh-releases")).json()
    assert fetched["claimsMatchingExpression"] == body["claimsMatchingExpression"]
    listed = (await client.get(_fics("v1.0"))).json()["value"]  # the same credentials under v1.0
    assert [f["name"] for f in listed] == ["gh-releases"]


async def test_an_expression_that_does_not_parse_is_a_400_naming_the_column(
    client: httpx.AsyncClient,
) -> None:
    message = _bad_request(await client.post(_fics(), json=_flexible(expression="claims['sub'] like 'x*'")))
    assert "claimsMatchingExpression" in message and "(column 15)" in message


async def test_subject_and_expression_together_are_refused_with_graphs_rule(
    client: httpx.AsyncClient,
) -> None:
    both = _flexible(subject="repo:contoso/app:ref:refs/heads/main")
    message = _bad_request(await client.post(_fics(), json=both))
    assert "Either subject or claimsMatchingExpression must be defined, but not both." in message


async def test_a_broad_pattern_is_refused_unless_allowed(client: httpx.AsyncClient) -> None:
    broad = _flexible(name="everyone", expression="claims['sub'] matches 'repo:*'")
    assert "allowBroadMatch" in _bad_request(await client.post(_fics(), json=broad))
    allowed = await client.post(_fics(), json={**broad, "allowBroadMatch": True})
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["allowBroadMatch"] is True


async def test_a_condition_compiles_at_write_time_and_an_error_names_its_position(
    client: httpx.AsyncClient,
) -> None:
    good = _flexible(condition="claims.repository_owner == 'contoso' && claims.ref.startsWith('refs/heads/')")
    assert (await client.post(_fics(), json=good)).status_code == 201
    bad = _flexible(name="bad-condition", condition="claims.ref.startsWith('refs/heads/'")
    message = _bad_request(await client.post(_fics(), json=bad))
    assert message.startswith("condition:")
    assert "(column 36)" in message  # the end, where the ) is missing


async def test_patch_swaps_a_subject_for_an_expression(client: httpx.AsyncClient) -> None:
    exact = {"name": "gh-main", "issuer": GITHUB, "subject": "repo:contoso/app:ref:refs/heads/main"}
    assert (await client.post(_fics("v1.0"), json=exact)).status_code == 201
    patch = {
        "claimsMatchingExpression": {
            "value": "claims['sub'] matches 'repo:contoso/app:*'",
            "languageVersion": 1,
        }
    }
    assert (await client.patch(f"{_fics()}/gh-main", json=patch)).status_code == 204
    fetched = (await client.get(f"{_fics()}/gh-main")).json()
    assert fetched["subject"] is None and fetched["claimsMatchingExpression"]["value"].endswith("app:*'")


async def test_an_application_holds_1000_credentials_created_over_the_api(
    client: httpx.AsyncClient, authority: Authority
) -> None:
    patched = await client.patch(
        f"/v1.0/tenants/{TENANT_ID}", json={"maxFederatedIdentityCredentialsPerApp": 1000}
    )
    assert patched.status_code == 204
    started = time.perf_counter()
    for i in range(1000):
        body = (
            _flexible(name=f"flex-{i}", expression=f"claims['sub'] matches 'repo:owner{i}/*'")
            if i % 2
            else {"name": f"exact-{i}", "issuer": GITHUB, "subject": f"repo:owner{i}/app:ref:refs/heads/main"}
        )
        response = await client.post(_fics(), json=body)
        assert response.status_code == 201, response.text
    elapsed = time.perf_counter() - started
    over = await client.post(_fics(), json=_flexible(name="one-too-many"))
    assert "already has 1000 federated identity credentials" in _bad_request(over)
    view = authority.directory().tenant(TENANT_ID)
    assert view is not None
    app = next(v for v in view.apps_by_app_id.values() if v.app.display_name == "deployer")
    assert len(app.fic_index) == 1000
    assert elapsed < 120  # about 10 ms each on SQLite: writes stay linear, not quadratic
