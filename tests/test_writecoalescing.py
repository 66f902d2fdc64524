"""The coalescing transport: one loop turn's writes reach the socket as one write, in order."""

from __future__ import annotations

import asyncio

from keyless._writecoalescing import CoalescingTransport


class _Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0


async def _turn() -> None:
    await asyncio.sleep(0)


def test_a_head_and_body_written_in_one_turn_go_out_as_one_write() -> None:
    async def scenario() -> list[bytes]:
        real = _Recording()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"{}")
        assert real.writes == []
        await _turn()
        return real.writes

    assert asyncio.run(scenario()) == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


def test_writes_of_later_turns_are_separate_and_in_order() -> None:
    async def scenario() -> list[bytes]:
        real = _Recording()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"a")
        await _turn()
        transport.write(b"b")
        transport.write(b"c")
        await _turn()
        return real.writes

    assert asyncio.run(scenario()) == [b"a", b"bc"]


def test_close_sends_what_is_pending_first_and_abort_drops_it() -> None:
    async def scenario() -> tuple[_Recording, _Recording]:
        loop = asyncio.get_running_loop()
        closed, aborted = _Recording(), _Recording()
        first = CoalescingTransport(closed, loop)
        first.write(b"last words")
        first.close()
        second = CoalescingTransport(aborted, loop)
        second.write(b"never sent")
        second.abort()
        await _turn()
        return closed, aborted

    closed, aborted = asyncio.run(scenario())
    assert closed.writes == [b"last words"] and closed.closed
    assert aborted.writes == [] and aborted.aborted


def test_a_large_body_is_not_held_back() -> None:
    async def scenario() -> int:
        real = _Recording()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"x" * 100_000)
        return len(real.writes)

    assert asyncio.run(scenario()) == 1


def test_other_transport_calls_reach_the_real_transport() -> None:
    real = _Recording()
    loop = asyncio.new_event_loop()
    try:
        transport = CoalescingTransport(real, loop)
        assert transport.get_extra_info("peername") is None
        assert transport.is_closing() is False
    finally:
        loop.close()
