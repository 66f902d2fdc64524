"""Supervised workers (``keyless/_workers.py``), through ``keyless guard run`` as a real process:
a worker killed under load is replaced within 2 s while the port keeps answering, SIGTERM drains
(stop accepting, let in-flight requests finish), and a worker that cannot start stops the command."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from tests._support.net import free_port
from tests._support.oidc_issuer import TestIssuer
from tests._support.processes import Record, Server, is_gone, worker_pids

from keyless._workers import BACKOFF_MAX_SECONDS, _backoff, run_workers

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds workers through /proc")

AUDIENCE = "api://workers-api"
SLOW_PATH = "/slow"
SLOW_SECONDS = 1.5


@dataclass
class Upstream:
    url: str
    slow_started: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A tiny API: ``/slow`` answers after SLOW_SECONDS, everything else at once."""
    state = Upstream("")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == SLOW_PATH:
                state.slow_started.set()
                time.sleep(SLOW_SECONDS)
            body = f"done {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Quiet(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the killed worker's in-flight request: its connection is gone

    server = Quiet(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Guard:
    server: Server
    url: str
    token: str
    port: int


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as running:
        yield running


def _guard(tmp_path: Path, issuer: TestIssuer, upstream: Upstream, workers: int, grace: int = 10) -> Guard:
    config = tmp_path / "guard.yaml"
    config.write_text(
        f"issuers:\n  - kind: oidc\n    issuer: {issuer.url}\naudiences: [{AUDIENCE}]\n"
        "allow_http_loopback_issuers: true\npolicy:\n  rules:\n    - path: /**\n      allow: authenticated\n"
    )
    port = free_port()
    args = ["guard", "run", "--upstream", upstream.url, "--config", str(config), "--port", str(port)]
    server = Server([*args, "--workers", str(workers)], env={"KEYLESS_SHUTDOWN_GRACE": str(grace)})
    server.wait_listening("127.0.0.1", port)
    if workers > 1:
        server.serving_workers(workers)
    return Guard(server, f"http://127.0.0.1:{port}", issuer.mint(sub="load", aud=AUDIENCE), port)


@dataclass
class Load:
    """Client threads each sending one request at a time until stopped (or a bound is reached)."""

    url: str
    token: str
    stop: threading.Event = field(default_factory=threading.Event)
    successes: list[float] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def _record(self, client: httpx.Client) -> None:
        try:
            answer = client.get(f"{self.url}/items", headers={"Authorization": f"Bearer {self.token}"})
        except httpx.HTTPError as exc:
            self.errors.append((time.monotonic(), repr(exc)))
            return
        if answer.status_code == 200:
            self.successes.append(time.monotonic())
        else:
            self.errors.append((time.monotonic(), f"{answer.status_code} {answer.text[:200]}"))

    def _keep_alive(self) -> None:
        with httpx.Client(timeout=5) as client:
            for _ in range(5000):
                if self.stop.is_set():
                    return
                self._record(client)

    def _new_connections(self) -> None:
        for _ in range(5000):
            if self.stop.is_set():
                return
            with httpx.Client(timeout=5) as client:
                self._record(client)

    def start(self, keep_alive: int, new_connections: int) -> None:
        targets = [self._keep_alive] * keep_alive + [self._new_connections] * new_connections
        self.threads = [threading.Thread(target=target, daemon=True) for target in targets]
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


def test_a_killed_worker_is_back_within_two_seconds_and_only_its_in_flight_requests_fail(
    tmp_path: Path, issuer: TestIssuer, upstream: Upstream
) -> None:
    guard = _guard(tmp_path, issuer, upstream, workers=2)
    with guard.server:
        victim = guard.server.serving_workers(2)[0]
        load = Load(guard.url, guard.token)
        load.start(keep_alive=1, new_connections=2)
        try:
            time.sleep(1.0)
            before = len(load.successes)
            assert before > 0, load.errors
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            back = guard.server.wait_for(
                lambda r: r.get("worker") == 0 and "is serving" in r["message"] and r["worker_pid"] != victim,
                timeout=10,
            )
            restart = back["_seen"] - killed_at
            time.sleep(1.0)
        finally:
            load.finish()
        assert restart < 2.0, f"worker 0 back after {restart:.2f} s"
        # The port kept answering while the worker was away (the kernel sent new connections to the
        # live worker), and after it came back.
        assert any(killed_at < t < back["_seen"] for t in load.successes)
        assert any(t > back["_seen"] for t in load.successes)
        # Each client thread has one request in flight at a time: at most that one, at the moment
        # of the kill, may fail; nothing later does.
        assert len(load.errors) <= len(load.threads), load.errors
        assert all(t - killed_at < 0.5 for t, _ in load.errors), load.errors
        died = guard.server.find(lambda r: r.get("worker_pid") == victim and "SIGKILL" in r["message"])
        assert died and died[0]["level"] == "warning" and died[0]["restart_in"] == 0
        assert len(guard.server.serving_workers(2)) == 2
        assert guard.server.stop() == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_stops_accepting_and_lets_a_slow_request_finish(
    tmp_path: Path, issuer: TestIssuer, upstream: Upstream, workers: int
) -> None:
    guard = _guard(tmp_path, issuer, upstream, workers=workers)
    with guard.server:
        pids = worker_pids(guard.server.process.pid)
        result: dict[str, httpx.Response | Exception] = {}

        def slow() -> None:
            try:
                result["answer"] = httpx.get(
                    f"{guard.url}{SLOW_PATH}", headers={"Authorization": f"Bearer {guard.token}"}, timeout=10
                )
            except Exception as exc:
                result["answer"] = exc

        thread = threading.Thread(target=slow)
        thread.start()
        assert upstream.slow_started.wait(10)
        sent_at = time.monotonic()
        guard.server.process.send_signal(signal.SIGTERM)
        refused = False
        while time.monotonic() - sent_at < SLOW_SECONDS - 0.3 and not refused:
            try:  # new connections are refused while the slow request is still running
                with socket.create_connection(("127.0.0.1", guard.port), timeout=0.2):
                    time.sleep(0.05)
            except OSError:
                refused = True
        thread.join(15)
        answer = result["answer"]
        assert isinstance(answer, httpx.Response), answer
        assert (answer.status_code, answer.text) == (200, f"done {SLOW_PATH}")
        assert refused, "the port still accepted connections while draining"
        assert guard.server.process.wait(15) == 0, guard.server.output()
        assert all(is_gone(pid) for pid in pids)


def test_a_request_still_running_after_the_grace_period_is_cancelled(
    tmp_path: Path, issuer: TestIssuer, upstream: Upstream
) -> None:
    guard = _guard(tmp_path, issuer, upstream, workers=2, grace=0)
    with guard.server:
        result: dict[str, httpx.Response | Exception] = {}

        def slow() -> None:
            try:
                result["answer"] = httpx.get(
                    f"{guard.url}{SLOW_PATH}", headers={"Authorization": f"Bearer {guard.token}"}, timeout=10
                )
            except httpx.HTTPError as exc:
                result["answer"] = exc

        thread = threading.Thread(target=slow)
        thread.start()
        assert upstream.slow_started.wait(10)
        sent_at = time.monotonic()
        guard.server.process.send_signal(signal.SIGTERM)
        assert guard.server.process.wait(15) == 0, guard.server.output()
        stopped_after = time.monotonic() - sent_at
        thread.join(15)
    assert stopped_after < SLOW_SECONDS - 0.2, f"stopped after {stopped_after:.2f} s: the request was awaited"
    answer = result["answer"]
    assert not (isinstance(answer, httpx.Response) and answer.status_code == 200), answer
    assert guard.server.find(lambda r: "timeout graceful shutdown exceeded" in r["message"])


def test_a_worker_that_keeps_dying_is_restarted_with_a_growing_delay() -> None:
    port = free_port()
    argv = [sys.executable, "-m", "tests._support.crashing_app", str(port)]
    with Server([], argv=argv) as server:
        deaths: list[Record] = []
        serving: list[Record] = []
        for _ in range(3):
            server.wait_listening("127.0.0.1", port)
            with pytest.raises(httpx.TransportError):  # the request kills the worker
                httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
            count = len(deaths) + 1
            deaths = server.wait_for_all(lambda r: "restarting it in" in r["message"], count, timeout=10)
            serving = server.wait_for_all(lambda r: "is serving" in r["message"], count + 1, timeout=10)
        assert [d["restart_in"] for d in deaths] == [0.0, 0.5, 1.0]
        assert len(serving) == 3 + 1
        # Each replacement listened only after its delay.
        for death, back in zip(deaths, serving[1:], strict=True):
            assert back["_seen"] - death["_seen"] >= death["restart_in"] - 0.05
        assert server.stop() == 0


def test_backoff_restarts_at_once_then_doubles_up_to_a_ceiling() -> None:
    delays = [_backoff(failures) for failures in range(1, 12)]
    assert delays[:5] == [0.0, 0.5, 1.0, 2.0, 4.0]
    assert max(delays) == BACKOFF_MAX_SECONDS == delays[-1]


def broken_app() -> object:
    """An application factory that fails in the worker, as a bad deployment would."""
    raise RuntimeError("cannot build the application")


def test_a_worker_that_cannot_start_stops_the_command_with_status_1(caplog: pytest.LogCaptureFixture) -> None:
    started = time.monotonic()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    supervisor_log = logging.getLogger("keyless.workers")  # may not propagate (configure_logging)
    supervisor_log.addHandler(caplog.handler)
    try:
        status = run_workers(2, "127.0.0.1", port, app_factory=broken_app, log_level="warning", grace=1)
    finally:
        supervisor_log.removeHandler(caplog.handler)
    assert status == 1
    assert time.monotonic() - started < 20
    assert any("before it could serve" in r.getMessage() for r in caplog.records)
