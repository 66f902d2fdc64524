"""The emulator's browser-facing defences over real sockets: a 404 never reflects markup, and only
a ``Host`` naming the emulator is served (DNS rebinding)."""

from __future__ import annotations

import socket

import httpx
import pytest

from keyless.metadata import MetadataConfig, MetadataServer
from keyless.metadata._hosts import emulator_hosts, host_name

FLAVOR = {"Metadata-Flavor": "Google"}
TOKEN = "/computeMetadata/v1/instance/service-accounts/default/token"


def _raw_get(port: int, path: str, host: bytes | None) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        head = b"GET " + path.encode() + b" HTTP/1.1\r\nMetadata-Flavor: Google\r\nConnection: close\r\n"
        if host is not None:
            head += b"Host: " + host + b"\r\n"
        sock.sendall(head + b"\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


def test_a_script_in_the_path_is_not_reflected_as_markup(client: httpx.Client) -> None:
    response = client.get("/computeMetadata/v1/x%3Cscript%3Ealert(1)%3C/script%3E", headers=FLAVOR)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text


def test_a_newline_in_the_path_is_escaped_in_the_404_body(client: httpx.Client) -> None:
    response = client.get("/elsewhere%0AInjected: yes", headers=FLAVOR)
    assert response.status_code == 404
    assert "\nInjected" not in response.text


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:80", "127.0.0.1.nip.io", "10.0.0.7"])
def test_a_host_that_does_not_name_the_emulator_is_refused_with_403(
    emulator: MetadataServer, client: httpx.Client, host: str
) -> None:
    response = client.get(TOKEN, headers={**FLAVOR, "Host": host})
    assert response.status_code == 403
    assert "access_token" not in response.text
    assert client.get("/.well-known/openid-configuration", headers={"Host": host}).status_code == 403


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "LOCALHOST:8080", "metadata.google.internal", "metadata.google.internal:80"]
)
def test_the_emulator_s_own_names_are_served(client: httpx.Client, host: str) -> None:
    response = client.get(TOKEN, headers={**FLAVOR, "Host": host})
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


@pytest.mark.parametrize("host", [None, b"", b"a b", b"127.0.0.1:x", b"[::1"])
def test_a_missing_or_malformed_host_is_refused_with_400(
    emulator: MetadataServer, host: bytes | None
) -> None:
    status, body = _raw_get(emulator.port, TOKEN, host)
    assert status == 400, body
    assert b"access_token" not in body


def test_two_host_headers_are_refused_with_400(emulator: MetadataServer) -> None:
    status, _ = _raw_get(emulator.port, TOKEN, b"127.0.0.1\r\nHost: attacker.example")
    assert status == 400


def test_a_configured_public_url_names_the_emulator() -> None:
    config = MetadataConfig(public_url="http://metadata.dev.internal:8080")
    with MetadataServer(config) as server, httpx.Client(base_url=f"http://127.0.0.1:{server.port}") as http:
        assert http.get(TOKEN, headers={**FLAVOR, "Host": "metadata.dev.internal:8080"}).status_code == 200
        assert http.get(TOKEN, headers={**FLAVOR, "Host": "other.dev.internal"}).status_code == 403


def test_the_allowed_names_follow_the_bind_address() -> None:
    assert emulator_hosts("0.0.0.0") == {"localhost", "metadata.google.internal", "127.0.0.1", "::1"}
    assert "192.0.2.4" in emulator_hosts("192.0.2.4")
    assert "::1" in emulator_hosts("[::1]")
    assert host_name("[::1]:80") == "::1"
    assert host_name("Example.COM") == "example.com"
    assert host_name("a@b") is None
