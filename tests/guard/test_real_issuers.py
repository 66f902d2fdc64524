"""Tokens from keyless's own services, through the library, the middleware and the proxy:
access tokens (v1 and v2) from a running keyless authority over HTTPS with its local CA, and ID
tokens from the Google metadata emulator (its own issuer, and the ``google`` issuer mode)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests._support.authority_server import Federation, RunningAuthority, run_authority, seed_federation
from tests.guard.conftest import serve

from keyless.guard import GuardConfig, GuardMiddleware, GuardProxy, Verifier, config_from_mapping
from keyless.metadata import MetadataConfig, MetadataServer

POLICY = {"rules": [{"path": "/blobs/**", "any_of": ["Blob.Read"]}]}


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAuthority]:
    data_dir = tmp_path_factory.mktemp("authority")
    with run_authority(data_dir, dev_mode=True, allow_http_loopback_issuers=True) as running:
        yield running


def _federation(authority: RunningAuthority, version: int) -> Federation:
    return seed_federation(
        authority.admin,
        issuer="https://token.actions.githubusercontent.com",
        token_version=version,
        domain=f"v{version}.contoso.example",
    )


@pytest.fixture(scope="module")
def v2(authority: RunningAuthority) -> Federation:
    return _federation(authority, 2)


@pytest.fixture(scope="module")
def v1(authority: RunningAuthority) -> Federation:
    return _federation(authority, 1)


def access_token(authority: RunningAuthority, federation: Federation, endpoint: int = 2) -> str:
    secret = authority.admin.add_secret(federation.client).value
    form = {
        "grant_type": "client_credentials",
        "client_id": federation.client.app_id,
        "client_secret": secret,
    }
    form.update({"scope": federation.scope} if endpoint == 2 else {"resource": "api://blob-api"})
    trust = ssl.create_default_context(cafile=str(authority.ca_file))
    with httpx.Client(verify=trust, timeout=15) as client:
        response = client.post(authority.token_url(federation.tenant_id, endpoint), data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def authority_config(authority: RunningAuthority, *federations: Federation, **extra: Any) -> GuardConfig:
    data: dict[str, Any] = {
        "issuers": [
            {"kind": "keyless", "url": authority.base_url, "tenants": [f.tenant_id for f in federations]}
        ],
        "audiences": ["api://blob-api", *(f.resource.app_id for f in federations)],
        "ca_bundle": str(authority.ca_file),
        "required_claims": {"idtyp": "app"},
        "policy": POLICY,
    }
    data.update(extra)
    return config_from_mapping(data)


async def test_keyless_v2_access_token_verifies(authority: RunningAuthority, v2: Federation) -> None:
    token = access_token(authority, v2)
    async with Verifier(authority_config(authority, v2)) as verifier:
        identity = await verifier.verify(token)
    assert identity.issuer == f"{authority.base_url}/{v2.tenant_id}/v2.0"
    assert identity.claims["ver"] == "2.0"
    assert identity.tenant_id == v2.tenant_id
    assert identity.app_id == v2.client.app_id
    assert identity.object_id == identity.subject == v2.client.service_principal_id
    assert identity.roles == ("Blob.Read",)


async def test_keyless_v1_access_token_verifies(authority: RunningAuthority, v1: Federation) -> None:
    token = access_token(authority, v1, endpoint=1)
    async with Verifier(authority_config(authority, v1)) as verifier:
        identity = await verifier.verify(token)
    assert identity.issuer == f"{authority.base_url}/{v1.tenant_id}/"
    assert identity.claims["ver"] == "1.0"
    assert identity.app_id == v1.client.app_id  # from appid
    assert identity.roles == ("Blob.Read",)


async def test_keyless_token_of_an_untrusted_tenant_is_refused(
    authority: RunningAuthority, v1: Federation, v2: Federation
) -> None:
    async with Verifier(authority_config(authority, v1)) as verifier:
        with pytest.raises(Exception, match="not trusted") as refused:
            await verifier.verify(access_token(authority, v2))
    assert getattr(refused.value, "claim", None) == "tid"


async def test_keyless_tokens_through_the_middleware(authority: RunningAuthority, v2: Federation) -> None:
    async def blob(request: Request) -> JSONResponse:
        return JSONResponse({"caller": request.state.identity.app_id})

    app = Starlette(routes=[Route("/blobs/{name}", blob)])
    async with Verifier(authority_config(authority, v2)) as verifier:
        app.add_middleware(GuardMiddleware, verifier=verifier)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            token = access_token(authority, v2)
            response = await client.get("/blobs/a", headers={"Authorization": f"Bearer {token}"})
    assert response.json() == {"caller": v2.client.app_id}


def _echo_upstream() -> Starlette:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({k: v for k, v in request.headers.items() if k.startswith("x-keyless-")})

    return Starlette(routes=[Route("/{path:path}", echo)])


def test_keyless_tokens_through_the_proxy(
    authority: RunningAuthority, v1: Federation, v2: Federation
) -> None:
    config = authority_config(authority, v1, v2)
    with serve(_echo_upstream()) as upstream, serve(GuardProxy(upstream, config=config)) as guard:
        for federation, endpoint in ((v1, 1), (v2, 2)):
            token = access_token(authority, federation, endpoint)
            seen = httpx.get(guard + "/blobs/a", headers={"Authorization": f"Bearer {token}"}).json()
            assert seen["x-keyless-tenant-id"] == federation.tenant_id
            assert seen["x-keyless-app-id"] == federation.client.app_id
            assert seen["x-keyless-roles"] == "Blob.Read"


# -- the metadata emulator -------------------------------------------------------------------------


def identity_token(server: MetadataServer, audience: str) -> str:
    response = httpx.get(
        f"{server.url}/computeMetadata/v1/instance/service-accounts/default/identity",
        params={"audience": audience, "format": "full"},
        headers={"Metadata-Flavor": "Google"},
    )
    assert response.status_code == 200, response.text
    return response.text


SERVICE_URL = "https://blob-api-abc123-uc.a.run.app"


@pytest.fixture(scope="module")
def emulator() -> Iterator[MetadataServer]:
    with MetadataServer() as server:
        yield server


async def test_metadata_emulator_id_token_verifies(emulator: MetadataServer) -> None:
    config = config_from_mapping(
        {
            "issuers": [{"kind": "oidc", "issuer": emulator.issuer.issuer}],
            "audiences": [SERVICE_URL],
            "allow_http_loopback_issuers": True,
        }
    )
    async with Verifier(config) as verifier:
        identity = await verifier.verify(identity_token(emulator, SERVICE_URL))
    account = emulator.config.default_account
    assert identity.email == account.email
    assert identity.subject == account.unique_id
    assert identity.claims["google"]["compute_engine"]["project_id"] == emulator.config.project_id


def test_metadata_emulator_in_google_mode_in_front_of_a_cloud_run_style_service(tmp_path: Path) -> None:
    with MetadataServer(MetadataConfig(issuer="google")) as google:
        config = config_from_mapping(
            {
                "issuers": [{"kind": "google", "discovery_url": google.discovery_url}],
                "audiences": [SERVICE_URL],
                "allow_http_loopback_issuers": True,
                "policy": {"rules": [{"path": "/**", "principals": [google.config.default_account.email]}]},
            }
        )
        with serve(_echo_upstream()) as upstream, serve(GuardProxy(upstream, config=config)) as guard:
            token = identity_token(google, SERVICE_URL)
            response = httpx.get(guard + "/invoke", headers={"X-Serverless-Authorization": f"Bearer {token}"})
            wrong_audience = identity_token(google, "https://other-service.a.run.app")
            refused = httpx.get(guard + "/invoke", headers={"Authorization": f"Bearer {wrong_audience}"})
    assert response.status_code == 200
    assert response.json()["x-keyless-issuer"] == "https://accounts.google.com"
    assert response.json()["x-keyless-email"] == google.config.default_account.email
    assert refused.status_code == 401
