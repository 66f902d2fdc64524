"""A transport that joins the writes of one event-loop turn into one.

uvicorn writes a response's head and its body separately: two ``send`` system calls and, over TLS,
two records for every small response (a token, a JSON error, a forward-auth answer). Buffering the
writes made during one loop turn and handing them to the real transport at the end of it makes
that one call and one record. The data reaches the socket in the same turn's tail, so nothing is
delayed by more than the callbacks already queued; ``close`` writes what is pending first.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["CoalescingTransport"]

# Past this many pending bytes the buffer goes out at once (a large body needs no joining).
_FLUSH_AT = 64 * 1024


class CoalescingTransport:
    """Wraps ``transport``: ``write`` buffers until the loop turn ends; the rest is delegated."""

    __slots__ = ("_loop", "_pending", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= _FLUSH_AT:
            self.flush()

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending.clear()
        self._size = 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._size + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
