"""KeylessAuth (httpx.Auth): a bearer token per request from the credential's cache, one retry
with the claims of a CAE challenge, no tokens over plain http unless allowed."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from keyless.credential import AccessToken, KeylessAuth
from keyless.errors import ConfigurationError

CHALLENGE_CLAIMS = '{"access_token":{"nbf":{"essential":true,"value":"1726000000"}}}'


class Recording:
    """A credential that records what it was asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], str | None]] = []

    def get_token(self, *scopes: str, claims: str | None = None, **kwargs: Any) -> AccessToken:
        self.calls.append((scopes, claims))
        return AccessToken(f"token-{len(self.calls)}", 2_000_000_000)


class AsyncRecording(Recording):
    async def get_token(self, *scopes: str, claims: str | None = None, **kwargs: Any) -> AccessToken:  # type: ignore[override]
        return Recording.get_token(self, *scopes, claims=claims)


def challenging(request: httpx.Request) -> httpx.Response:
    if request.headers["authorization"] == "Bearer token-1":
        encoded = base64.b64encode(CHALLENGE_CLAIMS.encode()).decode()
        challenge = f'Bearer realm="", error="insufficient_claims", claims="{encoded}"'
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})
    return httpx.Response(200, json={"authorization": request.headers["authorization"]})


def test_a_claims_challenge_is_answered_once_with_a_token_for_those_claims() -> None:
    credential = Recording()
    auth = KeylessAuth(credential, "api://blob-api/.default")
    with httpx.Client(auth=auth, transport=httpx.MockTransport(challenging)) as client:
        response = client.post("https://blob-api.example/blobs", content=b"payload")
    assert response.json() == {"authorization": "Bearer token-2"}
    assert credential.calls == [
        (("api://blob-api/.default",), None),
        (("api://blob-api/.default",), CHALLENGE_CLAIMS),
    ]


async def test_the_async_flow_awaits_async_credentials() -> None:
    credential = AsyncRecording()
    auth = KeylessAuth(credential, ["api://blob-api/.default"])
    async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(challenging)) as client:
        response = await client.get("https://blob-api.example/blobs")
    assert response.json() == {"authorization": "Bearer token-2"}
    assert len(credential.calls) == 2


def test_a_401_without_a_claims_challenge_is_returned_as_is() -> None:
    credential = Recording()

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    with httpx.Client(
        auth=KeylessAuth(credential, "s/.default"), transport=httpx.MockTransport(refuse)
    ) as client:
        assert client.get("https://svc.example/").status_code == 401
    assert len(credential.calls) == 1


def test_tokens_are_not_sent_over_plain_http_unless_allowed() -> None:
    credential = Recording()
    echo = httpx.MockTransport(lambda request: httpx.Response(200, text=request.headers["authorization"]))
    with (
        httpx.Client(auth=KeylessAuth(credential, "s/.default"), transport=echo) as client,
        pytest.raises(ConfigurationError, match="plain http"),
    ):
        client.get("http://svc.example/")
    with httpx.Client(
        auth=KeylessAuth(credential, "s/.default", enforce_https=False), transport=echo
    ) as client:
        assert client.get("http://127.0.0.1/").text == "Bearer token-1"


def test_an_async_credential_needs_an_async_client() -> None:
    with (
        httpx.Client(
            auth=KeylessAuth(AsyncRecording(), "s/.default"), transport=httpx.MockTransport(challenging)
        ) as client,
        pytest.raises(TypeError, match=r"httpx\.AsyncClient"),
    ):
        client.get("https://svc.example/")
    with pytest.raises(ValueError, match="at least one scope"):
        KeylessAuth(Recording(), [])
