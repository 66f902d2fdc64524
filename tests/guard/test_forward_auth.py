"""``keyless guard authz``: the forward-auth wire contracts, over real sockets. nginx and Caddy run
for real in test_forward_auth_dataplanes.py; Envoy's ext_authz HTTP service and Traefik's
ForwardAuth are not in Debian's packages, so their requests are sent here in the shapes their
documentation gives (Envoy: the original method and path under ``path_prefix``, with
``authorization`` among the allowed headers; Traefik: a GET with every original header plus
``X-Forwarded-Method``, ``-Proto``, ``-Host``, ``-Uri`` and ``-For``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from tests._support.net import free_ports
from tests._support.oidc_issuer import TestIssuer
from tests._support.processes import REPO
from tests.guard.conftest import AUDIENCE, closed_port, guard_config, serve

from keyless.guard import GuardProxy
from keyless.guard._authz import ForwardAuth
from keyless.guard._request_safety import IDENTITY_HEADERS
from keyless.guard._snippets import KINDS, snippet

POLICY = {
    "anonymous": ["/public/**"],
    "rules": [{"path": "/admin/**", "any_of": ["Admin"]}, {"path": "/**", "allow": "authenticated"}],
}


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as running:
        yield running


@pytest.fixture(scope="module")
def authz(issuer: TestIssuer) -> Iterator[httpx.Client]:
    with serve(ForwardAuth(guard_config(issuer, policy=POLICY))) as url, httpx.Client(base_url=url) as client:
        yield client


def bearer(issuer: TestIssuer, **claims: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.mint(aud=AUDIENCE, sub='caller', lifetime=600, **claims)}"}


def traefik(uri: str, method: str = "GET") -> dict[str, str]:
    return {
        "X-Forwarded-Method": method,
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "api.example.com",
        "X-Forwarded-Uri": uri,
        "X-Forwarded-For": "203.0.113.7",
    }


def test_traefik_an_allowed_request_gets_every_identity_header(
    authz: httpx.Client, issuer: TestIssuer
) -> None:
    answer = authz.get(
        "/_keyless/authz", headers={**traefik("/blobs/a?x=1", "POST"), **bearer(issuer, roles=["R"])}
    )
    assert answer.status_code == 200
    assert answer.headers["x-keyless-subject"] == "caller"
    assert answer.headers["x-keyless-roles"] == "R"
    assert all(name.lower() in answer.headers for name in IDENTITY_HEADERS)  # absent claims: empty
    assert answer.headers["x-keyless-email"] == ""


def test_traefik_a_denial_is_passed_back_with_its_challenge(authz: httpx.Client, issuer: TestIssuer) -> None:
    none = authz.get("/_keyless/authz", headers=traefik("/blobs/a"))
    assert none.status_code == 401 and none.headers["www-authenticate"].startswith("Bearer")
    forbidden = authz.get("/_keyless/authz", headers={**traefik("/admin/x"), **bearer(issuer, roles=["R"])})
    assert forbidden.status_code == 403
    assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]
    unsafe = authz.get("/_keyless/authz", headers={**traefik("/public/..%2fadmin/x"), **bearer(issuer)})
    assert unsafe.status_code == 400


def test_envoy_the_original_path_under_the_prefix_and_the_method_of_the_request(
    authz: httpx.Client, issuer: TestIssuer
) -> None:
    allowed = authz.post("/_keyless/envoy/blobs/a?x=1", headers=bearer(issuer, roles=["Admin"]))
    assert allowed.status_code == 200 and allowed.headers["x-keyless-roles"] == "Admin"
    assert allowed.headers["x-keyless-email"] == ""
    anonymous = authz.get("/_keyless/envoy/public/page")
    assert anonymous.status_code == 200 and anonymous.headers["x-keyless-subject"] == ""
    denied = authz.delete("/_keyless/envoy/admin/x", headers=bearer(issuer, roles=["R"]))
    assert denied.status_code == 403
    assert authz.get("/_keyless/envoy/public/%2e%2e/admin/x").status_code == 400


def test_nginx_an_unsafe_path_is_403_since_auth_request_relays_only_401_and_403(
    authz: httpx.Client, issuer: TestIssuer
) -> None:
    headers = {"X-Original-Method": "GET", "X-Original-URI": "/public/..;/admin/x", **bearer(issuer)}
    assert authz.get("/_keyless/authz/nginx", headers=headers).status_code == 403


def test_a_client_cannot_choose_the_checked_path_with_headers_its_data_plane_does_not_set(
    authz: httpx.Client, issuer: TestIssuer
) -> None:
    """Traefik sets X-Forwarded-Uri but passes a client's X-Original-URI along: keyless reads the
    headers its endpoint names, never whichever are present. Duplicates are refused."""
    reader = bearer(issuer, roles=["R"])
    spoofed = {**traefik("/admin/x"), "X-Original-Method": "GET", "X-Original-URI": "/public/page", **reader}
    assert authz.get("/_keyless/authz", headers=spoofed).status_code == 403  # /admin/x was checked
    via_nginx = {
        "X-Original-Method": "GET",
        "X-Original-URI": "/admin/x",
        **traefik("/public/page"),
        **reader,
    }
    assert authz.get("/_keyless/authz/nginx", headers=via_nginx).status_code == 403
    twice = httpx.Headers(
        [("X-Forwarded-Method", "GET"), ("X-Forwarded-Uri", "/public/a"), ("X-Forwarded-Uri", "/admin/x")]
    )
    assert authz.get("/_keyless/authz", headers=twice).status_code == 400
    assert authz.get("/_keyless/%65nvoy/admin/x", headers=reader).status_code in (400, 404)


def test_a_misconfigured_data_plane_is_told_what_is_missing(authz: httpx.Client) -> None:
    answer = authz.get("/_keyless/authz/nginx", headers={"X-Original-URI": "/x"})
    assert answer.status_code == 400 and "x-original-method" in answer.text
    assert authz.get("/_keyless/authz").status_code == 400
    assert authz.get("/somewhere").status_code == 400


def test_health_and_readiness_of_the_forward_auth_service(authz: httpx.Client, issuer: TestIssuer) -> None:
    assert authz.get("/_keyless/healthz").json() == {"status": "ok"}
    ready = authz.get("/_keyless/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["issuers"]["ok"]
    with TestIssuer() as down:
        down.down()
        config = guard_config(issuers=[{"kind": "oidc", "issuer": down.url}], audiences=[AUDIENCE])
        with serve(ForwardAuth(config)) as url:
            answer = httpx.get(f"{url}/_keyless/readyz")
    assert answer.status_code == 503
    assert down.url in answer.json()["checks"]["issuers"]["problems"]


def test_the_proxy_is_not_ready_when_its_upstream_refuses_connections(issuer: TestIssuer) -> None:
    proxy = GuardProxy(f"http://127.0.0.1:{closed_port()}", config=guard_config(issuer))
    with serve(proxy) as url:
        assert httpx.get(f"{url}/_keyless/healthz").status_code == 200
        answer = httpx.get(f"{url}/_keyless/readyz")
    assert answer.status_code == 503
    assert not answer.json()["checks"]["upstream"]["ok"]


def test_every_snippet_names_every_identity_header_and_the_yaml_ones_parse() -> None:
    for kind in KINDS:
        text = snippet(kind, authz="127.0.0.1:9000", upstream="127.0.0.1:8081", listen=8080)
        assert "127.0.0.1:9000" in text
        if kind in ("nginx", "caddy", "traefik"):
            assert all(name in text for name in IDENTITY_HEADERS), kind
    traefik_doc = yaml.safe_load(snippet("traefik", authz="a:1", upstream="b:2"))
    forward = traefik_doc["http"]["middlewares"]["keyless"]["forwardAuth"]
    assert forward["address"] == "http://a:1/_keyless/authz" and forward["trustForwardHeader"] is False
    assert forward["authResponseHeaders"] == list(IDENTITY_HEADERS)
    envoy_doc = yaml.safe_load(snippet("envoy", authz="a:1", upstream="b:2"))
    service = envoy_doc["http_filters"][0]["typed_config"]["http_service"]
    assert service["path_prefix"] == "/_keyless/envoy"
    assert service["authorization_response"]["allowed_upstream_headers"]["patterns"] == [
        {"prefix": "x-keyless-"}
    ]


def test_the_cli_prints_a_snippet_and_serves_on_port_and_config_from_the_environment(
    tmp_path: Path, issuer: TestIssuer
) -> None:
    config = tmp_path / "guard.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "issuers": [{"kind": "oidc", "issuer": issuer.url}],
                "audiences": [AUDIENCE],
                "allow_http_loopback_issuers": True,
                "upstream": "http://127.0.0.1:8081",
            }
        )
    )
    env = {**os.environ, "KEYLESS_GUARD_CONFIG": str(config)}
    printed = subprocess.run(
        [sys.executable, "-m", "keyless", "guard", "authz", "--print-config", "nginx"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert printed.returncode == 0, printed.stderr
    assert "proxy_pass http://127.0.0.1:9000/_keyless/authz/nginx;" in printed.stdout
    assert "proxy_pass http://127.0.0.1:8081;" in printed.stdout
    wrong = subprocess.run(
        [sys.executable, "-m", "keyless", "guard", "authz", "--print-config", "haproxy"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 2 and "one of nginx" in wrong.stderr
    (port,) = free_ports(1)
    process = subprocess.Popen(
        [sys.executable, "-m", "keyless", "guard", "authz"],
        cwd=REPO,
        env={**env, "PORT": str(port), "HOST": "127.0.0.1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/_keyless/healthz").status_code == 200
                break
            except httpx.TransportError:
                if process.poll() is not None:
                    raise AssertionError("keyless guard authz exited") from None
                time.sleep(0.05)
        else:
            raise AssertionError("keyless guard authz never listened on $PORT")
    finally:
        process.terminate()
        process.wait(15)


def test_the_snippets_in_the_guide_are_the_ones_the_cli_prints() -> None:
    guide = (REPO / "docs" / "guard.md").read_text()
    for kind in KINDS:
        assert (
            snippet(kind, authz="127.0.0.1:9000", upstream="127.0.0.1:8081", listen=8080).rstrip() in guide
        ), kind
