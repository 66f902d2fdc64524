"""A lean HTTP/1.1 client for the proxy's one upstream: pooled keep-alive connections, streaming
both ways, and only what a reverse proxy needs.

General-purpose clients do a lot per request that a proxy to one known upstream does not need
(cookie jars, redirects, URL re-parsing, header re-normalising, several layers of abstraction):
measured here, httpx cost about 0.8 ms of CPU per proxied request, ten times the rest of the
guard. This client writes the request in one buffer, parses the response with ``httptools``
(llhttp, as uvicorn does) from an :class:`asyncio.Protocol`, and hands the body over chunk by chunk
with back-pressure on both sides.

Failures are :class:`UpstreamError` with ``status`` 502 (cannot connect, the connection broke, not
HTTP) or 504 (no answer in time). A request whose body is already in memory is retried once on a
fresh connection when a reused keep-alive connection turns out to be closed before any byte of
the answer arrived (the upstream dropped it while idle).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import urlsplit

from keyless.errors import ConfigurationError

try:  # uvicorn[standard] brings it (keyless[server]); the verifier must import without it
    import httptools
except ImportError:  # pragma: no cover - exercised by the import test with httptools blocked
    httptools = None  # type: ignore[assignment]

__all__ = ["UpstreamError", "UpstreamPool", "UpstreamResponse"]

Body = bytes | AsyncIterator[bytes] | None

_HIGH_WATER = 256 * 1024  # buffered response bytes before the upstream is paused
_LOW_WATER = 64 * 1024
_NO_BODY_STATUS = frozenset({204, 304})


class UpstreamError(Exception):
    """The upstream could not answer: ``status`` is 502 or 504, ``reason`` says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _Connection(asyncio.Protocol):
    """One keep-alive connection: writes a request, parses one response at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.used = False  # served a request before (so it may have gone stale)
        self._parser: Any = None
        self._head_only = False
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._paused = False
        self._started = False  # any byte of the current response arrived
        self._headers_done = False
        self._complete = False
        self._until_close = False
        self._keep_alive = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass, but is one

    def data_received(self, data: bytes) -> None:
        self._started = True
        if self._parser is None or self._complete:
            self._fail(UpstreamError(502, "the upstream sent data it was not asked for"))
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(502, f"the upstream's answer is not valid HTTP ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._headers_done and self._until_close and not self._complete:
            self._complete = True  # a body delimited by the end of the connection
            self._wake()
        elif not self._complete:
            reason = "the upstream closed the connection" + (f" ({exc})" if exc else "")
            self._fail(UpstreamError(502, reason))
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # -- httptools callbacks --------------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # 100 Continue and friends: wait for the real answer
            self._headers = []
            return
        self._status = status
        self._headers_done = True
        self._keep_alive = bool(self._parser.should_keep_alive())  # llhttp forgets it once complete
        names = {name for name, _ in self._headers}
        chunked = any(n == b"transfer-encoding" and b"chunked" in v.lower() for n, v in self._headers)
        no_body = self._head_only or status in _NO_BODY_STATUS
        self._until_close = not no_body and not chunked and b"content-length" not in names
        if no_body:
            self._complete = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._complete:
            return
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._headers_done:
            self._keep_alive = self._keep_alive and bool(self._parser.should_keep_alive())
            self._complete = True
            self._wake()

    # -- driving it -----------------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._wake()
        if self.transport is not None:
            self.transport.close()

    async def _wait(self, timeout: float, what: str) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._waiter
        except TimeoutError:
            raise UpstreamError(504, f"the upstream did not {what} within {timeout:g} s") from None
        finally:
            self._waiter = None

    def start(self, head_only: bool) -> None:
        self.used = True
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = head_only
        self._status, self._headers, self._buffered = 0, [], 0
        self._body.clear()
        self._started = self._headers_done = self._complete = self._until_close = self._keep_alive = False
        self._error = None

    async def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise UpstreamError(502, "the upstream closed the connection")
        self.transport.write(data)
        if self._writable is not None and not self._writable.done():
            await self._writable

    async def headers(self, timeout: float) -> tuple[int, list[tuple[bytes, bytes]]]:
        while not self._headers_done:
            if self._error is not None:
                raise self._error
            await self._wait(timeout, "answer")
        return self._status, self._headers

    async def chunks(self, timeout: float) -> AsyncIterator[bytes]:
        while True:
            while self._body:
                chunk = self._body.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered < _LOW_WATER and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                yield chunk
            if self._complete:
                return
            if self._error is not None:
                raise self._error
            await self._wait(timeout, "send the rest of its answer")

    @property
    def reusable(self) -> bool:
        return (
            self._complete
            and self._error is None
            and not self.closed
            and not self._until_close
            and self._keep_alive
        )

    @property
    def answered(self) -> bool:
        return self._started

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class UpstreamResponse:
    """An answer whose body is read with :meth:`stream`; :meth:`aclose` frees the connection."""

    def __init__(
        self, pool: UpstreamPool, connection: _Connection, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.status = status
        self.headers = headers
        self._pool = pool
        self._connection: _Connection | None = connection

    def stream(self) -> AsyncIterator[bytes]:
        assert self._connection is not None
        return self._connection.chunks(self._pool.read_timeout)

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._pool.release(connection)


class UpstreamPool:
    """Keep-alive connections to one upstream (``http://`` or ``https://`` URL); bounded in number."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_connections: int = 512,
        max_idle: int = 128,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if httptools is None:
            raise ConfigurationError("the guard's proxy needs httptools: pip install 'keyless[server]'")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = (ssl_context or ssl.create_default_context()) if parts.scheme == "https" else None
        default_port = self.port == (443 if parts.scheme == "https" else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = (host if default_port else f"{host}:{self.port}").encode("ascii")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: list[_Connection] = []
        self._max_idle = max_idle
        self._slots = asyncio.Semaphore(max_connections)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await loop.create_connection(_Connection, self.host, self.port, ssl=self.ssl)
        except TimeoutError:
            raise UpstreamError(
                504, f"no connection to the upstream within {self.connect_timeout:g} s"
            ) from None
        except OSError as exc:
            raise UpstreamError(502, f"the upstream cannot be reached ({exc.strerror or exc})") from None
        return connection

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if (
                not connection.closed
                and connection.transport is not None
                and not connection.transport.is_closing()
            ):
                return connection
        return None

    def release(self, connection: _Connection) -> None:
        """Back to the pool if the answer was read to its end and the connection may be kept."""
        if connection.reusable and len(self._idle) < self._max_idle:
            self._idle.append(connection)
        else:
            connection.close()
        self._slots.release()

    async def request(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: Body,
        *,
        length: int | None = None,
    ) -> UpstreamResponse:
        """Send one request; the answer's headers are read, its body is left to stream.

        ``headers`` must not carry ``Host``, ``Content-Length`` or ``Transfer-Encoding``: the body
        decides those (``bytes``: its length; an async iterator: ``length`` if known, else chunked;
        ``None``: no body).
        """
        try:
            async with asyncio.timeout(self.connect_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise UpstreamError(504, "every connection to the upstream is busy") from None
        try:
            return await self._exchange(method, target, headers, body, length)
        except BaseException:
            self._slots.release()
            raise

    async def _exchange(
        self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: Body, length: int | None
    ) -> UpstreamResponse:
        head = _head(method, target, self.host_header, headers, body, length)
        replayable = not isinstance(body, AsyncIterator)
        while True:
            connection = self._take_idle()
            fresh = connection is None
            if connection is None:
                connection = await self._connect()
            connection.start(head_only=method == "HEAD")
            try:
                if isinstance(body, bytes):
                    await connection.write(head + body)
                else:
                    await connection.write(head)
                    if body is not None:
                        await _send_body(connection, body, chunked=length is None)
                status, response_headers = await connection.headers(self.read_timeout)
            except UpstreamError:
                connection.close()
                if not fresh and replayable and not connection.answered:
                    continue  # a stale keep-alive connection: once more on a new one
                raise
            except BaseException:
                connection.close()
                raise
            return UpstreamResponse(self, connection, status, response_headers)

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()


def _head(
    method: str,
    target: bytes,
    host: bytes,
    headers: list[tuple[bytes, bytes]],
    body: Body,
    length: int | None,
) -> bytes:
    lines = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\nhost: ", host, b"\r\n"]
    for name, value in headers:
        lines += (name, b": ", value, b"\r\n")
    if isinstance(body, bytes):
        length = len(body)
    if length is not None and body is not None:
        lines += (b"content-length: ", str(length).encode("ascii"), b"\r\n")
    elif body is not None:
        lines.append(b"transfer-encoding: chunked\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


async def _send_body(connection: _Connection, body: AsyncIterator[bytes], *, chunked: bool) -> None:
    async for chunk in body:
        if chunk:
            await connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
    if chunked:
        await connection.write(b"0\r\n\r\n")
