"""The refusal log: buffered in memory, written to the store in batches, one list for every process
and node that shares the store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from keyless.authority.directory.refusals import Refusal, RefusalLog
from keyless.authority.store import SqlStore


def _refusal(n: int, tenant: str = "t.example") -> Refusal:
    return Refusal(
        float(n), 700213, "invalid_client", tenant, "client", f"r{n}", f"trace-{n}", "corr", "/token"
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    made = SqlStore.from_url(f"sqlite:///{tmp_path / 'store.db'}")
    yield made
    made.close()


def test_two_processes_see_one_list_newest_first(store: SqlStore) -> None:
    first, second = RefusalLog(store), RefusalLog(store)  # two workers on one store
    first.record(_refusal(1))
    second.record(_refusal(2, tenant="T.Example"))
    first.record(_refusal(3, tenant="other"))
    first.flush()

    assert [r.reason for r in second.recent(["t.example"])] == ["r2", "r1"]  # second's own, unwritten
    assert [r.reason for r in first.recent()] == ["r3", "r2", "r1"]
    assert len(first) == len(second) == 0  # both buffers were written


def test_recording_is_not_a_directory_write(store: SqlStore) -> None:
    log = RefusalLog(store)
    revision = store.revision()
    for n in range(5):
        log.record(_refusal(n))
    assert log.flush() == 5
    assert store.revision() == revision  # no directory reload on any node


def test_the_store_keeps_only_the_newest(store: SqlStore) -> None:
    log = RefusalLog(store, keep=3)
    for n in range(7):
        log.record(_refusal(n))
        log.flush()
    assert [r.reason for r in log.recent(limit=10)] == ["r6", "r5", "r4"]


def test_a_full_buffer_drops_the_oldest_and_counts_them(store: SqlStore) -> None:
    log = RefusalLog(store, buffer=3)
    for n in range(5):
        log.record(_refusal(n))
    assert log.dropped == 2
    assert [r.reason for r in log.recent()] == ["r4", "r3", "r2"]


def test_a_failed_write_keeps_the_refusals_for_the_next_one(store: SqlStore, tmp_path: Path) -> None:
    log = RefusalLog(store)
    log.record(_refusal(1))
    unmigrated = SqlStore.from_url(f"sqlite:///{tmp_path / 'empty.db'}", migrate=False)  # no tables
    log._store = unmigrated
    with pytest.raises(OperationalError):
        log.flush()
    assert len(log) == 1
    log._store = store
    assert log.flush() == 1
    assert [r.reason for r in log.recent()] == ["r1"]
    unmigrated.close()
