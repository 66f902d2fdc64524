"""``keyless apply`` is one transaction, serialized across nodes: a failure (or ``kill -9``) part-way
leaves the directory as it was, ``--prune`` deletions included; two concurrent applies run one
after the other; one that waits past KEYLESS_APPLY_LOCK_TIMEOUT is refused with 409."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from tests._services import fresh_postgres_schema, postgres_url_or_skip
from tests._support.net import free_port
from tests._support.processes import REPO, Server
from tests._support.trust_docs import TENANT_ID, big_trust_document

from keyless.authority.directory.admin import DirectoryAdmin
from keyless.authority.directory.signing import KeyManager
from keyless.authority.directory.snapshot import DirectoryCache
from keyless.authority.model import FederatedIdentityCredential
from keyless.authority.store import SqlStore
from keyless.authority.trustfile.reconcile import apply, parse_trust_document, plan
from keyless.errors import Locked
from keyless.jose import KeyEncryptionKey

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'keyless.db'}"
        return
    with fresh_postgres_schema(postgres_url_or_skip()) as url:
        yield url


KEK = KeyEncryptionKey.generate()


@pytest.fixture
def nodes(database_url: str) -> Iterator[list[SqlStore]]:
    """Stores to close after the test (each Node registers its own)."""
    opened: list[SqlStore] = []
    Node.opened = opened
    yield opened
    for store in opened:
        store.close()


class Node:
    """One authority's writer on the shared database (a node of a cluster)."""

    opened: list[SqlStore] = []

    def __init__(self, url: str, store: SqlStore | None = None) -> None:
        self.store = store or SqlStore.from_url(url)
        self.opened.append(self.store)
        keys = KeyManager(self.store, KEK, max_token_lifetime=5400)
        self.admin = DirectoryAdmin(self.store, keys, DirectoryCache(self.store, keys), key_publish_delay=0)

    def app_ids(self) -> set[str]:
        return {a.app_id for a in self.store.list_applications(TENANT_ID)}


class FailingStore(SqlStore):
    """The real store, with a fault: the ``fail_at``-th federated credential write raises."""

    def __init__(self, url: str, fail_at: int) -> None:
        super().__init__(SqlStore.from_url(url).engine)
        self.fail_at = fail_at
        self.fic_writes = 0

    def create_fic(self, fic: FederatedIdentityCredential) -> FederatedIdentityCredential:
        self.fic_writes += 1
        if self.fic_writes == self.fail_at:
            raise RuntimeError("the process died here")
        return super().create_fic(fic)


def document(apps: range, prefix: str = "sub") -> Any:
    data = big_trust_document(apps.stop, subject_prefix=prefix)
    data["tenants"][0]["applications"] = data["tenants"][0]["applications"][apps.start :]
    for app in data["tenants"][0]["applications"][:1]:
        app.pop("appRoleAssignments", None)  # its resource is not in this document
    return parse_trust_document(data)


def test_a_failure_part_way_leaves_the_directory_unchanged(database_url: str, nodes: list[SqlStore]) -> None:
    node = Node(database_url)
    apply(node.admin, document(range(10)))
    before = node.app_ids()
    revision = node.store.revision()
    failing = Node(database_url, FailingStore(database_url, fail_at=30))
    with pytest.raises(RuntimeError, match="died"):
        apply(failing.admin, document(range(5, 40)), prune=True)  # deletes 0..4 first, then creates
    assert node.app_ids() == before  # the pruned ones are back, none of the new ones landed
    assert node.store.revision() == revision
    assert not plan(node.admin, document(range(10)))


def test_an_apply_is_all_there_in_one_revision(database_url: str, nodes: list[SqlStore]) -> None:
    node = Node(database_url)
    revision = node.store.revision()
    changes = apply(node.admin, document(range(20)))
    assert len(changes) == 1 + 20 + 40 + 38  # tenant, apps, credentials, role assignments
    assert node.store.revision() == revision + 1  # one write, the tenant's signing key included
    assert len(node.app_ids()) == 20
    assert node.admin.list_role_assignments(TENANT_ID)
    assert not plan(node.admin, document(range(20)))


def test_concurrent_applies_on_two_nodes_run_one_after_the_other(
    database_url: str, nodes: list[SqlStore]
) -> None:
    first, second = Node(database_url), Node(database_url)
    a, b = document(range(120), "a"), document(range(40, 160), "b")
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def run(node: Node, doc: Any) -> None:
        barrier.wait()
        try:
            apply(node.admin, doc, prune=True, lock_timeout=60)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n, d)) for n, d in ((first, a), (second, b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    # Whichever ran last, the directory is exactly its document: never a mix of the two.
    matches = [not plan(first.admin, doc, prune=True) for doc in (a, b)]
    assert matches.count(True) == 1, matches


def test_an_apply_waiting_past_its_lock_timeout_is_refused(database_url: str, nodes: list[SqlStore]) -> None:
    holder, waiter = Node(database_url), Node(database_url)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.store.transaction(lock_timeout=5):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        start = time.monotonic()
        with pytest.raises(Locked, match="another apply is in progress"):
            apply(waiter.admin, document(range(3)), lock_timeout=0.5)
        assert 0.5 <= time.monotonic() - start < 5
    finally:
        release.set()
        thread.join(10)
    assert len(apply(waiter.admin, document(range(3)), lock_timeout=5))  # free again


# -- kill -9 of `keyless serve` in the middle of `keyless apply` ------------------------------------


@contextlib.contextmanager
def serve(data_dir: Path, port: int, database_url: str) -> Iterator[Server]:
    env = {
        "KEYLESS_DATA_DIR": str(data_dir),
        "KEYLESS_PORT": str(port),
        "KEYLESS_TLS": "false",
        "KEYLESS_DATABASE_URL": database_url,
    }
    with Server(["serve"], env=env) as server:
        server.wait_listening("127.0.0.1", port)
        yield server


def apply_is_writing(database_url: str) -> bool:
    """Whether an apply holds the write lock and has written rows it has not committed."""
    if database_url.startswith("sqlite"):
        probe = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True  # locked by the apply's transaction
        finally:
            probe.close()
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            writing = conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.objid = :key AND l.granted "
                    "AND a.backend_xid IS NOT NULL"
                ),
                {"key": 0x6B65796C},
            ).scalar()
        return bool(writing)
    finally:
        engine.dispose()


def test_kill_9_of_the_server_mid_apply_leaves_nothing_partial(database_url: str, tmp_path: Path) -> None:
    data_dir, port = tmp_path / "node", free_port()
    trust_file = tmp_path / "big.yaml"
    trust_file.write_text(yaml.safe_dump(big_trust_document(1000)))
    with serve(data_dir, port, database_url) as server:
        key = (data_dir / "admin.key").read_text().strip()
        cli = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "keyless",
                "apply",
                "-f",
                str(trust_file),
                "--url",
                f"http://127.0.0.1:{port}",
            ],
            cwd=REPO,
            env={**os.environ, "KEYLESS_ADMIN_KEY": key},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not apply_is_writing(database_url):
            assert cli.poll() is None, cli.communicate()[0]
            assert time.monotonic() < deadline, "the apply never started writing"
            time.sleep(0.05)
        time.sleep(0.3)  # well into it
        assert cli.poll() is None, "the apply finished before the kill: make the document bigger"
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
        output = cli.communicate(timeout=30)[0]
        assert cli.returncode != 0, output
    with serve(data_dir, port, database_url):  # restarted on the same database
        headers = {"Authorization": f"Bearer {key}"}
        base = f"http://127.0.0.1:{port}/admin/v1.0"
        tenants = httpx.get(f"{base}/tenants", headers=headers, timeout=30).json()["value"]
        assert [t for t in tenants if t["id"] == TENANT_ID] == []  # not a single row of it
        store = SqlStore.from_url(database_url, migrate=False)
        try:
            assert store.list_applications(TENANT_ID) == []
        finally:
            store.close()
        # And the same apply goes through whole afterwards.
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "keyless",
                "apply",
                "-f",
                str(trust_file),
                "--url",
                f"http://127.0.0.1:{port}",
                "--json",
            ],
            cwd=REPO,
            env={**os.environ, "KEYLESS_ADMIN_KEY": key},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        apps = httpx.get(f"{base}/tenants/{TENANT_ID}/applications", headers=headers, timeout=30).json()
        assert len(apps["value"]) == 1000


def test_a_500_application_file_applies_whole_and_re_plans_empty(
    database_url: str, nodes: list[SqlStore]
) -> None:
    node = Node(database_url)
    doc = parse_trust_document(big_trust_document(500))
    changes = apply(node.admin, doc)
    kinds = [change.kind for change in changes]
    assert kinds.count("application") == 500
    assert kinds.count("fic") == 1000
    assert kinds.count("roleAssignment") == 998
    apps = node.store.list_applications(TENANT_ID)
    assert len(apps) == 500
    assert sum(len(node.store.list_fics(app.object_id)) for app in apps) == 1000
    assert len(node.store.list_role_assignments(TENANT_ID)) == 998
    assert not plan(node.admin, doc)
    assert not apply(node.admin, doc)  # idempotent
