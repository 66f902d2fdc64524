"""``keyless serve`` as a real subprocess: HTTPS with the local CA, the trust file applied, the
admin key bootstrapped 0600, a busy port explained, and ``keyless keys`` over the admin API."""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests._support.net import free_port

from keyless.authority.directory.recordable import fingerprint

REPO = Path(__file__).resolve().parents[2]
TENANT = "9b1d7f0e-3c4a-4e5f-8a6b-2c1d0e9f8a7b"


def keyless(*args: str, data_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyless", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "KEYLESS_DATA_DIR": str(data_dir)},
        cwd=REPO,
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "keyless", "serve", "--port", str(port), "--trust", "examples/trust.yaml"],
        env={**os.environ, "KEYLESS_DATA_DIR": str(tmp_path), "KEYLESS_PORT": str(port)},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"https://localhost:{port}"
    ca = tmp_path / "tls" / "ca.pem"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/healthz", verify=ssl.create_default_context(cafile=str(ca)), timeout=1)
            break
        except (httpx.TransportError, OSError):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                output = process.communicate()[0]
                raise AssertionError(output) from None
            time.sleep(0.2)
    try:
        yield base, tmp_path
    finally:
        process.terminate()
        process.wait(15)
        if process.stdout:
            process.stdout.close()


def test_serve_applies_the_trust_file_and_serves_discovery_over_https(served: tuple[str, Path]) -> None:
    base, data_dir = served
    doc = httpx.get(
        f"{base}/contoso.example/v2.0/.well-known/openid-configuration",
        verify=ssl.create_default_context(cafile=str(data_dir / "tls" / "ca.pem")),
    ).json()
    assert doc["issuer"] == f"{base}/{TENANT}/v2.0"
    assert stat.S_IMODE((data_dir / "admin.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "kek.key").stat().st_mode) == 0o600


def test_serve_refuses_a_header_past_the_default_limit_with_431(served: tuple[str, Path]) -> None:
    base, data_dir = served
    context = ssl.create_default_context(cafile=str(data_dir / "tls" / "ca.pem"))
    big = httpx.get(f"{base}/healthz", headers={"x-big": "b" * 40_000}, verify=context)
    assert big.status_code == 431
    assert httpx.get(f"{base}/healthz", headers={"x-fine": "b" * 8_000}, verify=context).status_code == 200


def test_keys_rotate_and_list_find_the_local_server_through_the_data_dir(served: tuple[str, Path]) -> None:
    _, data_dir = served
    rotated = keyless(
        "keys", "rotate", "contoso.example", "--publish-delay", "3600", "--json", data_dir=data_dir
    )
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)
    assert new["state"] == "pending"
    listed = keyless("keys", "list", TENANT, "--json", data_dir=data_dir)
    states = {k["kid"]: k["state"] for k in json.loads(listed.stdout)}
    assert states[new["kid"]] == "pending"
    assert sorted(states.values()) == ["active", "pending"]


def test_busy_port_gives_a_clear_message_and_the_flag_to_change_it(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = keyless("serve", "--port", str(port), data_dir=tmp_path, timeout=30)
    assert result.returncode == 2
    assert "busy" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_configuration_lists_every_problem_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "keyless", "serve"],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "KEYLESS_DATA_DIR": str(tmp_path),
            "KEYLESS_TOKEN_LIFETIME_MIN": "9000",
            "KEYLESS_TLS_CERT": "/x",
        },
        timeout=30,
    )
    assert result.returncode == 2
    assert "LIFETIME" in result.stderr and "TLS_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_two_workers_serve_tokens_and_stop_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keyless",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--trust",
            "examples/trust.yaml",
        ],
        env={**os.environ, "KEYLESS_DATA_DIR": str(tmp_path), "KEYLESS_PORT": str(port)},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                context = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.pem"))
                if (
                    httpx.get(f"https://localhost:{port}/healthz", verify=context, timeout=1).status_code
                    == 200
                ):
                    break
            except (httpx.TransportError, OSError):
                pass
            assert process.poll() is None and time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.2)
        with httpx.Client(verify=context, timeout=5) as client:
            for _ in range(20):  # several connections: both workers take a share
                assert client.get(f"https://localhost:{port}/{TENANT}/discovery/v2.0/keys").status_code == 200
        for _ in range(4):  # the workers run with the same header limit (default 32 KiB)
            with httpx.Client(verify=context, timeout=5) as client:
                big = client.get(f"https://localhost:{port}/healthz", headers={"x-big": "b" * 40_000})
                assert big.status_code == 431
        refused = 12
        for n in range(refused):  # a new connection each: the refusals land on both workers
            with httpx.Client(verify=context, timeout=5) as client:
                answer = client.post(
                    f"https://localhost:{port}/{TENANT}/oauth2/v2.0/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": f"nobody-{n}",
                        "scope": "x/.default",
                    },
                )
                assert answer.status_code in (400, 401)
        # Whichever worker answers the admin API lists both workers' refusals (written through the
        # store within a poll interval).
        admin = {"Authorization": f"Bearer {(tmp_path / 'admin.key').read_text().strip()}"}
        deadline = time.monotonic() + 10
        while True:
            listed = httpx.get(
                f"https://localhost:{port}/admin/v1.0/tenants/{TENANT}/refusals",
                headers=admin,
                verify=context,
            ).json()["value"]
            if len(listed) == refused or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        # Client ids that are not GUIDs are recorded as fingerprints, never verbatim.
        expected = sorted(fingerprint(f"nobody-{n}") for n in range(refused))
        assert sorted(r["clientId"] for r in listed) == expected
    finally:
        process.terminate()
        assert process.wait(20) == 0
