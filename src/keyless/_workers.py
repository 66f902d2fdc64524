"""Several server processes for one port, each with its own ``SO_REUSEPORT`` listening socket, so
the kernel spreads connections evenly (uvicorn's shared accept lets one worker take most keep-alive
connections and leaves the other idle). The parent only supervises: it stops every worker when
asked to stop, or when one of them dies. Used by ``keyless serve`` and ``keyless guard``."""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
from collections.abc import Callable, Mapping
from multiprocessing.process import BaseProcess
from typing import Any

from keyless._logging import configure_logging
from keyless._net import bind_socket

__all__ = ["run_workers"]

log = logging.getLogger("keyless.workers")


def _worker(
    app_factory: Callable[..., Any],
    factory_args: tuple[Any, ...],
    host: str,
    port: int,
    log_level: str,
    options: Mapping[str, Any],
) -> None:
    import uvicorn

    configure_logging(log_level)
    sock = bind_socket(host, port, reuse_port=True)
    config = uvicorn.Config(app_factory(*factory_args), log_level=log_level, access_log=False, **options)
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(
    count: int,
    host: str,
    port: int,
    *,
    app_factory: Callable[..., Any],
    factory_args: tuple[Any, ...] = (),
    log_level: str,
    options: Mapping[str, Any] | None = None,
    name: str = "keyless-worker",
) -> None:
    """Run ``count`` processes serving ``app_factory(*factory_args)`` on ``host:port`` until a signal.

    ``app_factory`` must be a module-level function (workers are spawned, and it is sent by name);
    ``options`` go to ``uvicorn.Config`` (TLS files, ``lifespan``, ``server_header``...).
    """
    context = multiprocessing.get_context("spawn")
    args = (app_factory, factory_args, host, port, log_level, dict(options or {}))
    workers: list[BaseProcess] = [
        context.Process(target=_worker, args=args, name=f"{name}-{n}") for n in range(count)
    ]
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for worker in workers:
            worker.start()
        while not stopping and all(w.is_alive() for w in workers):
            time.sleep(0.2)
        if not stopping:
            log.error("a worker process exited; stopping the others")
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        for worker in workers:
            worker.join(10)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
