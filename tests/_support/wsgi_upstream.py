"""A real WSGI upstream (stdlib ``wsgiref``, CGI-style environ) on 127.0.0.1, and a raw HTTP client
that sends a request target and header names exactly as given (httpx would normalise the path).

``wsgiref`` builds ``HTTP_*`` keys as CGI servers, gunicorn and PHP do: upper case, ``-`` as ``_``.
So ``X_Keyless_Roles`` and ``X-Keyless-Roles`` both arrive as ``HTTP_X_KEYLESS_ROLES``.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def environ_echo(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """Answer with the request as a WSGI app reads it: method, ``PATH_INFO`` and every ``HTTP_*`` key."""
    seen = {
        "method": environ["REQUEST_METHOD"],
        "path_info": environ.get("PATH_INFO", ""),
        "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
    }
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True


@contextmanager
def serve_wsgi(app: WSGIApp) -> Iterator[str]:
    """Serve ``app`` with ``wsgiref`` on a free loopback port in a thread; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, server_class=_Threading, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def raw_request(
    base_url: str, target: str, headers: Iterable[tuple[str, str]] = (), method: str = "GET"
) -> tuple[int, bytes]:
    """Send ``method target`` with ``headers`` byte for byte; the status and the body."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
