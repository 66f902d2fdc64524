"""GuardMiddleware in Starlette and FastAPI apps (through httpx.ASGITransport), and the FastAPI
dependencies: the identity on the request, RFC 6750 refusals, Cloud Run's header precedence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests._support.oidc_issuer import TestIssuer
from tests.guard.conftest import AUDIENCE, guard_config

from keyless.guard import (
    GuardMiddleware,
    Identity,
    Verifier,
    current_identity,
    optional_identity,
    require_roles,
    require_scopes,
)

POLICY = {
    "anonymous": ["/healthz"],
    "rules": [
        {"path": "/blobs/**", "methods": ["GET"], "any_of": ["Blob.Read"]},
        {"path": "/**", "allow": "authenticated"},
    ],
}


async def whoami(request: Request) -> JSONResponse:
    identity = request.state.identity
    if identity is None:
        return JSONResponse({"anonymous": True})
    return JSONResponse({"sub": identity.subject, "roles": list(identity.roles)})


def starlette_app(verifier: Verifier) -> Starlette:
    routes = [Route("/whoami", whoami), Route("/healthz", whoami), Route("/blobs/{name}", whoami)]
    app = Starlette(routes=routes)
    app.add_middleware(GuardMiddleware, verifier=verifier)
    return app


@pytest.fixture
async def starlette_client(issuer: TestIssuer) -> AsyncIterator[httpx.AsyncClient]:
    async with Verifier(guard_config(issuer, policy=POLICY)) as verifier:
        transport = httpx.ASGITransport(app=starlette_app(verifier))
        async with httpx.AsyncClient(transport=transport, base_url="http://guarded") as client:
            yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_verified_identity_is_on_request_state(
    starlette_client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    token = issuer.mint(aud=AUDIENCE, sub="caller", roles=["Blob.Read"])
    response = await starlette_client.get("/whoami", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"sub": "caller", "roles": ["Blob.Read"]}


async def test_anonymous_path_passes_without_a_token(starlette_client: httpx.AsyncClient) -> None:
    response = await starlette_client.get("/healthz")
    assert response.json() == {"anonymous": True}


async def test_missing_token_is_401_with_a_bare_bearer_challenge(starlette_client: httpx.AsyncClient) -> None:
    response = await starlette_client.get("/whoami")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="keyless"'
    assert response.json()["code"] == "no_token"
    basic = await starlette_client.get("/whoami", headers={"Authorization": "Basic dTpw"})
    assert basic.status_code == 401


async def test_bad_token_is_401_invalid_token_with_the_reason(
    starlette_client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    response = await starlette_client.get("/whoami", headers=bearer(issuer.mint(aud="api://else")))
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="keyless", error="invalid_token", error_description="')
    assert "audience 'api://else' is not one of" in challenge
    assert '"' not in challenge.split('error_description="')[1][:-1]  # quotes in the reason are replaced
    body = response.json()
    assert (body["error"], body["code"]) == ("invalid_token", "claim_invalid")
    assert response.headers["cache-control"] == "no-store"


async def test_allowed_caller_without_the_role_is_403_insufficient_scope(
    starlette_client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    response = await starlette_client.get("/blobs/a", headers=bearer(issuer.mint(aud=AUDIENCE, roles=["X"])))
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="Blob.Read"' in challenge
    assert response.json()["code"] == "forbidden"


async def test_x_serverless_authorization_takes_precedence(
    starlette_client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    good = issuer.mint(aud=AUDIENCE, sub="via-serverless")
    headers = {"X-Serverless-Authorization": f"Bearer {good}", "Authorization": "Bearer app-level-token"}
    response = await starlette_client.get("/whoami", headers=headers)
    assert response.json()["sub"] == "via-serverless"
    bad = {"X-Serverless-Authorization": "Bearer garbage", "Authorization": f"Bearer {good}"}
    assert (await starlette_client.get("/whoami", headers=bad)).status_code == 401


async def test_two_authorization_headers_are_an_invalid_request(
    starlette_client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    token = issuer.mint(aud=AUDIENCE)
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    response = await starlette_client.get("/whoami", headers=headers)
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


async def test_unsafe_paths_are_refused_before_the_policy(starlette_client: httpx.AsyncClient) -> None:
    dots = await starlette_client.get("/healthz/%2e%2e/blobs/a")  # the anonymous path, walked out of
    assert dots.status_code == 400
    assert "'..' segment" in dots.json()["error_description"]
    slash = await starlette_client.get("/blobs/a%2Fb")
    assert slash.status_code == 400


async def test_unavailable_issuer_is_503_with_retry_after() -> None:
    with TestIssuer() as issuer:
        token = issuer.mint(aud=AUDIENCE)
        issuer.down()
        async with Verifier(guard_config(issuer, keys={"timeout": 1})) as verifier:
            transport = httpx.ASGITransport(app=starlette_app(verifier))
            async with httpx.AsyncClient(transport=transport, base_url="http://guarded") as client:
                response = await client.get("/whoami", headers=bearer(token))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert response.json()["code"] == "issuer_unavailable"
    # The issuer's internal URLs and statuses stay in the guard's log, off the wire.
    assert issuer.url.split("://", 1)[1] not in response.text


async def test_middleware_made_from_a_config_closes_its_verifier_on_shutdown(issuer: TestIssuer) -> None:
    received: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        received.append(message["type"])

    middleware = GuardMiddleware(app, config=guard_config(issuer))
    messages = iter([{"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: Any) -> None:
        pass

    await middleware({"type": "lifespan"}, receive, send)
    assert received == ["lifespan.shutdown"]
    assert middleware.verifier._client is not None and middleware.verifier._client.is_closed


# -- FastAPI ---------------------------------------------------------------------------------------


def fastapi_app(verifier: Verifier) -> FastAPI:
    app = FastAPI()
    app.add_middleware(GuardMiddleware, verifier=verifier)

    @app.get("/read")
    async def read(
        caller: Annotated[Identity, Depends(require_roles("Blob.Read", "Blob.Write"))],
    ) -> dict[str, str]:
        return {"sub": caller.subject}

    @app.get("/write")
    async def write(
        caller: Annotated[Identity, Depends(require_roles("Blob.Read", "Blob.Write", all_of=True))],
    ) -> dict[str, str]:
        return {"sub": caller.subject}

    @app.get("/scoped")
    async def scoped(
        caller: Annotated[Identity, Depends(require_scopes("user_impersonation"))],
    ) -> dict[str, str]:
        return {"sub": caller.subject}

    @app.get("/me")
    async def me(caller: Identity = Depends(current_identity)) -> dict[str, Any]:
        return {"sub": caller.subject, "tid": caller.tenant_id}

    @app.get("/healthz")
    async def health(caller: Identity | None = Depends(optional_identity)) -> dict[str, bool]:
        return {"anonymous": caller is None}

    return app


@pytest.fixture
async def fastapi_client(issuer: TestIssuer) -> AsyncIterator[httpx.AsyncClient]:
    async with Verifier(
        guard_config(issuer, policy={"anonymous": ["/healthz"], "default": "authenticated"})
    ) as v:
        transport = httpx.ASGITransport(app=fastapi_app(v))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


async def test_require_roles_any_of(fastapi_client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    reader = bearer(issuer.mint(aud=AUDIENCE, sub="r", roles=["Blob.Read"]))
    assert (await fastapi_client.get("/read", headers=reader)).json() == {"sub": "r"}
    nobody = bearer(issuer.mint(aud=AUDIENCE, roles=["Other"]))
    refused = await fastapi_client.get("/read", headers=nobody)
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert "one of the roles Blob.Read, Blob.Write" in refused.json()["detail"]


async def test_require_roles_all_of(fastapi_client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    reader = bearer(issuer.mint(aud=AUDIENCE, roles=["Blob.Read"]))
    assert (await fastapi_client.get("/write", headers=reader)).status_code == 403
    both = bearer(issuer.mint(aud=AUDIENCE, roles=["Blob.Read", "Blob.Write"]))
    assert (await fastapi_client.get("/write", headers=both)).status_code == 200


async def test_require_scopes_reads_scp(fastapi_client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    delegated = bearer(issuer.mint(aud=AUDIENCE, scp="User.Read user_impersonation"))
    assert (await fastapi_client.get("/scoped", headers=delegated)).status_code == 200
    app_only = bearer(issuer.mint(aud=AUDIENCE, roles=["user_impersonation"]))
    assert (await fastapi_client.get("/scoped", headers=app_only)).status_code == 403


async def test_dependencies_on_an_anonymous_path(fastapi_client: httpx.AsyncClient) -> None:
    assert (await fastapi_client.get("/healthz")).json() == {"anonymous": True}


async def test_current_identity_without_middleware_is_401() -> None:
    app = FastAPI()

    @app.get("/me")
    async def me(caller: Identity = Depends(current_identity)) -> str:
        return caller.subject

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:
        response = await client.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="keyless"'
