"""Prometheus metrics of keyless's servers (the authority and the guard), with ``prometheus-client``.

One set of metrics per process, created on first use. Under ``--workers N`` the supervisor points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before it forks (:func:`prepare_multiprocess`), each
worker writes its values there, and a scrape of any worker reads them all (prometheus-client's
multiprocess mode), so the port reports one set whichever worker answers.

Label values are bounded by what the operator configured, never by what a client sends: tenants
and client applications only when the directory knows them (else ``unknown``), AADSTS codes,
issuers that are registered (only those are ever fetched), route templates, the guard's decision
codes. No subject, no token, no raw path.

Without prometheus-client installed (the core package alone), every metric is a no-op.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = [
    "CONTENT_TYPE",
    "MULTIPROC_ENV",
    "UNKNOWN",
    "Metrics",
    "cleanup_multiprocess",
    "counter_totals",
    "issuer_fetched",
    "metrics",
    "observe_request",
    "prepare_multiprocess",
    "render",
    "reset_in_worker",
    "serve_metrics",
    "worker_died",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNKNOWN = "unknown"

# Request latency buckets: a cached guard decision is ~0.1 ms, a token ~1-20 ms under load.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _Noop:
    """Stands in for a metric when prometheus-client is not installed."""

    def labels(self, *args: Any, **kwargs: Any) -> _Noop:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, value: float) -> None:
        pass


@dataclass(frozen=True)
class Metrics:
    """Every metric keyless exports (see docs/operations.md for each one's meaning)."""

    tokens_issued: Any
    tokens_refused: Any
    request_duration: Any
    issuer_key_fetches: Any
    issuer_keys: Any
    issuer_keys_fetched_at: Any
    directory_revision: Any
    directory_checked_at: Any
    guard_decisions: Any
    guard_token_cache: Any
    enabled: bool


def _create() -> Metrics:
    try:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
    except ImportError:
        noop = _Noop()
        return Metrics(**{f.name: noop for f in fields(Metrics) if f.name != "enabled"}, enabled=False)
    # The value class (in memory, or files in the multiprocess directory) is chosen when
    # prometheus-client is imported; a worker forked from a supervisor that imported it before
    # setting the directory must choose again.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    registry = _registry(CollectorRegistry)
    return Metrics(
        tokens_issued=Counter(
            "keyless_tokens_issued",
            "Access tokens issued by the authority.",
            ["tenant", "client"],
            registry=registry,
        ),
        tokens_refused=Counter(
            "keyless_tokens_refused",
            "Token requests refused by the authority, by AADSTS code.",
            ["tenant", "client", "aadsts"],
            registry=registry,
        ),
        request_duration=Histogram(
            "keyless_http_request_duration_seconds",
            "Time to answer a request, by service and endpoint (route template).",
            ["service", "endpoint", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        ),
        issuer_key_fetches=Counter(
            "keyless_issuer_key_fetches",
            "Fetches of an external issuer's keys (discovery and JWKS), by outcome.",
            ["issuer", "outcome"],
            registry=registry,
        ),
        issuer_keys=Gauge(
            "keyless_issuer_keys",
            "Keys in the last good key set of an external issuer.",
            ["issuer"],
            multiprocess_mode="max",
            registry=registry,
        ),
        issuer_keys_fetched_at=Gauge(
            "keyless_issuer_keys_fetched_timestamp_seconds",
            "When an external issuer's keys were last fetched successfully (Unix time).",
            ["issuer"],
            multiprocess_mode="max",
            registry=registry,
        ),
        directory_revision=Gauge(
            "keyless_directory_revision",
            "Revision of the directory snapshot the authority serves from.",
            multiprocess_mode="max",
            registry=registry,
        ),
        directory_checked_at=Gauge(
            "keyless_directory_snapshot_checked_timestamp_seconds",
            "When the directory snapshot was last confirmed current against the store (Unix time;"
            " the oldest of the workers').",
            multiprocess_mode="min",
            registry=registry,
        ),
        guard_decisions=Counter(
            "keyless_guard_decisions",
            "The guard's decisions, by outcome (allow, deny) and reason code.",
            ["outcome", "reason"],
            registry=registry,
        ),
        guard_token_cache=Counter(
            "keyless_guard_token_cache",
            "Lookups in the guard's verified-token cache, by result (hit, miss).",
            ["result"],
            registry=registry,
        ),
        enabled=True,
    )


def _registry(factory: Any) -> Any:
    """In multiprocess mode metrics are not registered (the scrape reads the files); otherwise a
    registry of keyless's own, with the process collector, so tests and embedders that start
    several servers in one process never register a name twice."""
    if os.environ.get(MULTIPROC_ENV):
        return None
    from prometheus_client import ProcessCollector

    registry = factory(auto_describe=True)
    ProcessCollector(registry=registry)
    _own_registry.append(registry)
    return registry


_own_registry: list[Any] = []


@functools.cache
def metrics() -> Metrics:
    """This process's metrics (created on first call)."""
    return _create()


def reset_in_worker() -> None:
    """In a freshly forked worker: forget metrics the supervisor may have created before it chose
    multiprocess mode, so this process creates its own (writing to the shared directory)."""
    metrics.cache_clear()
    _own_registry.clear()


def observe_request(service: str, endpoint: str, status: int, seconds: float) -> None:
    metrics().request_duration.labels(service, endpoint, str(status)).observe(seconds)


def issuer_fetched(issuer: str, *, ok: bool, keys: int | None = None) -> None:
    """Count one fetch of ``issuer``'s keys; on success record the set's size and time."""
    m = metrics()
    m.issuer_key_fetches.labels(issuer, "ok" if ok else "failed").inc()
    if ok and keys is not None:
        m.issuer_keys.labels(issuer).set(keys)
        m.issuer_keys_fetched_at.labels(issuer).set(time.time())


# -- exposition ----------------------------------------------------------------------------------


def render() -> bytes:
    """The text exposition of every metric of this server (all workers in multiprocess mode)."""
    from prometheus_client import CollectorRegistry, generate_latest

    metrics()  # this process's metrics exist even before its first request
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return bytes(generate_latest(_own_registry[0]))
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    registry.register(_WorkerProcesses(directory))
    return bytes(generate_latest(registry))


def counter_totals(*families: str) -> dict[str, float]:
    """The sum over every label set (and every worker) of each named counter, e.g.
    ``counter_totals("keyless_tokens_issued")``; 0 for a counter nothing has counted yet."""
    found = dict.fromkeys(families, 0.0)
    try:
        from prometheus_client import CollectorRegistry
    except ImportError:
        return found
    metrics()
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry = _own_registry[0]
    for family in registry.collect():
        if family.name in found:
            found[family.name] += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return found


class _WorkerProcesses:
    """``process_*`` metrics of every live worker, labelled with its ``pid`` (prometheus-client's
    process collector reads one process's ``/proc`` entry; multiprocess mode has none of its own)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def collect(self) -> Iterable[Any]:
        from prometheus_client import ProcessCollector
        from prometheus_client.core import Metric

        merged: dict[str, Any] = {}
        for pid in _live_pids(self.directory):
            collector = ProcessCollector(pid=functools.partial(_same, pid), registry=None)
            for family in collector.collect():
                into = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                for sample in family.samples:
                    into.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        return list(merged.values())


def _same(pid: int) -> int:
    return pid


def _live_pids(directory: str) -> list[int]:
    pids = set()
    for path in Path(directory).glob("*.db"):
        tail = path.stem.rsplit("_", 1)[-1]
        if tail.isdigit() and Path(f"/proc/{tail}").exists():
            pids.add(int(tail))
    return sorted(pids)


def serve_metrics(address: str, *, flag: str = "KEYLESS_METRICS_ADDRESS") -> None:
    """A listener on ``address`` (``host:port``) answering ``GET /metrics`` from a daemon thread,
    unauthenticated (meant for a private address). In a supervisor it reads every worker's files."""
    import http.server
    import threading

    from keyless._net import bind_socket
    from keyless.errors import ConfigurationError

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"{flag} must be host:port, not {address!r}")
    sock = bind_socket(host.strip("[]"), int(port), flag=flag)
    sock.listen(16)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404)
                return
            body = render()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(sock.getsockname()[:2], Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.timeout = 10
    threading.Thread(target=server.serve_forever, name="keyless-metrics", daemon=True).start()


# -- the supervisor's part in multiprocess mode --------------------------------------------------


def prepare_multiprocess() -> str | None:
    """Before forking workers: a fresh directory for their metric files (unless the operator set
    ``PROMETHEUS_MULTIPROC_DIR``, which must then be emptied between runs, as prometheus-client says).
    Returns the directory keyless created, to remove with :func:`cleanup_multiprocess`."""
    if os.environ.get(MULTIPROC_ENV):
        return None
    created = tempfile.mkdtemp(prefix="keyless-metrics-")
    os.environ[MULTIPROC_ENV] = created
    return created


def worker_died(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters stay: totals must not go down)."""
    if not os.environ.get(MULTIPROC_ENV):
        return
    try:
        from prometheus_client import multiprocess
    except ImportError:
        return
    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def cleanup_multiprocess(created: str | None) -> None:
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)
        if os.environ.get(MULTIPROC_ENV) == created:
            del os.environ[MULTIPROC_ENV]
