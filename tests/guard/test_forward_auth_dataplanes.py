"""Forward-auth end to end with the real data planes from Debian's packages: nginx (auth_request)
and Caddy (forward_auth), each started on a free loopback port with the configuration
``keyless guard authz --print-config`` prints, in front of a real upstream, asking a real
``ForwardAuth`` service: allowed, 401, 403, unsafe path, a spoofed identity header, issuer down."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests._services import program_or_skip
from tests._support.net import free_ports
from tests._support.oidc_issuer import TestIssuer
from tests.guard.conftest import AUDIENCE, guard_config, serve

from keyless.guard._authz import ForwardAuth
from keyless.guard._snippets import snippet

POLICY = {
    "anonymous": ["/public/**"],
    "rules": [{"path": "/admin/**", "any_of": ["Admin"]}, {"path": "/**", "allow": "authenticated"}],
}


async def echo(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "path": request.scope["raw_path"].decode(),
            "headers": {k.decode(): v.decode() for k, v in request.scope["headers"]},
        }
    )


UPSTREAM = Starlette(routes=[Route("/{rest:path}", echo)])


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as running:
        yield running


@pytest.fixture(scope="module")
def down_issuer() -> Iterator[TestIssuer]:
    """A trusted issuer that is down from the start: its keys are never at hand."""
    with TestIssuer() as running:
        running.down()
        yield running


@pytest.fixture(scope="module")
def addresses(issuer: TestIssuer, down_issuer: TestIssuer) -> Iterator[tuple[str, str]]:
    """(authz host:port, upstream host:port)"""
    issuers = [{"kind": "oidc", "issuer": i.url} for i in (issuer, down_issuer)]
    config = guard_config(issuer, issuers=issuers, policy=POLICY, keys={"refresh_cooldown": 0.5})
    with serve(UPSTREAM) as upstream, serve(ForwardAuth(config)) as authz:
        yield authz.removeprefix("http://"), upstream.removeprefix("http://")


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the data plane exited: {log.read_text() if log.exists() else ''}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/_probe", timeout=0.5)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("the data plane did not start listening")


def _nginx(tmp: Path, conf: str, port: int) -> Iterator[str]:
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if binary is None:
        program_or_skip("nginx", "nginx-light")
    assert binary is not None
    temp = "\n".join(
        f"  {kind}_temp_path {tmp}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp / "nginx.conf").write_text(
        f"daemon off;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log warn;\nevents {{}}\n"
        f"http {{\n  access_log off;\n{temp}\n{conf}\n}}\n"
    )
    process = subprocess.Popen(
        [binary, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")]
    )
    try:
        _wait_listening(port, process, tmp / "error.log")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def _caddy(tmp: Path, conf: str, port: int) -> Iterator[str]:
    binary = program_or_skip("caddy", "caddy")
    admin = free_ports(1)[0]
    (tmp / "Caddyfile").write_text(f"{{\n  admin 127.0.0.1:{admin}\n  auto_https off\n}}\n{conf}")
    log = tmp / "caddy.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [binary, "run", "--adapter", "caddyfile", "--config", str(tmp / "Caddyfile")],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={
                "HOME": str(tmp),
                "XDG_DATA_HOME": str(tmp),
                "XDG_CONFIG_HOME": str(tmp),
                "PATH": "/usr/bin:/bin",
            },
        )
        try:
            _wait_listening(port, process, log)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(10)


@pytest.fixture(params=["nginx", "caddy"])
def data_plane(request: pytest.FixtureRequest, tmp_path: Path, addresses: tuple[str, str]) -> Iterator[str]:
    authz, upstream = addresses
    port = free_ports(1)[0]
    conf = snippet(request.param, authz=authz, upstream=upstream, listen=port)
    if request.param == "caddy":
        conf = conf.replace(f":{port} {{", f"http://127.0.0.1:{port} {{", 1)
        yield from _caddy(tmp_path, conf, port)
    else:
        conf = conf.replace(f"listen {port};", f"listen 127.0.0.1:{port};")
        yield from _nginx(tmp_path, conf, port)


def _token(issuer: TestIssuer, **claims: Any) -> str:
    return issuer.mint(aud=AUDIENCE, sub="caller-sub", lifetime=600, **claims)


def test_an_allowed_request_reaches_the_service_with_the_identity_and_without_the_token(
    data_plane: str, issuer: TestIssuer
) -> None:
    answer = httpx.get(
        f"{data_plane}/blobs/a?x=1", headers={"Authorization": f"Bearer {_token(issuer, roles=['Reader'])}"}
    )
    assert answer.status_code == 200, answer.text
    seen = answer.json()["headers"]
    assert seen.get("x-keyless-subject") == "caller-sub", seen
    assert seen["x-keyless-roles"] == "Reader"
    assert "authorization" not in seen or seen["authorization"] == ""


def test_no_token_is_401_with_the_bearer_challenge(data_plane: str) -> None:
    answer = httpx.get(f"{data_plane}/blobs/a")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")


def test_a_missing_role_is_403(data_plane: str, issuer: TestIssuer) -> None:
    answer = httpx.get(
        f"{data_plane}/admin/x", headers={"Authorization": f"Bearer {_token(issuer, roles=['Reader'])}"}
    )
    assert answer.status_code == 403


def test_an_unsafe_path_never_reaches_the_service(data_plane: str, issuer: TestIssuer) -> None:
    token = _token(issuer, roles=["Reader"])
    answer = httpx.get(f"{data_plane}/public/..%2fadmin/x", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code in (400, 403)
    assert "x-keyless" not in answer.text


def test_a_spoofed_identity_header_never_reaches_the_service(data_plane: str, issuer: TestIssuer) -> None:
    spoof = {"X-Keyless-Roles": "Admin", "X-Keyless-Subject": "root", "X-Keyless-Email": "ceo@example.com"}
    anonymous = httpx.get(f"{data_plane}/public/page", headers=spoof)
    assert anonymous.status_code == 200, anonymous.text
    seen = anonymous.json()["headers"]
    assert not any(seen.get(name.lower()) for name in spoof), {
        k: v for k, v in seen.items() if "keyless" in k
    }
    signed_in = httpx.get(
        f"{data_plane}/blobs/a",
        headers={**spoof, "Authorization": f"Bearer {_token(issuer, roles=['Reader'])}"},
    )
    seen = signed_in.json()["headers"]
    assert seen["x-keyless-roles"] == "Reader" and seen["x-keyless-subject"] == "caller-sub"
    assert not seen.get("x-keyless-email")


def test_an_issuer_that_is_down_is_503(data_plane: str, down_issuer: TestIssuer) -> None:
    token = down_issuer.mint(aud=AUDIENCE, sub="x", lifetime=600)
    answer = httpx.get(f"{data_plane}/blobs/a", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 503
    assert answer.headers.get("retry-after") == "30"
