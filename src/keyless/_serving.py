"""Running an ASGI app with uvicorn in a background thread on a pre-bound socket: used by
``keyless dev`` (several servers in one process) and by the test suites. Every server runs with
:class:`~keyless._limits.ServerLimits` (the defaults unless given)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from keyless._boundedhttp import server_options
from keyless._limits import ServerLimits
from keyless._logging import UVICORN_LOGGING, with_request_id

__all__ = ["ServerThread"]


class ServerThread:
    """``with ServerThread(app, sock) as server:`` serves until the block ends (or ``stop()``)."""

    def __init__(
        self,
        app: Any,
        sock: socket.socket,
        *,
        certfile: Path | None = None,
        keyfile: Path | None = None,
        log_level: str = "warning",
        name: str = "server",
        limits: ServerLimits | None = None,
        **uvicorn_options: Any,
    ) -> None:
        self.sock = sock
        options: dict[str, Any] = {
            "lifespan": "on",
            "loop": "asyncio",
            "timeout_graceful_shutdown": 1,
            **UVICORN_LOGGING,
        }
        options.update(server_options(limits or ServerLimits()))
        if certfile:
            options.update(ssl_certfile=str(certfile), ssl_keyfile=str(keyfile))
        options.update(uvicorn_options)
        config = uvicorn.Config(with_request_id(app), log_level=log_level, **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name=name, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def start(self, timeout: float = 15) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.thread.name} did not start")
            time.sleep(0.02)
        return self

    def run(self) -> None:
        """Serve in the calling thread until interrupted (Ctrl-C)."""
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(10)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
