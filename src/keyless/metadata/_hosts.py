"""Which ``Host`` values the emulator answers: a defence against DNS rebinding.

A web page can make a browser send requests to ``127.0.0.1:PORT`` under a name the attacker
controls (the name first resolves to the attacker's server, then to the loopback address). The
browser then sends that name in ``Host``. The emulator hands out tokens, so it answers only
requests whose ``Host`` names it: its bind address, ``localhost``, ``metadata.google.internal``
(the real server's name) and the host of a configured ``public_url``. Ports are not compared:
the name is what a rebinding attack cannot fake.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HostCheck", "emulator_hosts", "host_name"]

_ALWAYS = ("localhost", "metadata.google.internal")
_WILDCARDS = ("", "0.0.0.0", "::")  # noqa: S104 - names of the wildcard address, compared, not bound
_LOOPBACK = ("127.0.0.1", "::1")


def emulator_hosts(bind_host: str, public_url: str | None = None) -> frozenset[str]:
    """The host names the emulator answers to when bound to ``bind_host``.

    Bound to a wildcard address it answers the loopback addresses; other names it is reached by
    (a LAN address, a container host name) are given through ``public_url``.
    """
    names = set(_ALWAYS)
    bind = bind_host.strip("[]").lower()
    names.update(_LOOPBACK if bind in _WILDCARDS else (bind,))
    if public_url:
        public = urlsplit(public_url).hostname
        if public:
            names.add(public.lower())
    return frozenset(names)


def host_name(value: str) -> str | None:
    """The name part of a ``Host`` header value (lower case, IPv6 without brackets); ``None`` if
    the value is not a well-formed ``host[:port]``."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return name or None
    name, colon, port = value.partition(":")
    if colon and not port.isdigit():
        return None
    if not name or any(c in name for c in "/\\@ \t?#"):
        return None
    return name


class HostCheck:
    """Pure ASGI middleware: 400 without a well-formed ``Host``, 403 for one not in ``allowed``."""

    def __init__(self, app: ASGIApp, allowed: Collection[str]) -> None:
        self.app = app
        self.allowed = frozenset(name.lower() for name in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        values = [v for k, v in scope["headers"] if k == b"host"]
        name = host_name(values[0].decode("latin-1")) if len(values) == 1 else None
        if name is None:
            await _plain(send, 400, "Bad Request: a single well-formed Host header is required\n")
        elif name not in self.allowed:
            await _plain(send, 403, "Forbidden: this Host is not served by the metadata emulator\n")
        else:
            await self.app(scope, receive, send)


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode("ascii")
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"x-content-type-options", b"nosniff"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
