"""``keyless guard run`` as a real subprocess: several SO_REUSEPORT workers verify and forward, a busy
port is explained, and SIGTERM stops every process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from tests._support.net import free_port, text_handler
from tests._support.oidc_issuer import TestIssuer
from tests._support.processes import worker_pids

REPO = Path(__file__).resolve().parents[2]
AUDIENCE = "api://blob-api"


# Answers with the subject and the X-Forwarded-For the guard forwarded.
_Upstream = text_handler(
    lambda request: (
        f"{request.headers.get('X-Keyless-Subject')}|{request.headers.get('X-Forwarded-For')}".encode()
    )
)


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _config(tmp_path: Path, issuer: TestIssuer) -> Path:
    path = tmp_path / "guard.yaml"
    path.write_text(
        f"issuers:\n  - kind: oidc\n    issuer: {issuer.url}\naudiences: [{AUDIENCE}]\n"
        "allow_http_loopback_issuers: true\npolicy:\n  rules:\n    - path: /**\n      allow: authenticated\n"
    )
    return path


def _workers(pid: int, expected: int = 2) -> list[int]:
    """The worker processes under ``pid``, once ``expected`` of them are up (or 10 s have passed)."""
    deadline = time.monotonic() + 10
    while len(found := worker_pids(pid)) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _guard(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "keyless", "guard", "run", *args],
        cwd=REPO,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_until_listening(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(process.communicate()[0]) from None
            time.sleep(0.1)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="counts worker processes through /proc")
def test_two_guard_workers_verify_forward_and_stop_on_sigterm(tmp_path: Path, upstream: str) -> None:
    with TestIssuer() as issuer:
        port = free_port()
        process = _guard(
            "--upstream", upstream, "--config", str(_config(tmp_path, issuer)), "--port", str(port), "--workers", "2"
        )  # fmt: skip
        try:
            _wait_until_listening(port, process)
            assert len(_workers(process.pid)) == 2
            token = issuer.mint(sub="caller", aud=AUDIENCE)
            # New connections each time: the kernel spreads them over both workers' sockets.
            for _ in range(12):
                with httpx.Client(timeout=5) as client:
                    passed = client.get(
                        f"http://127.0.0.1:{port}/blobs/a",
                        headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": "203.0.113.9"},
                    )
                    # The claimed address is kept, and the real peer appended: not replaced by it.
                    assert (passed.status_code, passed.text) == (200, "caller|203.0.113.9, 127.0.0.1")
                    refused = client.get(f"http://127.0.0.1:{port}/blobs/a")
                    assert refused.status_code == 401
                    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
                    # every worker bounds the request head (default 32 KiB)
                    big = client.get(f"http://127.0.0.1:{port}/blobs/a", headers={"x-big": "b" * 40_000})
                    assert big.status_code == 431
        finally:
            workers = _workers(process.pid) if process.poll() is None else []
            process.send_signal(signal.SIGTERM)
            assert process.wait(20) == 0
            if process.stdout:
                process.stdout.close()
        for pid in workers:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_a_busy_port_names_the_flag_to_change_it(tmp_path: Path, upstream: str) -> None:
    with TestIssuer() as issuer, socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = _guard(
            "--upstream", upstream, "--config", str(_config(tmp_path, issuer)), "--port", str(port)
        )
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 2
    assert "busy" in output and "--port" in output
    assert "Traceback" not in output
