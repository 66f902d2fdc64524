"""An ASGI application whose process dies on every request (``os._exit``), as a worker with a fatal
bug would: for the supervisor's restart back-off tests. Served by ``python -m
tests._support.crashing_app PORT`` with one supervised worker."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        os._exit(3)


def crashing_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    return _app


if __name__ == "__main__":
    from keyless._logging import configure_logging
    from keyless._workers import run_workers

    configure_logging("info")
    options = {"lifespan": "off"}
    sys.exit(
        run_workers(
            1,
            "127.0.0.1",
            int(sys.argv[1]),
            app_factory=crashing_app,
            log_level="info",
            grace=1,
            options=options,
        )
    )
