"""The authority on PostgreSQL through a proxy that refuses, blackholes and restores connections:
admin requests and certificate-assertion token requests answer 503 with Retry-After in their
protocol's error shape within the bound, recover when the database is back, and the log holds one
line per outage transition (no tracebacks)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import msal
import pytest
from sqlalchemy.engine import make_url
from tests._services import fresh_postgres_schema, postgres_url_or_skip, redis_url_or_skip
from tests._support.authority_server import Federation, RunningAuthority, run_authority, seed_federation
from tests._support.certs import ClientCertificate, make_client_certificate
from tests._support.tcp_proxy import FaultyProxy

pytestmark = pytest.mark.postgres

TIMEOUT = 1.0  # KEYLESS_DATABASE_TIMEOUT for these tests
# A dead pooled connection's ping (TIMEOUT), then a new connection's attempt (libpq's least is 2 s).
BOUND = TIMEOUT + max(2.0, TIMEOUT) + 1.5


@pytest.fixture
def proxy() -> Iterator[FaultyProxy]:
    url = make_url(postgres_url_or_skip())
    with FaultyProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


@pytest.fixture
def authority(
    tmp_path: Path, proxy: FaultyProxy, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[RunningAuthority]:
    with fresh_postgres_schema(postgres_url_or_skip()) as url:
        proxied = make_url(url).set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)
        settings: dict[str, Any] = {
            "database_url": proxied,
            "database_timeout": TIMEOUT,
            "ready_store_timeout": TIMEOUT,
            "cache_poll_interval": 0.2,
        }
        if getattr(request, "param", None) == "redis":
            settings["redis_url"] = redis_url_or_skip()
        with run_authority(tmp_path / "authority", **settings) as running:
            # requests (under MSAL) lets these override ``verify=``: point them at keyless's CA.
            for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
                monkeypatch.setenv(name, str(running.ca_file))
            yield running


@pytest.fixture
def federation(authority: RunningAuthority) -> Federation:
    return seed_federation(authority.admin, issuer="https://issuer.example")


@pytest.fixture
def certificate(authority: RunningAuthority, federation: Federation) -> ClientCertificate:
    cert = make_client_certificate()
    authority.admin.add_certificate(federation.client, cert.cert_pem)
    return cert


def certificate_assertion(cert: ClientCertificate, client_id: str, audience: str) -> str:
    """What MSAL signs for a certificate credential (x5t#S256 header, a fresh jti)."""
    now = int(time.time())
    claims = {"aud": audience, "iss": client_id, "sub": client_id, "jti": str(uuid.uuid4()), "nbf": now}
    claims["exp"] = now + 600
    headers = {"x5t#S256": jwt.utils.base64url_encode(bytes.fromhex(cert.sha256_hex)).decode()}
    return jwt.encode(claims, cert.key_pem, algorithm="RS256", headers=headers)


def token_request(
    authority: RunningAuthority, federation: Federation, cert: ClientCertificate, assertion: str | None = None
) -> httpx.Response:
    url = authority.token_url(federation.tenant_id)
    assertion = assertion or certificate_assertion(cert, federation.client.app_id, url)
    form = {
        "grant_type": "client_credentials",
        "client_id": federation.client.app_id,
        "scope": federation.scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    return httpx.post(url, data=form, verify=authority.ssl_context(), timeout=30)


def admin_get(authority: RunningAuthority) -> httpx.Response:
    return httpx.get(
        f"{authority.base_url}/admin/v1.0/tenants",
        headers={"Authorization": f"Bearer {authority.admin_key()}"},
        verify=authority.ssl_context(),
        timeout=30,
    )


def timed(call: Any, *args: Any) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = call(*args)
    return response, time.monotonic() - start


def assert_graph_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert int(response.headers["retry-after"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "serviceNotAvailable"
    assert "temporarily unavailable" in error["message"]


def assert_oauth_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["error"] == "temporarily_unavailable"
    assert body["error_codes"] == [90033]
    assert body["error_description"].startswith("AADSTS90033: ")
    assert body["trace_id"] and body["correlation_id"]


def transitions(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage().split(":")[0]
        for r in caplog.records
        if r.name == "keyless.store"
        and r.getMessage().startswith(("database unavailable", "database is back"))
    ]


def wait_until_ok(call: Any, *args: Any, within: float = 15.0) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        response: httpx.Response = call(*args)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_a_blackholed_database_gives_503_with_retry_after_within_the_bound_and_recovers(
    authority: RunningAuthority,
    federation: Federation,
    certificate: ClientCertificate,
    proxy: FaultyProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    assert admin_get(authority).status_code == 200
    assert token_request(authority, federation, certificate).status_code == 200

    proxy.blackhole()
    response, took = timed(admin_get, authority)
    assert_graph_503(response)
    assert took < BOUND
    response, took = timed(token_request, authority, federation, certificate)
    assert_oauth_503(response)
    assert took < BOUND
    for _ in range(5):  # still down: no further log lines
        assert admin_get(authority).status_code == 503

    proxy.restore()
    assert wait_until_ok(admin_get, authority).status_code == 200
    assert token_request(authority, federation, certificate).status_code == 200
    assert transitions(caplog) == ["database unavailable", "database is back"]
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("keyless")]


def test_a_refusing_database_gives_503_at_once_and_msal_sees_a_service_error(
    authority: RunningAuthority,
    federation: Federation,
    certificate: ClientCertificate,
    proxy: FaultyProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    proxy.refuse()
    response, took = timed(admin_get, authority)
    assert_graph_503(response)
    assert took < BOUND
    response, took = timed(token_request, authority, federation, certificate)
    assert_oauth_503(response)
    assert took < BOUND
    app = msal.ConfidentialClientApplication(
        federation.client.app_id,
        authority=f"{authority.base_url}/{federation.tenant_id}",
        client_credential={
            "private_key": certificate.key_pem.decode(),
            "public_certificate": certificate.cert_pem.decode(),
        },
        instance_discovery=False,
        verify=str(authority.ca_file),
    )
    # MSAL Python treats a 5xx as a service error to retry later (and throttles the same request
    # for Retry-After seconds); the body it got was the OAuth JSON checked above.
    with pytest.raises(msal.exceptions.MsalServiceError, match="503"):
        app.acquire_token_for_client(scopes=[federation.scope])

    proxy.restore()
    assert wait_until_ok(token_request, authority, federation, certificate).status_code == 200
    assert transitions(caplog) == ["database unavailable", "database is back"]
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("keyless")]


def test_readyz_names_the_unreachable_store_and_recovers(
    authority: RunningAuthority, proxy: FaultyProxy
) -> None:
    def readyz() -> httpx.Response:
        return httpx.get(f"{authority.base_url}/readyz", verify=authority.ssl_context(), timeout=30)

    assert readyz().status_code == 200
    proxy.blackhole()
    response, took = timed(readyz)
    assert response.status_code == 503
    store = response.json()["checks"]["store"]
    assert store["ok"] is False
    assert "did not answer within" in store["reason"] or "unavailable" in store["reason"]
    assert took < TIMEOUT + 1.5
    proxy.refuse()
    assert readyz().json()["checks"]["store"]["ok"] is False
    assert httpx.get(f"{authority.base_url}/healthz", verify=authority.ssl_context()).status_code == 200
    proxy.restore()
    assert wait_until_ok(readyz).status_code == 200


def test_a_token_request_that_needs_no_database_is_served_through_the_outage(
    authority: RunningAuthority, federation: Federation, proxy: FaultyProxy
) -> None:
    secret = authority.admin.add_secret(federation.client, "s").value
    form = {
        "grant_type": "client_credentials",
        "client_id": federation.client.app_id,
        "client_secret": secret,
        "scope": federation.scope,
    }
    proxy.blackhole()
    url = authority.token_url(federation.tenant_id)
    response = httpx.post(url, data=form, verify=authority.ssl_context(), timeout=30)
    assert response.status_code == 200, response.text


@pytest.mark.redis
@pytest.mark.parametrize("authority", ["redis"], indirect=True)
def test_with_redis_certificate_assertions_need_no_database(
    authority: RunningAuthority, federation: Federation, certificate: ClientCertificate, proxy: FaultyProxy
) -> None:
    proxy.blackhole()
    assertion = certificate_assertion(
        certificate, federation.client.app_id, authority.token_url(federation.tenant_id)
    )
    first, took = timed(token_request, authority, federation, certificate, assertion)
    assert first.status_code == 200, first.text
    assert took < 1.0  # no database wait at all
    replayed = token_request(authority, federation, certificate, assertion)
    assert replayed.json()["error_codes"] == [700025]  # Redis saw it
