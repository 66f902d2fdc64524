"""Resource bounds of every server keyless starts, over real sockets: the authority's app, the
guard's proxy, the metadata emulator and ``keyless dev``'s blob API, each served the way keyless
serves it (``ServerThread`` / ``MetadataServer``, which run :mod:`keyless._boundedhttp`).

``keyless serve`` and ``keyless guard`` (including their worker processes) are checked in
``tests/cli/test_serve.py`` and ``tests/cli/test_guard_workers.py``.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keyless._limits import ServerLimits
from keyless._net import bind_socket
from keyless._serving import ServerThread

TIGHT = ServerLimits(
    max_header_bytes=8 * 1024, max_headers=20, header_timeout=0.6, keep_alive_timeout=0.6, max_connections=4
)
ServerFactory = Callable[[ServerLimits], contextlib.AbstractContextManager[int]]


@contextlib.contextmanager
def _thread(app: Any, limits: ServerLimits, **options: Any) -> Iterator[int]:
    with ServerThread(app, bind_socket("127.0.0.1", 0), limits=limits, **options) as server:
        yield server.port


@contextlib.contextmanager
def _authority(tmp_path: Path, limits: ServerLimits) -> Iterator[int]:
    from keyless.authority._service import Authority
    from keyless.authority.http.app import create_app
    from keyless.config import load_authority_settings

    authority = Authority.open(load_authority_settings(data_dir=tmp_path, tls=False, log_level="warning"))
    try:
        with _thread(create_app(authority), limits) as port:
            yield port
    finally:
        authority.store.close()


@contextlib.contextmanager
def _guard(tmp_path: Path, limits: ServerLimits) -> Iterator[int]:
    from keyless.guard import GuardProxy, config_from_mapping

    config = config_from_mapping(
        {
            "issuers": [{"kind": "oidc", "issuer": "https://issuer.example"}],
            "audiences": ["api://limits"],
            "upstream": "http://127.0.0.1:9",
        }
    )
    with _thread(GuardProxy(config=config), limits, proxy_headers=False) as port:
        yield port


@contextlib.contextmanager
def _metadata(tmp_path: Path, limits: ServerLimits) -> Iterator[int]:
    from keyless.metadata import MetadataServer

    with MetadataServer(limits=limits) as server:
        yield server.port


@contextlib.contextmanager
def _blob_api(tmp_path: Path, limits: ServerLimits) -> Iterator[int]:
    from keyless.dev._blobapi import create_blob_api

    with _thread(create_blob_api(tmp_path / "blobs"), limits) as port:
        yield port


KINDS = {"authority": _authority, "guard": _guard, "metadata": _metadata, "dev-blob-api": _blob_api}


@pytest.fixture(params=sorted(KINDS))
def server(request: pytest.FixtureRequest, tmp_path: Path) -> ServerFactory:
    kind = KINDS[request.param]
    return lambda limits: kind(tmp_path, limits)


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _read_status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data.split(b" ", 2)[1])


def _closed_by_peer(sock: socket.socket, within: float) -> bool:
    """True when the server closes ``sock`` (after any answer) within ``within`` seconds."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")  # pragma: no cover


def test_a_normal_request_is_served(server: ServerFactory) -> None:
    with server(TIGHT) as port:
        response = httpx.get(f"http://127.0.0.1:{port}/", headers={f"x-h{i}": "v" * 100 for i in range(15)})
    assert response.status_code not in (408, 431, 503)


def test_a_100_mb_header_line_is_refused_with_431_early_without_memory_growth(
    server: ServerFactory,
) -> None:
    chunk = b"a" * (1024 * 1024)
    with server(ServerLimits()) as port, _connect(port) as sock:
        before = _rss_bytes()
        sent = 0
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        with contextlib.suppress(OSError):
            while sent < 100 * len(chunk):
                sock.sendall(chunk)
                sent += len(chunk)
        status = _read_status(sock)
        grown = _rss_bytes() - before
    assert status == 431
    assert grown < 40 * 1024 * 1024, f"RSS grew by {grown / 2**20:.0f} MiB"


def test_headers_past_the_byte_limit_get_431_from_a_real_client(server: ServerFactory) -> None:
    with server(TIGHT) as port:
        response = httpx.get(f"http://127.0.0.1:{port}/", headers={"x-big": "b" * (9 * 1024)})
    assert response.status_code == 431


def test_more_header_fields_than_allowed_get_431(server: ServerFactory) -> None:
    with server(TIGHT) as port:
        response = httpx.get(f"http://127.0.0.1:{port}/", headers={f"x-h{i}": "v" for i in range(25)})
    assert response.status_code == 431


def test_a_client_trickling_headers_gets_408_at_the_deadline(server: ServerFactory) -> None:
    with server(TIGHT) as port, _connect(port) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        with contextlib.suppress(OSError):
            for n in range(30):  # one header every 0.1 s would take 3 s
                sock.sendall(b"X-Slow-%d: 1\r\n" % n)
                time.sleep(0.1)
                sock.settimeout(0.001)
                with contextlib.suppress(TimeoutError):
                    if sock.recv(1, socket.MSG_PEEK):
                        break
        sock.settimeout(5)
        status = _read_status(sock)
        elapsed = time.monotonic() - started
    assert status == 408
    assert elapsed < TIGHT.header_timeout + 1


def test_a_connection_that_sends_nothing_is_closed(server: ServerFactory) -> None:
    with server(TIGHT) as port, _connect(port) as sock:
        assert _closed_by_peer(sock, within=TIGHT.header_timeout + 2)


def test_an_idle_keep_alive_connection_is_closed(server: ServerFactory) -> None:
    with server(TIGHT) as port, _connect(port) as sock:
        sock.sendall(b"GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _read_status(sock) != 408
        started = time.monotonic()
        assert _closed_by_peer(sock, within=TIGHT.keep_alive_timeout + 2)
        assert time.monotonic() - started >= TIGHT.keep_alive_timeout * 0.8


def test_requests_past_the_connection_cap_get_503_and_are_served_again_below_it(
    server: ServerFactory,
) -> None:
    limits = ServerLimits(max_connections=4, header_timeout=10)
    with server(limits) as port:
        held = [_connect(port) for _ in range(limits.max_connections)]
        time.sleep(0.2)  # let the server accept them all
        try:
            with _connect(port) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert _read_status(sock) == 503
            held.pop().close()
            time.sleep(0.2)
            with _connect(port) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert _read_status(sock) not in (408, 431, 503)
        finally:
            for sock in held:
                sock.close()


def test_limits_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="max_header_bytes"):
        ServerLimits(max_header_bytes=10)
    with pytest.raises(ValueError, match="positive"):
        ServerLimits(header_timeout=0)


@pytest.mark.parametrize(
    "request_line", [b"GET http://[::1 HTTP/1.1", b"GET / HTTP/1.1\x00", b"G\x01T / HTTP/1.1"]
)
def test_a_malformed_request_still_gets_400(server: ServerFactory, request_line: bytes) -> None:
    with server(TIGHT) as port, _connect(port) as sock:
        sock.sendall(request_line + b"\r\nHost: 127.0.0.1\r\n\r\n")
        assert _read_status(sock) == 400
