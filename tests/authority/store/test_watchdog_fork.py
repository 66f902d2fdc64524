"""The statement watchdog in a forked worker: ``keyless serve --workers N`` forks from a process
that used the store, possibly while the watchdog's thread held its lock; the child must not hang."""

from __future__ import annotations

import multiprocessing
import os
import socket
import threading

from keyless.authority.store import _engine


def _arm_and_disarm() -> None:
    with socket.socket() as sock:
        token = _engine._WATCHDOG.arm(5.0, sock.fileno(), [False])
        _engine._WATCHDOG.disarm(token)
    os._exit(0)


def test_a_worker_forked_while_the_watchdog_holds_its_lock_can_still_use_it() -> None:
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with _engine._WATCHDOG._cond:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    held.wait(5)
    try:
        child = multiprocessing.get_context("fork").Process(target=_arm_and_disarm)
        child.start()
        child.join(10)
        hung = child.is_alive()
        if hung:
            child.kill()
            child.join()
    finally:
        release.set()
        holder.join(5)
    assert not hung, "the forked child blocked on a lock its parent's thread held"
    assert child.exitcode == 0
