"""The token request and its answers: the form sent, v2 and v1 response shapes, Entra
error bodies, and the retry policy (429/5xx/timeouts with jittered backoff or Retry-After, bounded
AADSTS70021 retries, no retry on other 4xx). httpx.MockTransport stands in for the network."""

from __future__ import annotations

import email.utils
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.credential._helpers import FakeTime, fake_jwt
from tests.credential._standin import entra_error

from keyless.credential import ClientAuthenticationError, RetryPolicy
from keyless.credential._token_client import (
    JWT_BEARER,
    AsyncTokenClient,
    TokenClient,
    check_tenant,
    merge_cae_claims,
    normalize_authority,
)
from keyless.errors import ConfigurationError

AUTHORITY = "https://login.example"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
Handler = Callable[[httpx.Request], httpx.Response]


def v2(expires_in: int = 3599, **extra: Any) -> httpx.Response:
    body = {
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": "at",
    }
    return httpx.Response(200, json={**body, **extra})


class Recorder:
    """Answers requests from a list (the last answer repeats) and records them."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def forms(self) -> list[dict[str, list[str]]]:
        from urllib.parse import parse_qs

        return [parse_qs(r.content.decode()) for r in self.requests]


def client(handler: Handler, time_: FakeTime, **retry: Any) -> TokenClient:
    return TokenClient(
        AUTHORITY,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        clock=time_,
        monotonic=time_,
        sleep=time_.sleep,
        retry=RetryPolicy(random=lambda: 0.5, **retry),
    )


def request(tc: TokenClient, assertion: Callable[[], str] | None = None, claims: str | None = None) -> Any:
    return tc.request_token(TENANT, "client-app", ["api://blob-api/.default"], claims, assertion or fake_jwt)


# -- the request -----------------------------------------------------------------------------------


def test_the_request_is_a_v2_client_assertion_form_post() -> None:
    recorder, time_ = Recorder(v2()), FakeTime()
    assertion = fake_jwt()
    request(client(recorder, time_), lambda: assertion)
    [sent] = recorder.requests
    assert sent.method == "POST"
    assert str(sent.url) == f"{AUTHORITY}/{TENANT}/oauth2/v2.0/token"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.headers["x-ms-client-request-id"]
    assert recorder.forms() == [
        {
            "client_id": ["client-app"],
            "grant_type": ["client_credentials"],
            "client_assertion_type": [JWT_BEARER],
            "scope": ["api://blob-api/.default"],
            "client_assertion": [assertion],
        }
    ]


def test_claims_are_sent_and_cae_adds_the_cp1_capability() -> None:
    assert merge_cae_claims(None, False) is None
    assert json.loads(merge_cae_claims(None, True) or "") == {"access_token": {"xms_cc": {"values": ["CP1"]}}}
    merged = merge_cae_claims('{"access_token": {"nbf": {"essential": true, "value": "1"}}}', True)
    assert json.loads(merged or "") == {
        "access_token": {"xms_cc": {"values": ["CP1"]}, "nbf": {"essential": True, "value": "1"}}
    }
    recorder = Recorder(v2())
    request(client(recorder, FakeTime()), claims=merged)
    assert recorder.forms()[0]["claims"] == [merged]


def test_the_authority_must_be_https_and_the_tenant_a_path_segment() -> None:
    assert normalize_authority("localhost:8443/") == "https://localhost:8443"
    assert normalize_authority("https://login.microsoftonline.com") == "https://login.microsoftonline.com"
    with pytest.raises(ConfigurationError, match="TLS protected"):
        normalize_authority("http://localhost:8443")
    with pytest.raises(ConfigurationError, match="not a tenant id"):
        check_tenant("contoso/../admin")


# -- answers ---------------------------------------------------------------------------------------


def test_a_v2_answer_expires_expires_in_after_the_request_and_keeps_refresh_in() -> None:
    time_ = FakeTime()
    result = request(client(Recorder(v2(7200, refresh_in=3600)), time_))
    assert (result.token, result.token_type) == ("at", "Bearer")
    assert result.expires_on == int(time_.now) + 7200
    assert result.refresh_in == 3600


def test_a_v1_answer_with_string_numbers_uses_expires_on() -> None:
    body = {
        "token_type": "Bearer",
        "expires_in": "3599",
        "ext_expires_in": "3599",
        "expires_on": "1388452167",
        "not_before": "1388448267",
        "resource": "https://service.contoso.com/",
        "access_token": "v1-token",
    }
    result = request(client(Recorder(httpx.Response(200, json=body)), FakeTime()))
    assert (result.token, result.expires_on, result.refresh_in) == ("v1-token", 1388452167, None)


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(200, content=b""), "with no content"),
        (httpx.Response(200, content=b"<html>"), "not a JSON object"),
        (httpx.Response(200, json={"access_token": "x"}), "no expires_in/expires_on"),
        (httpx.Response(200, json={"expires_in": 5}), "no access_token"),
    ],
)
def test_an_unusable_success_answer_is_an_error(response: httpx.Response, message: str) -> None:
    with pytest.raises(ClientAuthenticationError, match=message):
        request(client(Recorder(response), FakeTime()))


def test_an_entra_error_carries_its_code_description_and_ids_and_is_not_retried() -> None:
    recorder = Recorder(
        httpx.Response(401, json=entra_error(700213, message="No matching federated identity"))
    )
    with pytest.raises(ClientAuthenticationError) as caught:
        request(client(recorder, FakeTime()))
    error = caught.value
    assert len(recorder.requests) == 1
    assert (error.error, error.aadsts, error.error_codes, error.status) == (
        "invalid_client",
        700213,
        [700213],
        401,
    )
    assert error.error_description is not None
    assert error.error_description.startswith("AADSTS700213: No matching federated identity")
    assert error.trace_id == "0f4ee1d4-3a3a-4a5b-9c1f-7d3c5b0a1e01"
    assert error.correlation_id == "6c2b8c41-8d6e-4a38-a0ff-2c1f5f0b7a42"
    assert error.timestamp == "2026-01-02 03:04:05Z"
    assert error.error_uri == "https://login.microsoftonline.com/error?code=700213"
    assert not error.retryable
    assert "AADSTS700213" in str(error)


def test_ids_missing_from_the_body_are_read_from_the_description() -> None:
    body = {
        "error": "invalid_request",
        "error_description": "AADSTS90002: Tenant 'x' not found.\r\nTrace ID: 11111111-2222-3333-4444-555555555555"
        "\r\nCorrelation ID: 66666666-7777-8888-9999-000000000000\r\nTimestamp: 2021-05-16 05:21:44Z",
    }
    with pytest.raises(ClientAuthenticationError) as caught:
        request(client(Recorder(httpx.Response(400, json=body)), FakeTime()))
    assert caught.value.aadsts == 90002
    assert caught.value.trace_id == "11111111-2222-3333-4444-555555555555"
    assert caught.value.correlation_id == "66666666-7777-8888-9999-000000000000"
    assert caught.value.timestamp == "2021-05-16 05:21:44Z"


# -- retries ---------------------------------------------------------------------------------------


def test_5xx_is_retried_with_full_jitter_backoff_and_a_fresh_assertion_each_time() -> None:
    recorder, time_ = Recorder(httpx.Response(503), httpx.Response(502), v2()), FakeTime()
    assertions = iter([fake_jwt(n=1), fake_jwt(n=2), fake_jwt(n=3)])
    result = request(client(recorder, time_, base_delay=0.5), lambda: next(assertions))
    assert result.token == "at"
    assert len(recorder.requests) == 3
    assert time_.slept == [0.25, 0.5]  # uniform(0, 0.5 * 2**n) with random() = 0.5
    assert len({tuple(form["client_assertion"]) for form in recorder.forms()}) == 3


def test_retries_are_bounded_and_the_last_error_says_so() -> None:
    recorder, time_ = Recorder(httpx.Response(500, content=b"boom")), FakeTime()
    with pytest.raises(ClientAuthenticationError) as caught:
        request(client(recorder, time_, max_attempts=4))
    assert len(recorder.requests) == 4
    assert caught.value.status == 500
    assert caught.value.retryable
    assert "gave up after 4 attempts" in caught.value.__notes__[0]


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_other_4xx_answers_are_not_retried(status: int) -> None:
    recorder = Recorder(httpx.Response(status, json={"error": "invalid_request", "error_description": "no"}))
    with pytest.raises(ClientAuthenticationError):
        request(client(recorder, FakeTime()))
    assert len(recorder.requests) == 1


def test_retry_after_is_honoured_in_seconds_and_as_an_http_date() -> None:
    time_ = FakeTime()
    date = email.utils.formatdate(__import__("time").time() + 30, usegmt=True)
    recorder = Recorder(
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(503, headers={"Retry-After": date}),
        v2(),
    )
    request(client(recorder, time_))
    assert time_.slept[0] == 7
    assert 28 <= time_.slept[1] <= 30


def test_a_retry_after_beyond_the_limit_is_raised_at_once() -> None:
    recorder, time_ = Recorder(httpx.Response(429, headers={"Retry-After": "3600"})), FakeTime()
    with pytest.raises(ClientAuthenticationError) as caught:
        request(client(recorder, time_, max_retry_after=60))
    assert len(recorder.requests) == 1
    assert caught.value.retry_after == 3600
    assert time_.slept == []


def test_timeouts_and_connection_errors_are_retried_then_reported() -> None:
    recorder = Recorder(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"))
    with pytest.raises(ClientAuthenticationError, match="timed out") as caught:
        request(client(recorder, FakeTime(), max_attempts=3))
    assert len(recorder.requests) == 3
    assert caught.value.retryable
    assert caught.value.status is None


def test_aadsts70021_is_not_retried_unless_asked() -> None:
    recorder = Recorder(httpx.Response(400, json=entra_error(70021)))
    with pytest.raises(ClientAuthenticationError) as caught:
        request(client(recorder, FakeTime()))
    assert caught.value.aadsts == 70021
    assert len(recorder.requests) == 1


def test_aadsts70021_is_retried_for_the_propagation_time_then_succeeds() -> None:
    refused = httpx.Response(400, json=entra_error(70021))
    recorder, time_ = Recorder(refused, refused, refused, refused, refused, v2()), FakeTime()
    result = request(client(recorder, time_, propagation_timeout=120, max_attempts=2), None)
    assert result.token == "at"
    assert len(recorder.requests) == 6  # beyond max_attempts: the propagation time bounds these


def test_aadsts70021_retries_stop_when_the_propagation_time_is_spent() -> None:
    recorder, time_ = Recorder(httpx.Response(400, json=entra_error(70021))), FakeTime()
    started = time_.now
    with pytest.raises(ClientAuthenticationError) as caught:
        request(client(recorder, time_, propagation_timeout=20, max_delay=4))
    assert caught.value.aadsts == 70021
    assert time_.now - started <= 20
    assert len(recorder.requests) >= 5


async def test_the_async_client_retries_the_same_way() -> None:
    recorder, time_ = (
        Recorder(httpx.Response(503), httpx.Response(429, headers={"Retry-After": "2"}), v2()),
        FakeTime(),
    )
    tc = AsyncTokenClient(
        AUTHORITY,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(recorder)),
        clock=time_,
        monotonic=time_,
        sleep=time_.asleep,
        retry=RetryPolicy(random=lambda: 0.5),
    )

    async def assertion() -> str:
        return fake_jwt()

    result = await tc.request_token(TENANT, "client-app", ["api://x/.default"], None, assertion)
    assert result.token == "at"
    assert time_.slept == [0.25, 2]
    await tc.aclose()
