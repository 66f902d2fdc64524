"""The admin API's gate, over real HTTPS: the admin key is checked before the body is read, and
bodies are bounded (a declared or streamed body past the cap gets 413 without being buffered)."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tests._support.authority_server import RunningAuthority, run_authority

CAP = 64 * 1024


@pytest.fixture
def small_cap_authority(tmp_path: Path) -> Iterator[RunningAuthority]:
    with run_authority(tmp_path / "authority", admin_max_body_bytes=CAP) as running:
        yield running


@contextmanager
def raw_connection(running: RunningAuthority) -> Iterator[ssl.SSLSocket]:
    port = int(running.base_url.rsplit(":", 1)[1])
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with running.ssl_context().wrap_socket(raw, server_hostname="localhost") as tls:
        yield tls


def read_status(sock: ssl.SSLSocket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head + b"\r\n\r\n" + rest


def request_head(path: str, extra: str) -> bytes:
    return (
        f"POST /admin/v1.0{path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{extra}\r\n"
    ).encode()


def test_an_unauthenticated_200_mb_post_is_refused_401_before_its_body_is_read(
    small_cap_authority: RunningAuthority,
) -> None:
    with raw_connection(small_cap_authority) as sock:
        # The body is declared but never sent: a server that read it first would wait forever.
        sock.sendall(request_head("/tenants", f"Content-Length: {200 * 1024 * 1024}\r\n"))
        started = time.monotonic()
        status, head = read_status(sock)
    assert status == 401
    assert b"www-authenticate: bearer" in head.lower()
    assert time.monotonic() - started < 3


def test_an_unauthenticated_chunked_post_is_refused_401_before_its_body_is_read(
    small_cap_authority: RunningAuthority,
) -> None:
    with raw_connection(small_cap_authority) as sock:
        sock.sendall(request_head("/tenants", "Transfer-Encoding: chunked\r\n") + b'f\r\n{"displayName":\r\n')
        status, _ = read_status(sock)
    assert status == 401


def test_a_wrong_admin_key_is_refused_401_before_its_body_is_read(
    small_cap_authority: RunningAuthority,
) -> None:
    with raw_connection(small_cap_authority) as sock:
        sock.sendall(
            request_head("/tenants", "Authorization: Bearer not-the-key\r\nContent-Length: 999999\r\n")
        )
        status, _ = read_status(sock)
    assert status == 401


def test_an_authenticated_body_declared_past_the_cap_is_refused_413_at_once(
    small_cap_authority: RunningAuthority,
) -> None:
    key = small_cap_authority.admin_key()
    with raw_connection(small_cap_authority) as sock:
        sock.sendall(
            request_head("/tenants", f"Authorization: Bearer {key}\r\nContent-Length: {CAP + 1}\r\n")
        )
        status, response = read_status(sock)
        while chunk := sock.recv(65536):  # the refusal closes the connection
            response += chunk
    assert status == 413
    assert b"RequestEntityTooLarge" in response


def test_an_authenticated_chunked_body_is_cut_off_413_once_it_passes_the_cap(
    small_cap_authority: RunningAuthority,
) -> None:
    key = small_cap_authority.admin_key()
    sent = 0

    def endless() -> Iterator[bytes]:
        nonlocal sent
        chunk = b"x" * 16384
        for _ in range(10_000):  # 160 MB if nobody stops it
            sent += len(chunk)
            yield chunk

    with httpx.Client(verify=small_cap_authority.ssl_context(), timeout=10) as client:
        try:
            response = client.post(
                small_cap_authority.base_url + "/admin/v1.0/tenants",
                content=endless(),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
        except httpx.TransportError:
            response = None  # the server closed while we were still writing: also a refusal
    if response is not None:
        assert response.status_code == 413
    assert sent < 64 * 1024 * 1024  # far short of the 160 MB the client would have sent


def test_an_authenticated_body_under_the_cap_is_served(small_cap_authority: RunningAuthority) -> None:
    key = small_cap_authority.admin_key()
    with httpx.Client(verify=small_cap_authority.ssl_context(), timeout=10) as client:
        response = client.post(
            small_cap_authority.base_url + "/admin/v1.0/tenants",
            content=json.dumps({"displayName": "Gate Test"}),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
    assert response.status_code == 201, response.text


def test_the_openapi_document_stays_public(small_cap_authority: RunningAuthority) -> None:
    with httpx.Client(verify=small_cap_authority.ssl_context(), timeout=10) as client:
        response = client.get(small_cap_authority.base_url + "/admin/openapi.json")
    assert response.status_code == 200


def test_a_local_clients_x_forwarded_for_does_not_change_the_logged_peer(
    small_cap_authority: RunningAuthority, caplog: pytest.LogCaptureFixture
) -> None:
    with httpx.Client(verify=small_cap_authority.ssl_context(), timeout=10) as client:
        response = client.get(
            small_cap_authority.base_url + "/admin/v1.0/tenants",
            headers={"Authorization": "Bearer wrong", "X-Forwarded-For": "203.0.113.9"},
        )
    assert response.status_code == 401
    messages = [r.getMessage() for r in caplog.records if "bad admin key" in r.getMessage()]
    assert messages == ["admin API: refused a bad admin key from 127.0.0.1"]
