"""A client that leaves in the middle of a large answer: the guard stops reading the upstream and
closes that connection, instead of draining the rest (a 200 MB body once ran to its end)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route
from tests._support.oidc_issuer import TestIssuer
from tests.guard.conftest import AUDIENCE, guard_config, serve

from keyless.guard import GuardProxy

SIZE = 200 * 1024 * 1024
CHUNK = 64 * 1024
produced: list[int] = [0]
finished: list[str] = []


async def huge(request: Request) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        try:
            for _ in range(SIZE // CHUNK):
                produced[0] += CHUNK
                yield b"x" * CHUNK
                await asyncio.sleep(0.001)
            finished.append("complete")
        finally:
            if not finished:
                finished.append("stopped")

    return StreamingResponse(
        body(), headers={"Content-Length": str(SIZE)}, media_type="application/octet-stream"
    )


UPSTREAM = Starlette(routes=[Route("/huge", huge)])


def test_the_upstream_stops_being_read_when_the_client_leaves() -> None:
    with TestIssuer() as issuer, serve(UPSTREAM) as upstream:
        token = issuer.mint(aud=AUDIENCE, sub="caller", lifetime=600)
        with serve(GuardProxy(upstream, config=guard_config(issuer))) as guard:
            address = urlsplit(guard)
            with socket.create_connection((address.hostname, address.port), timeout=10) as client:
                client.sendall(
                    f"GET /huge HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
                )
                received = 0
                while received < 1024 * 1024:
                    received += len(client.recv(65536))
            deadline = time.monotonic() + 10
            while not finished and time.monotonic() < deadline:
                time.sleep(0.05)
    assert finished == ["stopped"]
    assert produced[0] < SIZE // 4
