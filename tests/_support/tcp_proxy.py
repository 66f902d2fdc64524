"""A TCP proxy that can fail like a network: put it between keyless and PostgreSQL, then

- ``refuse()``: stop listening (new connections are refused) and reset every open connection,
  as a stopped database server does;
- ``blackhole()``: accept new connections and never answer, and silently drop whatever travels
  on the open ones, as a cut network does (nothing is closed: the client just waits);
- ``restore()``: forward again (connections held by the blackhole are reset).

It runs its own asyncio loop in a daemon thread; the methods are called from the test's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Literal, TypeVar

__all__ = ["FaultyProxy"]

Mode = Literal["forward", "refuse", "blackhole"]
T = TypeVar("T")


class FaultyProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode: Mode = "forward"
        self.host = "127.0.0.1"
        with socket.socket() as probe:  # a free port, kept across refuse/restore
            probe.bind((self.host, 0))
            self.port = probe.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="faulty-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()

    # -- control, from the test's thread -----------------------------------------------------------
    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        self._run(self._listen())
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._run(self._stop_listening())
        self._run(self._reset_all())
        self._run(self._cancel_tasks())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def refuse(self) -> None:
        self.mode = "refuse"
        self._run(self._stop_listening())
        self._run(self._reset_all())

    def blackhole(self) -> None:
        self.mode = "blackhole"
        self._run(self._listen())

    def restore(self) -> None:
        previous, self.mode = self.mode, "forward"
        if previous == "blackhole":
            self._run(self._reset_all())
        self._run(self._listen())

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    # -- the loop's side ----------------------------------------------------------------------------
    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, self.host, self.port, reuse_address=True)

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _reset_all(self) -> None:
        for transport in list(self._transports):
            transport.abort()  # RST, like a server that went away
        self._transports.clear()

    @staticmethod
    async def _cancel_tasks() -> None:
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._transports.add(writer.transport)
        if self.mode != "forward":  # blackholed: hold the connection, answer nothing
            await self._drain_forever(reader)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._transports.add(up_writer.transport)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await reader.read(65536):
                if self.mode == "blackhole":
                    continue  # the network ate it
                writer.write(data)
                await writer.drain()
        self._transports.discard(writer.transport)
        if self.mode == "forward":
            writer.close()
        else:
            writer.transport.abort()

    @staticmethod
    async def _drain_forever(reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while await reader.read(65536):
                pass
