"""Free loopback ports for tests that start real servers in other processes, and a one-line
HTTP handler for tiny upstreams."""

from __future__ import annotations

import socket
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free right now (all bound at once so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def text_handler(body: Callable[[BaseHTTPRequestHandler], bytes]) -> type[BaseHTTPRequestHandler]:
    """A quiet ``http.server`` handler answering every GET with 200 and ``body(request)`` as text."""

    class _Text(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            payload = body(self)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return _Text
