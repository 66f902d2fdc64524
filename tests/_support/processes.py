"""Helpers for tests that run ``keyless serve`` or ``keyless guard run`` as real processes: start one
with JSON logs and read them as they come, find its worker processes, wait for a port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parents[2]

Record = dict[str, Any]


def children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def worker_pids(parent: int) -> list[int]:
    """The worker processes of a ``--workers N`` server: its forked children (not multiprocessing's
    resource tracker, should one run)."""
    found = []
    for child in children(parent):
        try:
            if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except FileNotFoundError:
            continue
    return found


def is_gone(pid: int) -> bool:
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


class Server:
    """``keyless ARGS`` (or ``argv``) with ``KEYLESS_LOG_FORMAT=json``; every stderr/stdout line is
    kept, JSON lines parsed into ``records`` (with ``_seen``, the monotonic time the test read them)."""

    def __init__(
        self, args: Sequence[str], *, env: dict[str, str] | None = None, argv: Sequence[str] | None = None
    ) -> None:
        self.lines: list[str] = []
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self.process = subprocess.Popen(
            list(argv) if argv is not None else [sys.executable, "-m", "keyless", *args],
            cwd=REPO,
            env={**os.environ, "KEYLESS_LOG_FORMAT": "json", **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    record["_seen"] = time.monotonic()
                    self.records.append(record)

    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def find(self, predicate: Callable[[Record], bool]) -> list[Record]:
        with self._lock:
            return [record for record in self.records if predicate(record)]

    def wait_for(self, predicate: Callable[[Record], bool], timeout: float = 30) -> Record:
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(predicate)
            if found:
                return found[0]
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no such log record; output:\n{self.output()}")
            time.sleep(0.02)

    def wait_for_all(
        self, predicate: Callable[[Record], bool], count: int, timeout: float = 30
    ) -> list[Record]:
        """Wait until ``count`` records match; all of them, oldest first."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(predicate)
            if len(found) >= count:
                return found
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {count} records; output:\n{self.output()}")
            time.sleep(0.02)

    def serving_workers(self, count: int, timeout: float = 30) -> dict[int, int]:
        """Wait until ``count`` worker slots have logged that they serve: slot -> pid (the latest)."""
        deadline = time.monotonic() + timeout
        while True:
            slots = {r["worker"]: r["worker_pid"] for r in self.find(lambda r: "is serving" in r["message"])}
            if len(slots) >= count:
                return slots
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{len(slots)} of {count} workers serving; output:\n{self.output()}")
            time.sleep(0.02)

    def wait_listening(self, host: str, port: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"not listening on {host}:{port}; output:\n{self.output()}"
                    ) from None
                time.sleep(0.05)

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        self._reader.join(5)
        if self.process.stdout:
            self.process.stdout.close()
        return code

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
