"""Fixtures for the guard's tests: test issuers on 127.0.0.1, configurations for them, a verifier
with an injectable key-cache clock, and ASGI apps served by uvicorn in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from tests._support.oidc_issuer import TestIssuer

from keyless.guard import GuardConfig, Verifier, config_from_mapping
from keyless.trust import IssuerKeyCache

AUDIENCE = "api://blob-api"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "0d5c4f0e-8f6a-4b4e-9d9a-2a1c3e4f5a6b"


class FakeClock:
    """Monotonic seconds for the key cache, moved by hand (the cooldown without sleeping)."""

    def __init__(self) -> None:
        self.now = 50_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def guard_config(issuer: TestIssuer | None = None, **overrides: Any) -> GuardConfig:
    """A configuration trusting ``issuer`` (an ``oidc`` issuer) for AUDIENCE, over http loopback."""
    data: dict[str, Any] = {
        "issuers": [{"kind": "oidc", "issuer": issuer.url}] if issuer is not None else [],
        "audiences": [AUDIENCE],
        "allow_http_loopback_issuers": True,
    }
    data.update(overrides)
    return config_from_mapping(data)


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as running:
        yield running


@pytest.fixture
def key_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def verifier(issuer: TestIssuer, key_clock: FakeClock) -> AsyncIterator[Verifier]:
    """A verifier for ``issuer`` whose key cache runs on ``key_clock`` (cooldown 60 s)."""
    keys = IssuerKeyCache(allow_http_loopback=True, clock=key_clock, min_refresh_interval=60)
    async with keys, Verifier(guard_config(issuer), key_cache=keys) as made:
        yield made


# -- serving ASGI apps on real sockets -------------------------------------------------------------


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: Any, *, lifespan: str = "on", **settings: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a daemon thread; yield its base URL."""
    sock = _bound_socket()
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan=lifespan, timeout_graceful_shutdown=1, **settings)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
