"""Listening sockets for keyless's servers: a clear error for a busy port, and ``SO_REUSEPORT``
sockets so several worker processes each accept their own share of connections."""

from __future__ import annotations

import errno
import socket

from keyless.errors import ConfigurationError

__all__ = ["bind_socket"]


def bind_socket(host: str, port: int, *, reuse_port: bool = False, flag: str = "--port") -> socket.socket:
    """A socket bound to ``host:port`` (not yet listening); a busy port names the flag to change it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says so; without it every response waits for Nagle and a delayed ACK (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(f"port {port} on {host} is busy: pick another with {flag}") from None
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock
