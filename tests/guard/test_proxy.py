"""``keyless guard`` as a reverse proxy: the upstream (Starlette) and the proxy both under uvicorn on
127.0.0.1, driven over real sockets. Streaming both ways, the headers forwarded and stripped,
401/403 from the guard, 502/504 from the upstream side, keep-alive connections, the access log."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from tests._support.oidc_issuer import TestIssuer
from tests.guard.conftest import AUDIENCE, closed_port, guard_config, serve

from keyless.guard import GuardProxy
from keyless.tls import ensure_local_tls

RELEASE = threading.Event()  # the streaming endpoint's second chunk waits for it


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "raw_path": request.scope["raw_path"].decode(),
            "query": request.url.query,
            "headers": [[k.decode(), v.decode()] for k, v in request.scope["headers"]],
            "body": body.decode(errors="replace"),
        },
        headers={"X-Upstream": "yes", "Connection": "close, X-Secret-Hop", "X-Secret-Hop": "hop"},
    )


async def upload(request: Request) -> JSONResponse:
    digest, size, chunks = hashlib.sha256(), 0, 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
        chunks += 1
    return JSONResponse({"sha256": digest.hexdigest(), "size": size, "chunks": chunks})


async def stream(request: Request) -> StreamingResponse:
    async def chunks() -> Any:
        yield b"first\n"
        await asyncio.to_thread(RELEASE.wait, 5)
        yield b"second\n"

    return StreamingResponse(chunks(), media_type="text/plain")


async def slow(request: Request) -> Response:
    await asyncio.sleep(3)
    return Response("late")


async def download(request: Request) -> Response:
    size = int(request.query_params["size"])
    return Response(bytes(range(256)) * (size // 256), media_type="application/octet-stream")


async def peer(request: Request) -> JSONResponse:
    client = request.scope["client"]
    return JSONResponse({"port": client[1] if client else None})


async def status(request: Request) -> Response:
    return Response(status_code=int(request.path_params["code"]), headers={"Location": "/elsewhere"})


UPSTREAM = Starlette(
    routes=[
        Route("/echo/{rest:path}", echo, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/stream", stream),
        Route("/slow", slow),
        Route("/status/{code:int}", status),
        Route("/download", download),
        Route("/peer", peer),
    ]
)
POLICY = {
    "anonymous": ["/echo/public/**"],
    "rules": [
        {"path": "/echo/admin/**", "any_of": ["Admin"]},
        {"path": "/**", "allow": "authenticated"},
    ],
}


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    with serve(UPSTREAM, proxy_headers=False) as url:  # keep the guard's own address as the client
        yield url


@pytest.fixture(scope="module")
def module_issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as issuer:
        yield issuer


@pytest.fixture(scope="module")
def guard_url(upstream_url: str, module_issuer: TestIssuer) -> Iterator[str]:
    config = guard_config(module_issuer, policy=POLICY, upstream_timeout=1.0)
    with serve(GuardProxy(upstream_url + "/", config=config)) as url:
        yield url


@pytest.fixture
def client(guard_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=guard_url, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def token(module_issuer: TestIssuer) -> str:
    return module_issuer.mint(
        aud=AUDIENCE,
        sub="caller-sub",
        oid="caller-oid",
        azp="caller-app",
        tid="72f988bf-86f1-41af-91ab-2d7cd011db47",
        roles=["Blob.Read", "Blob.Write"],
        scp="a b",
        lifetime=3600,
    )


def headers_of(response: httpx.Response) -> dict[str, str]:
    return dict(response.json()["headers"])


def test_verified_identity_is_forwarded_and_the_used_token_stripped(client: httpx.Client, token: str) -> None:
    response = client.get("/echo/x?q=1%202", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    seen = headers_of(response)
    assert seen["x-keyless-subject"] == "caller-sub"
    assert seen["x-keyless-object-id"] == "caller-oid"
    assert seen["x-keyless-app-id"] == "caller-app"
    assert seen["x-keyless-tenant-id"] == "72f988bf-86f1-41af-91ab-2d7cd011db47"
    assert seen["x-keyless-roles"] == "Blob.Read,Blob.Write"
    assert seen["x-keyless-scopes"] == "a b"
    assert seen["x-keyless-issuer"].startswith("http://127.0.0.1:")
    assert "authorization" not in seen
    assert response.json()["query"] == "q=1%202"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"].startswith("127.0.0.1:")


def test_x_serverless_authorization_is_used_and_authorization_left_to_the_app(
    client: httpx.Client, token: str
) -> None:
    headers = {"X-Serverless-Authorization": f"Bearer {token}", "Authorization": "Bearer for-the-app"}
    seen = headers_of(client.get("/echo/x", headers=headers))
    assert seen["authorization"] == "Bearer for-the-app"
    assert "x-serverless-authorization" not in seen
    assert seen["x-keyless-subject"] == "caller-sub"


def test_hop_by_hop_headers_are_not_forwarded(client: httpx.Client, token: str) -> None:
    headers = {
        "Authorization": f"Bearer {token}",
        "Connection": "keep-alive, X-Drop-Me",
        "X-Drop-Me": "1",
        "TE": "trailers",
        "Proxy-Authorization": "Basic abc",
        "X-Kept": "2",
    }
    response = client.get("/echo/x", headers=headers)
    seen = headers_of(response)
    for name in ("x-drop-me", "te", "proxy-authorization"):
        assert name not in seen
    assert seen["x-kept"] == "2"
    assert response.headers["x-upstream"] == "yes"
    assert "x-secret-hop" not in response.headers


def test_request_body_streams_to_the_upstream(client: httpx.Client, token: str) -> None:
    def body() -> Iterator[bytes]:
        for index in range(80):
            yield bytes([index]) * 65536

    expected = hashlib.sha256(b"".join(body())).hexdigest()
    response = client.post("/upload", content=body(), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["sha256"] == expected
    assert response.json()["size"] == 80 * 65536
    assert response.json()["chunks"] > 1


def test_the_upstream_sees_only_the_callers_headers(guard_url: str, token: str) -> None:
    request = f"GET /echo/x HTTP/1.1\r\nHost: guarded\r\nAuthorization: Bearer {token}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", int(guard_url.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall(request.encode())
        data = b""
        while not data.endswith(b"}"):
            data += sock.recv(65536)
    seen = dict(json.loads(data.split(b"\r\n\r\n", 1)[1])["headers"])
    assert "accept-encoding" not in seen  # no default headers of the proxy's own HTTP client
    assert "user-agent" not in seen
    assert seen["x-forwarded-host"] == "guarded"


def test_small_bodies_and_methods_pass_through(client: httpx.Client, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    put = client.put("/echo/item", content=b'{"a":1}', headers=auth)
    assert (put.json()["method"], put.json()["body"]) == ("PUT", '{"a":1}')
    assert client.head("/echo/item", headers=auth).status_code == 200
    redirect = client.get("/status/302", headers=auth)
    assert (redirect.status_code, redirect.headers["location"]) == (302, "/elsewhere")


def test_response_body_streams_back(client: httpx.Client, token: str) -> None:
    RELEASE.clear()
    with client.stream("GET", "/stream", headers={"Authorization": f"Bearer {token}"}) as response:
        chunks = response.iter_raw()
        first = next(chunks)
        assert first.startswith(b"first")
        assert not RELEASE.is_set()  # the first chunk arrived while the upstream was still waiting
        RELEASE.set()
        rest = b"".join(chunks)
    assert (first + rest).endswith(b"second\n")


def test_missing_and_bad_tokens_are_401_and_never_forwarded(client: httpx.Client) -> None:
    missing = client.get("/echo/x")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="keyless"'
    bad = client.get("/echo/x", headers={"Authorization": "Bearer not.a.token"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"].startswith('Bearer realm="keyless", error="invalid_token"')
    assert "x-upstream" not in bad.headers


def test_valid_but_not_allowed_is_403(client: httpx.Client, token: str) -> None:
    response = client.get("/echo/admin/panel", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert 'scope="Admin"' in response.headers["www-authenticate"]


def test_anonymous_path_is_forwarded_without_identity(client: httpx.Client) -> None:
    response = client.get("/echo/public/health")
    assert response.status_code == 200
    assert not [n for n in headers_of(response) if n.startswith("x-keyless-")]


def test_upstream_that_is_down_is_502(module_issuer: TestIssuer, token: str) -> None:
    config = guard_config(module_issuer)
    with serve(GuardProxy(f"http://127.0.0.1:{closed_port()}", config=config)) as url:
        response = httpx.get(url + "/anything", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 502
    assert response.json()["error"] == "bad_gateway"


def test_slow_upstream_is_504(client: httpx.Client, token: str) -> None:
    response = client.get("/slow", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 504
    assert response.json()["code"] == "upstream_timeout"


def test_access_log_has_the_decision_and_reason_but_never_the_token(
    client: httpx.Client, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="keyless.guard.access"):
        client.get("/echo/x?secret=1", headers={"Authorization": f"Bearer {token}"})
        client.get("/echo/x", headers={"Authorization": "Bearer " + token[:-4] + "AAAA"})
        client.get("/echo/admin/x", headers={"Authorization": f"Bearer {token}"})
    lines = [r.getMessage() for r in caplog.records if r.name == "keyless.guard.access"]
    assert len(lines) == 3
    allowed, bad, forbidden = lines
    assert allowed.startswith("GET /echo/x 200 allow allowed sub=caller-sub")
    assert "secret" not in allowed  # no query strings
    assert bad.startswith("GET /echo/x 401 deny bad_signature")
    assert 'reason="signature verification failed"' in bad
    assert forbidden.startswith("GET /echo/admin/x 403 deny forbidden")
    assert "needs one of [Admin]" in forbidden
    for record in caplog.records:
        assert token not in record.getMessage()
        assert token.split(".")[2] not in str(record.__dict__)


# -- the upstream connections ----------------------------------------------------------------------


def test_connections_to_the_upstream_are_kept_alive_and_reused(client: httpx.Client, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    ports = {client.get("/peer", headers=auth).json()["port"] for _ in range(20)}
    assert len(ports) == 1


def test_a_large_answer_streams_through_intact(client: httpx.Client, token: str) -> None:
    size = 8 * 1024 * 1024
    response = client.get(f"/download?size={size}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == size == len(response.content)
    assert (
        hashlib.sha256(response.content).digest()
        == hashlib.sha256(bytes(range(256)) * (size // 256)).digest()
    )


def test_an_idle_connection_closed_by_the_upstream_is_replaced(module_issuer: TestIssuer, token: str) -> None:
    config = guard_config(module_issuer)
    with (
        serve(UPSTREAM, timeout_keep_alive=0.2, proxy_headers=False) as upstream,
        serve(GuardProxy(upstream, config=config)) as guard,
        httpx.Client(base_url=guard) as http,
    ):
        auth = {"Authorization": f"Bearer {token}"}
        first = http.get("/peer", headers=auth)
        time.sleep(0.6)  # the upstream drops the idle keep-alive connection
        second = http.get("/peer", headers=auth)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["port"] != second.json()["port"]


@contextmanager
def raw_upstream(answer: bytes) -> Iterator[str]:
    """A TCP server that reads a request head, writes ``answer`` and closes the connection."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def run() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                conn.sendall(answer)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def test_an_answer_delimited_by_closing_the_connection_is_relayed(
    module_issuer: TestIssuer, token: str
) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil the end"
    with (
        raw_upstream(answer) as upstream,
        serve(GuardProxy(upstream, config=guard_config(module_issuer))) as guard,
    ):
        response = httpx.get(guard + "/x", headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, response.text) == (200, "until the end")


def test_an_upstream_that_does_not_speak_http_is_502(module_issuer: TestIssuer, token: str) -> None:
    with (
        raw_upstream(b"SSH-2.0-OpenSSH_9.6\r\n\r\n") as upstream,
        serve(GuardProxy(upstream, config=guard_config(module_issuer))) as guard,
    ):
        response = httpx.get(guard + "/x", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 502
    body = response.json()
    assert body["error"] == "bad_gateway"
    # What went wrong upstream is for the access log, not the caller.
    assert "not valid HTTP" not in body["error_description"]


def test_an_https_upstream_is_trusted_through_the_ca_bundle(
    module_issuer: TestIssuer, token: str, tmp_path: Path
) -> None:
    tls = ensure_local_tls(tmp_path)
    assert tls.ca_cert is not None
    config = guard_config(module_issuer, ca_bundle=str(tls.ca_cert))
    with serve(UPSTREAM, ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key)) as plain:
        upstream = plain.replace("http://127.0.0.1", "https://localhost")
        with serve(GuardProxy(upstream, config=config)) as guard:
            response = httpx.get(guard + "/echo/tls", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert dict(response.json()["headers"])["host"] == upstream.removeprefix("https://")
