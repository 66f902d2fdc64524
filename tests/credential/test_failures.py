"""The documented behaviour when the token endpoint misbehaves, over real sockets (a programmable
stand-in endpoint on 127.0.0.1): down, 503 then up, slower than the timeout, Retry-After,
AADSTS70021 while a federated credential propagates, an untrusted certificate; and single flight
under 200 threads / 200 tasks, including a failure shared by every waiter."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time

import pytest
from tests.credential._helpers import FakeTime, fake_jwt
from tests.credential._standin import Reply, StandIn, entra_error

from keyless.credential import ClientAssertionCredential, ClientAuthenticationError, RetryPolicy, aio

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SCOPE = "api://blob-api/.default"
QUICK = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.1)


def credential(standin: StandIn, ca: ssl.SSLContext, **options: object) -> ClientAssertionCredential:
    options.setdefault("retry", QUICK)
    return ClientAssertionCredential(
        TENANT,
        "client-app",
        lambda: fake_jwt(lifetime=7200),
        authority=standin.base_url,
        verify=ca,
        **options,  # type: ignore[arg-type]
    )


def test_503_then_up_is_retried_until_a_token_comes(standin: StandIn, standin_ca: ssl.SSLContext) -> None:
    standin.script(Reply(503, {"error": "temporarily_unavailable"}), Reply(503, b"<html>busy</html>"))
    with credential(standin, standin_ca) as cred:
        assert cred.get_token(SCOPE).token == "access-token-1"
    assert standin.count == 3
    assert standin.paths == [f"/{TENANT}/oauth2/v2.0/token"] * 3


def test_an_authority_that_is_down_is_retried_then_reported(
    standin: StandIn, standin_ca: ssl.SSLContext
) -> None:
    standin.stop()
    with credential(standin, standin_ca) as cred, pytest.raises(ClientAuthenticationError) as caught:
        cred.get_token(SCOPE)
    assert caught.value.retryable
    assert caught.value.status is None
    assert "ConnectError" in str(caught.value)
    assert "gave up after 3 attempts" in caught.value.__notes__[0]


def test_while_the_authority_is_down_the_cached_token_is_served_until_it_expires(
    standin: StandIn, standin_ca: ssl.SSLContext
) -> None:
    clock = FakeTime()
    cred = credential(standin, standin_ca, clock=clock)
    first = cred.get_token(SCOPE)
    standin.stop()
    clock.advance(3400)  # due for refresh, 200 s left
    assert cred.get_token(SCOPE) is first
    clock.advance(200)
    with pytest.raises(ClientAuthenticationError, match="ConnectError"):
        cred.get_token(SCOPE)
    cred.close()


def test_an_answer_slower_than_the_timeout_fails_after_the_retries(
    standin: StandIn, standin_ca: ssl.SSLContext
) -> None:
    standin.delay = 1.0
    started = time.monotonic()
    with credential(
        standin, standin_ca, timeout=0.2, retry=RetryPolicy(max_attempts=2, base_delay=0.01)
    ) as cred:
        with pytest.raises(
            ClientAuthenticationError, match=r"timed out \(ReadTimeout after 0.2 s\)"
        ) as caught:
            cred.get_token(SCOPE)
        assert caught.value.retryable
        assert time.monotonic() - started < 1.5
        assert standin.count == 2
        standin.delay = 0
        assert cred.get_token(SCOPE).token.startswith("access-token-")  # the next call tries again


def test_retry_after_is_waited_for(standin: StandIn, standin_ca: ssl.SSLContext) -> None:
    standin.script(Reply(429, {"error": "too_many_requests"}, headers={"Retry-After": "1"}))
    started = time.monotonic()
    with credential(standin, standin_ca) as cred:
        cred.get_token(SCOPE)
    assert time.monotonic() - started >= 1.0
    assert standin.count == 2


def test_aadsts70021_during_propagation_is_retried_only_when_asked(
    standin: StandIn, standin_ca: ssl.SSLContext
) -> None:
    standin.script(Reply(400, entra_error(70021, "unauthorized_client")))
    with credential(standin, standin_ca) as cred, pytest.raises(ClientAuthenticationError) as caught:
        cred.get_token(SCOPE)
    assert caught.value.aadsts == 70021
    assert standin.count == 1
    standin.script(*[Reply(400, entra_error(70021, "unauthorized_client"))] * 3)
    patient = RetryPolicy(base_delay=0.05, max_delay=0.1, propagation_timeout=5)
    with credential(standin, standin_ca, retry=patient) as cred:
        assert cred.get_token(SCOPE).token == "access-token-1"
    assert standin.count == 5


def test_an_untrusted_certificate_is_explained_and_not_retried(standin: StandIn) -> None:
    with (
        credential(standin, ssl.create_default_context()) as cred,
        pytest.raises(ClientAuthenticationError, match="is not trusted") as caught,
    ):
        cred.get_token(SCOPE)
    assert not caught.value.retryable
    assert not getattr(caught.value, "__notes__", None)


# -- single flight ---------------------------------------------------------------------------------


def run_threads(count: int, target: object) -> None:
    threads = [threading.Thread(target=target) for _ in range(count)]  # type: ignore[arg-type]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)


def test_200_threads_share_one_request_at_the_endpoint(standin: StandIn, standin_ca: ssl.SSLContext) -> None:
    standin.delay = 0.3
    cred = credential(standin, standin_ca)
    barrier, tokens = threading.Barrier(200), []

    def ask() -> None:
        barrier.wait()
        tokens.append(cred.get_token(SCOPE).token)

    run_threads(200, ask)
    cred.close()
    assert tokens == ["access-token-1"] * 200
    assert standin.count == 1


def test_a_failure_reaches_every_waiting_thread_from_one_request(
    standin: StandIn, standin_ca: ssl.SSLContext
) -> None:
    standin.delay = 0.3
    standin.script(Reply(400, entra_error(700016, "unauthorized_client")))
    cred = credential(standin, standin_ca)
    barrier, codes = threading.Barrier(50), []

    def ask() -> None:
        barrier.wait()
        try:
            cred.get_token(SCOPE)
        except ClientAuthenticationError as exc:
            codes.append(exc.aadsts)

    run_threads(50, ask)
    cred.close()
    assert codes == [700016] * 50
    assert standin.count == 1


def test_callers_do_not_wait_for_a_refresh_while_the_token_is_valid(
    standin: StandIn, standin_ca: ssl.SSLContext
) -> None:
    clock = FakeTime()
    cred = credential(standin, standin_ca, clock=clock)
    first = cred.get_token(SCOPE)
    clock.advance(3400)
    standin.delay = 1.0
    refresher = threading.Thread(target=cred.get_token, args=(SCOPE,))
    refresher.start()
    while standin.count < 2:
        time.sleep(0.01)
    started = time.monotonic()
    assert cred.get_token(SCOPE) is first
    assert time.monotonic() - started < 0.2
    refresher.join(5)
    assert cred.get_token(SCOPE).token == "access-token-2"
    assert standin.count == 2
    cred.close()


async def test_200_tasks_share_one_request_at_the_endpoint(
    standin: StandIn, standin_ca: ssl.SSLContext
) -> None:
    standin.delay = 0.3
    async with aio.ClientAssertionCredential(
        TENANT, "client-app", lambda: fake_jwt(), authority=standin.base_url, verify=standin_ca
    ) as cred:
        tokens = await asyncio.gather(*(cred.get_token(SCOPE) for _ in range(200)))
        assert {t.token for t in tokens} == {"access-token-1"}
        assert standin.count == 1
        standin.script(Reply(400, entra_error(700016, "unauthorized_client")))
        failures = await asyncio.gather(
            *(cred.get_token("api://other/.default") for _ in range(50)), return_exceptions=True
        )
    assert all(isinstance(f, ClientAuthenticationError) and f.aadsts == 700016 for f in failures)
    assert standin.count == 2


async def test_a_cancelled_caller_does_not_cancel_the_shared_request(
    standin: StandIn, standin_ca: ssl.SSLContext
) -> None:
    standin.delay = 0.3
    async with aio.ClientAssertionCredential(
        TENANT, "client-app", lambda: fake_jwt(), authority=standin.base_url, verify=standin_ca
    ) as cred:
        impatient = asyncio.create_task(cred.get_token(SCOPE))
        patient = asyncio.create_task(cred.get_token(SCOPE))
        await asyncio.sleep(0.1)
        impatient.cancel()
        assert (await patient).token == "access-token-1"
        assert impatient.cancelled()
    assert standin.count == 1
