"""The credential's cache, observed with an injected clock: tokens are served from memory until
their refresh time (server ``refresh_in``; half-life from 2 h; else 5 minutes before expiry), a
failed refresh keeps the previous token while it is valid, and keys separate tenants, scopes,
claims and CAE."""

from __future__ import annotations

import httpx
import pytest
from tests.credential._helpers import FakeTime, fake_jwt

from keyless.credential import ClientAssertionCredential, ClientAuthenticationError, RetryPolicy
from keyless.credential.aio import ClientAssertionCredential as AsyncClientAssertionCredential

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "11111111-2222-3333-4444-555555555555"
SCOPE = "api://blob-api/.default"


class Endpoint:
    """A token endpoint answering with numbered tokens, or with ``status`` while ``failing``."""

    def __init__(self, expires_in: int = 3599, refresh_in: int | None = None) -> None:
        self.expires_in = expires_in
        self.refresh_in = refresh_in
        self.failing: int | None = None
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.failing:
            return httpx.Response(self.failing, json={"error": "temporarily_unavailable"})
        body = {
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "access_token": f"t{len(self.requests)}",
        }
        if self.refresh_in is not None:
            body["refresh_in"] = self.refresh_in
        return httpx.Response(200, json=body)


def credential(endpoint: Endpoint, time_: FakeTime, **options: object) -> ClientAssertionCredential:
    return ClientAssertionCredential(
        TENANT,
        "client-app",
        lambda: fake_jwt(exp=time_.now + 600),
        authority="https://login.example",
        http_client=httpx.Client(transport=httpx.MockTransport(endpoint)),
        retry=RetryPolicy(max_attempts=1),
        clock=time_,
        **options,  # type: ignore[arg-type]
    )


def test_a_cached_token_is_served_until_five_minutes_before_expiry() -> None:
    endpoint, time_ = Endpoint(3599), FakeTime()
    cred = credential(endpoint, time_)
    first = cred.get_token(SCOPE)
    assert first.expires_on == int(time_.now) + 3599
    time_.advance(3599 - 301)
    assert cred.get_token(SCOPE) is first
    assert len(endpoint.requests) == 1
    time_.advance(2)
    second = cred.get_token(SCOPE)
    assert second.token == "t2"
    assert len(endpoint.requests) == 2


def test_refresh_on_reports_the_refresh_time_and_follows_the_servers_refresh_in() -> None:
    endpoint, time_ = Endpoint(86399, refresh_in=1000), FakeTime()
    cred = credential(endpoint, time_)
    start = time_.now
    info = cred.get_token_info(SCOPE)
    assert (info.token_type, info.refresh_on, info.expires_on) == (
        "Bearer",
        int(start + 1000),
        int(start + 86399),
    )
    time_.advance(999)
    assert cred.get_token_info(SCOPE).token == "t1"
    time_.advance(1)
    assert cred.get_token_info(SCOPE).token == "t2"


@pytest.mark.parametrize(
    ("lifetime", "refresh_after"), [(7200, 3600), (86400, 43200), (3600, 3300), (600, 300), (120, 60)]
)
def test_without_refresh_in_long_tokens_refresh_at_half_life_short_ones_before_expiry(
    lifetime: int, refresh_after: int
) -> None:
    endpoint, time_ = Endpoint(lifetime), FakeTime(1_800_000_000.0)
    cred = credential(endpoint, time_)
    assert cred.get_token_info(SCOPE).refresh_on == 1_800_000_000 + refresh_after
    time_.advance(refresh_after - 1)
    cred.get_token(SCOPE)
    assert len(endpoint.requests) == 1
    time_.advance(1)
    cred.get_token(SCOPE)
    assert len(endpoint.requests) == 2


def test_a_failed_refresh_keeps_the_valid_token_and_waits_before_trying_again() -> None:
    endpoint, time_ = Endpoint(3599), FakeTime()
    cred = credential(endpoint, time_)
    first = cred.get_token(SCOPE)
    time_.advance(3400)  # due for refresh; 199 s left
    endpoint.failing = 503
    assert cred.get_token(SCOPE).token == first.token
    assert len(endpoint.requests) == 2
    time_.advance(29)
    assert cred.get_token(SCOPE).token == first.token
    assert len(endpoint.requests) == 2  # no new request within 30 s of the failure
    time_.advance(1)
    assert cred.get_token(SCOPE).token == first.token
    assert len(endpoint.requests) == 3
    time_.advance(170)  # expired now
    with pytest.raises(ClientAuthenticationError, match="HTTP 503"):
        cred.get_token(SCOPE)
    endpoint.failing = None
    assert cred.get_token(SCOPE).token == "t5"


def test_without_a_cached_token_the_failure_is_raised() -> None:
    endpoint, time_ = Endpoint(), FakeTime()
    endpoint.failing = 500
    with pytest.raises(ClientAuthenticationError) as caught:
        credential(endpoint, time_).get_token(SCOPE)
    assert caught.value.status == 500


def test_tenants_scopes_claims_and_cae_have_separate_entries() -> None:
    endpoint, time_ = Endpoint(), FakeTime()
    cred = credential(endpoint, time_, additionally_allowed_tenants=[OTHER_TENANT])
    tokens = {
        cred.get_token(SCOPE).token,
        cred.get_token("api://other/.default").token,
        cred.get_token(SCOPE, claims='{"access_token":{"nbf":{"essential":true}}}').token,
        cred.get_token(SCOPE, enable_cae=True).token,
        cred.get_token(SCOPE, tenant_id=OTHER_TENANT).token,
        cred.get_token_info(SCOPE, options={"enable_cae": True}).token,
        cred.get_token(SCOPE, tenant_id=TENANT).token,
    }
    assert len(endpoint.requests) == 5
    assert len(tokens) == 5
    assert endpoint.requests[4].url.path == f"/{OTHER_TENANT}/oauth2/v2.0/token"


def test_another_tenant_needs_to_be_allowed() -> None:
    endpoint, time_ = Endpoint(), FakeTime()
    with pytest.raises(ClientAuthenticationError, match="additionally_allowed_tenants"):
        credential(endpoint, time_).get_token(SCOPE, tenant_id=OTHER_TENANT)
    assert credential(endpoint, time_, additionally_allowed_tenants=["*"]).get_token(
        SCOPE, tenant_id=OTHER_TENANT
    )
    assert len(endpoint.requests) == 1


def test_at_least_one_scope_is_required() -> None:
    with pytest.raises(ValueError, match="at least one scope"):
        credential(Endpoint(), FakeTime()).get_token()


async def test_the_async_credential_refreshes_and_keeps_tokens_the_same_way() -> None:
    endpoint, time_ = Endpoint(3599), FakeTime()

    async def assertion() -> str:
        return fake_jwt(exp=time_.now + 600)

    cred = AsyncClientAssertionCredential(
        TENANT,
        "client-app",
        assertion,
        authority="https://login.example",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(endpoint)),
        retry=RetryPolicy(max_attempts=1),
        clock=time_,
    )
    first = await cred.get_token(SCOPE)
    time_.advance(3300)
    endpoint.failing = 502
    assert (await cred.get_token_info(SCOPE)).token == first.token
    time_.advance(299)
    with pytest.raises(ClientAuthenticationError):
        await cred.get_token(SCOPE)
    endpoint.failing = None
    assert (await cred.get_token(SCOPE)).token == "t4"  # requests 2 and 3 failed
    await cred.close()
