"""uvicorn's httptools protocol with the bounds it lacks, for every server keyless starts.

What uvicorn (0.3x-0.5x) offers and lacks, per protocol:

* ``httptools`` (the one keyless runs): no limit on header size (llhttp hands a header over in
  pieces and the Python wrapper joins them, so a 100 MB header line is held in memory), none on
  the number of headers, no deadline for reading a request (a new connection that sends nothing,
  or a client that trickles one header every few seconds, is kept for ever), an idle keep-alive
  timeout after a response (``timeout_keep_alive``), and ``limit_concurrency`` (503 once the
  process holds that many connections or tasks).
* ``h11``: ``h11_max_incomplete_event_size`` bounds the request head but answers 400, not 431;
  no header count, no header deadline; the same keep-alive timeout and concurrency limit.

:class:`BoundedHttpProtocol` adds, on top of ``httptools``:

* request line plus headers counted as they arrive, before the parser sees them: past
  ``max_header_bytes`` the answer is ``431`` and nothing more is buffered;
* more than ``max_headers`` header fields: ``431``;
* one deadline per request head (``header_timeout``), armed at the first byte (or when the
  connection opens) and never extended by further bytes: a slow head gets ``408``, a connection
  that sent nothing is closed;
* after a refusal the connection reads and discards for a moment before closing, so the client
  receives the answer instead of a reset.

:func:`server_options` turns :class:`~keyless._limits.ServerLimits` into ``uvicorn.Config`` options
(this protocol, ``timeout_keep_alive``, ``limit_concurrency``) for every way keyless runs uvicorn.
"""

from __future__ import annotations

import asyncio
import functools
import http
import logging
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from keyless._limits import ServerLimits
from keyless._writecoalescing import CoalescingTransport

__all__ = ["BoundedHttpProtocol", "server_options"]

log = logging.getLogger("keyless.server")

# How long a refused connection keeps draining what the client still sends, so that closing it
# does not reset the connection before the client has read the refusal.
LINGER_SECONDS = 1.0


class _Refusal(Exception):
    """Raised inside a parser callback to stop parsing and answer ``status``."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class BoundedHttpProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with header size, header count and header-read-time bounds."""

    def __init__(self, *args: Any, limits: ServerLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._head_bytes = 0  # bytes of the current request head seen so far
        self._head_fields = 0
        self._in_body = False  # between the end of a head and the end of its message
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False

    # connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # A response's head and body go out in one write (one TLS record, one system call).
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # draining before the close
        self._unset_keepalive_if_required()
        while data and self.parser is not None and not self.transport.is_closing():
            if self._in_body:
                self._feed(data)
                return
            room = self.limits.max_header_bytes - self._head_bytes
            if room <= 0:
                self._refuse(431)
                return
            self._arm_head_timer()
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            self._feed(piece)

    def _feed(self, data: bytes) -> None:
        """uvicorn's ``data_received`` body, with our refusals told apart from malformed input."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:  # a callback's exception arrives as its context
            if isinstance(exc.__context__, _Refusal):
                self._refuse(exc.__context__.status)
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    # parser callbacks

    def on_message_begin(self) -> None:
        self._head_fields = 0
        super().on_message_begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_fields += 1
        if self._head_fields > self.limits.max_headers:
            raise _Refusal(431)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        self._in_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._head_bytes = 0
        super().on_message_complete()

    # deadline and refusals

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes == 0:
            self.transport.close()  # nothing was asked: close quietly, as after an idle keep-alive
            return
        self._refuse(408)

    def _refuse(self, status: int) -> None:
        self._refused = True
        self._cancel_head_timer()
        self._unset_keepalive_if_required()
        phrase = http.HTTPStatus(status).phrase
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        log.warning("refused a request from %s: %d %s", client, status, phrase)
        body = f"{status} {phrase}\n".encode("ascii")
        head = [f"HTTP/1.1 {status} {phrase}".encode("ascii")]
        head += [name + b": " + value for name, value in self.server_state.default_headers]
        head += [
            b"content-type: text/plain; charset=utf-8",
            b"content-length: " + str(len(body)).encode("ascii"),
            b"connection: close",
        ]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


def server_options(limits: ServerLimits, *, forwarded_allow_ips: str | None = None) -> dict[str, Any]:
    """``uvicorn.Config`` options that enforce ``limits`` (picklable, for worker processes).

    ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed only from the proxies named in
    ``forwarded_allow_ips`` (uvicorn's own default trusts them from loopback, so any local client
    could pick the address the logs show and the scheme the application sees); without it the peer
    address and the socket's scheme are the truth.
    """
    proxies: dict[str, Any] = (
        {"proxy_headers": True, "forwarded_allow_ips": forwarded_allow_ips}
        if forwarded_allow_ips
        else {"proxy_headers": False}
    )
    return {
        "http": functools.partial(BoundedHttpProtocol, limits=limits),
        "timeout_keep_alive": limits.keep_alive_timeout,
        # uvicorn counts the connection asking, and answers 503 once the count reaches the limit.
        "limit_concurrency": limits.max_connections + 1,
        **proxies,
    }
