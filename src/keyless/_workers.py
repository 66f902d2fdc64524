"""Serving one port from this process or from several supervised worker processes.

``serve_here`` runs uvicorn in the calling process (``--workers 1``). ``run_workers`` starts
``count`` processes; each slot has its own ``SO_REUSEPORT`` listening socket, so the kernel spreads
connections evenly (uvicorn's shared accept lets one worker take most keep-alive connections and
leaves the other idle). The parent binds each slot's socket and hands it to the slot's worker; when
a worker dies the parent closes that socket at once, so the kernel sends new connections to the
live workers while a replacement starts on a fresh socket (only connections the dead worker had
taken, or that were queued on its socket at that moment, are lost).

The parent supervises:

- a worker that dies is restarted at once, then with a doubling delay (0.5 s up to 30 s) while it
  keeps dying within ``STABLE_SECONDS`` of its start; each death and restart is logged;
- a worker that dies before it ever served (its first start) stops everything: the command fails,
  rather than restarting a configuration that cannot work forever;
- on SIGTERM or SIGINT it drains: it closes its copies of the sockets and sends SIGTERM to every
  worker, which stops accepting, closes idle connections and lets in-flight requests finish for up
  to ``grace`` seconds; a worker still running after that (plus its shutdown) is killed.

Used by ``keyless serve`` and ``keyless guard run``.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from typing import Any

import uvicorn

from keyless import _metrics
from keyless._logging import UVICORN_LOGGING, LogFormat, configure_logging, log_format, with_request_id
from keyless._net import bind_socket
from keyless.errors import ConfigurationError

__all__ = ["BACKOFF_MAX_SECONDS", "STABLE_SECONDS", "run_workers", "serve_here"]

log = logging.getLogger("keyless.workers")

BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
STABLE_SECONDS = 30.0  # a worker that ran this long is healthy again: its next death restarts at once
_SHUTDOWN_MARGIN_SECONDS = 5.0  # past the grace period: the application's own shutdown (lifespan)
_BACKLOG = 2048


class _Server(uvicorn.Server):
    """uvicorn's server, telling the supervisor once it listens."""

    def __init__(self, config: uvicorn.Config, ready: Event | None) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._ready is not None:
            self._ready.set()

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        # uvicorn re-raises a stop signal once it has drained, so the process would end "killed by
        # SIGTERM"; a completed drain is a normal stop here (status 0, as the supervisor's).
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()


def serve_here(
    app: Any,
    sock: socket.socket,
    *,
    log_level: str,
    grace: int,
    options: Mapping[str, Any] | None = None,
    ready: Event | None = None,
) -> None:
    """Serve ``app`` on ``sock`` in this process until SIGTERM or SIGINT, then drain for ``grace`` s.

    ``options`` go to ``uvicorn.Config`` (TLS files, ``lifespan``, ``server_header``...).
    """
    config = uvicorn.Config(
        with_request_id(app),
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=grace,
        **{**UVICORN_LOGGING, **dict(options or {})},
    )
    _Server(config, ready).run(sockets=[sock])


@dataclass(frozen=True)
class _Target:
    """What a worker process builds and serves (pickled to each one)."""

    app_factory: Callable[..., Any]
    factory_args: tuple[Any, ...]
    log_level: str
    log_format: LogFormat
    grace: int
    options: dict[str, Any]


def _worker(target: _Target, sock: socket.socket, ready: Event, others: list[socket.socket]) -> None:
    # A forked child holds copies of every slot's socket: keeping them open would let the kernel
    # queue connections on a dead slot's socket that nobody accepts.
    for other in others:
        other.close()
    for sig in (signal.SIGINT, signal.SIGTERM):  # the supervisor's handlers; uvicorn sets its own
        signal.signal(sig, signal.SIG_DFL)
    _metrics.reset_in_worker()
    configure_logging(target.log_level, target.log_format)
    app = target.app_factory(*target.factory_args)
    serve_here(app, sock, log_level=target.log_level, grace=target.grace, options=target.options, ready=ready)


@dataclass
class _Slot:
    number: int
    sock: socket.socket | None
    process: BaseProcess | None = None
    ready: Event | None = None
    started_at: float = 0.0
    served: bool = False  # some worker in this slot has listened
    announced: bool = False  # the current worker's readiness has been logged
    failures: int = 0  # deaths in a row, each within STABLE_SECONDS of its start
    restart_at: float = field(default=0.0)


def _listen(host: str, port: int) -> socket.socket:
    sock = bind_socket(host, port, reuse_port=True)
    sock.listen(_BACKLOG)
    return sock


def _how_it_ended(process: BaseProcess) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def _backoff(failures: int) -> float:
    if failures <= 1:
        return 0.0
    return min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2.0 ** (failures - 2))


class _Supervisor:
    def __init__(
        self, context: Any, target: _Target, slots: list[_Slot], name: str, address: tuple[str, int]
    ) -> None:
        self.context = context
        self.target = target
        self.slots = slots
        self.name = name
        self.address = address
        self.stopping = False

    def start(self, slot: _Slot) -> None:
        """Start the slot's worker, on a fresh socket if its last one was closed."""
        if slot.sock is None:
            try:
                slot.sock = _listen(*self.address)
            except ConfigurationError as exc:
                slot.failures += 1
                delay = max(BACKOFF_FIRST_SECONDS, _backoff(slot.failures))
                log.error("worker %d cannot listen again (%s); retrying in %.1f s", slot.number, exc, delay)
                slot.restart_at = time.monotonic() + delay
                return
        slot.ready = self.context.Event()
        others = [other.sock for other in self.slots if other is not slot and other.sock is not None]
        slot.process = self.context.Process(
            target=_worker,
            args=(self.target, slot.sock, slot.ready, others),
            name=f"{self.name}-{slot.number}",
        )
        slot.process.start()
        slot.started_at = time.monotonic()
        slot.announced = False

    def check(self, slot: _Slot) -> bool:
        """Notice readiness and deaths; False when a first start failed (the command must stop)."""
        process = slot.process
        if process is None:
            if time.monotonic() >= slot.restart_at:
                self.start(slot)
            return True
        if slot.ready is not None and slot.ready.is_set() and not slot.announced:
            slot.announced = slot.served = True
            log.info(
                "worker %d (pid %s) is serving",
                slot.number,
                process.pid,
                extra={"worker": slot.number, "worker_pid": process.pid},
            )
        if process.is_alive():
            return True
        process.join()
        if process.pid is not None:
            _metrics.worker_died(process.pid)
        if slot.sock is not None:  # new connections go to the live workers until the replacement listens
            slot.sock.close()
            slot.sock = None
        how = _how_it_ended(process)
        if not slot.served:
            log.error("worker %d (pid %s) %s before it could serve; stopping", slot.number, process.pid, how)
            return False
        lived = time.monotonic() - slot.started_at
        slot.failures = 1 if lived >= STABLE_SECONDS else slot.failures + 1
        delay = _backoff(slot.failures)
        log.warning(
            "worker %d (pid %s) %s after %.1f s; restarting it in %.1f s",
            slot.number,
            process.pid,
            how,
            lived,
            delay,
            extra={"worker": slot.number, "worker_pid": process.pid, "restart_in": delay},
        )
        slot.process = None
        slot.restart_at = time.monotonic() + delay
        if delay == 0:
            self.start(slot)
        return True

    def sentinels(self) -> list[int]:
        return [slot.process.sentinel for slot in self.slots if slot.process is not None]

    def drain(self) -> None:
        for slot in self.slots:
            if slot.sock is not None:
                slot.sock.close()  # the workers' copies close as they stop: the port stops accepting
        running = [
            slot.process for slot in self.slots if slot.process is not None and slot.process.is_alive()
        ]
        log.info("draining %d worker(s): in-flight requests get %.1f s", len(running), self.target.grace)
        for process in running:
            process.terminate()
        deadline = time.monotonic() + self.target.grace + _SHUTDOWN_MARGIN_SECONDS
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker pid %s did not stop within the grace period; killing it", process.pid)
                process.kill()
                process.join(5)


def run_workers(
    count: int,
    host: str,
    port: int,
    *,
    app_factory: Callable[..., Any],
    factory_args: tuple[Any, ...] = (),
    log_level: str,
    grace: int = 10,
    options: Mapping[str, Any] | None = None,
    name: str = "keyless-worker",
) -> int:
    """Serve ``app_factory(*factory_args)`` from ``count`` supervised processes on ``host:port`` until
    SIGTERM or SIGINT; the exit status for the command (0 after a drain, 1 if a worker never started).

    Each worker is forked from this process, which has imported ``app_factory``'s module and uvicorn
    (so a restart takes milliseconds), and builds its own application from ``factory_args``. The
    caller must hold no open database connections or threads when it calls this. Workers are direct
    children, so tools that sum a server's CPU over its children (``pgrep -P``) see all of it.
    """
    context = multiprocessing.get_context("fork")
    metrics_dir = _metrics.prepare_multiprocess()  # one set of metrics for all the workers
    target = _Target(app_factory, tuple(factory_args), log_level, log_format(), grace, dict(options or {}))
    slots = [_Slot(number, _listen(host, port)) for number in range(count)]
    supervisor = _Supervisor(context, target, slots, name, (host, port))

    def stop(signum: int, frame: Any) -> None:
        supervisor.stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    status = 0
    try:
        for slot in slots:
            supervisor.start(slot)
        while not supervisor.stopping:
            wait(supervisor.sentinels(), timeout=0.1)
            if not all(supervisor.check(slot) for slot in slots):
                status = 1
                break
    finally:
        supervisor.drain()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _metrics.cleanup_multiprocess(metrics_dir)
    return status
