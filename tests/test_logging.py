"""``KEYLESS_LOG_FORMAT=json``: the output of a real ``keyless serve`` (parent and workers) and a real
``keyless guard run`` is one JSON object per line with stable fields, uvicorn's records included,
and the request id on records made while serving a request; never a token."""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from tests._support.net import free_port, text_handler
from tests._support.oidc_issuer import TestIssuer
from tests._support.processes import REPO, Record, Server

from keyless._logging import JsonFormatter

TENANT = "9b1d7f0e-3c4a-4e5f-8a6b-2c1d0e9f8a7b"  # examples/trust.yaml
FIELDS = {"ts", "level", "logger", "message", "pid"}


def _every_line_is_a_record(server: Server) -> list[Record]:
    lines = [line for line in server.output().splitlines() if line.strip()]
    assert lines
    records = []
    for line in lines:
        record = json.loads(line)  # fails on any line that is not JSON
        assert isinstance(record, dict)
        assert record.keys() >= FIELDS, record
        assert dt.datetime.fromisoformat(record["ts"]).utcoffset() == dt.timedelta(0)
        assert record["level"] in {"debug", "info", "warning", "error", "critical"}
        assert "color_message" not in record  # uvicorn's terminal-coloured copy is left out
        records.append(record)
    return records


def test_serve_with_two_workers_writes_json_lines_with_request_ids(tmp_path: Path) -> None:
    port = free_port()
    args = ["serve", "--port", str(port), "--workers", "2", "--trust", "examples/trust.yaml"]
    with Server(args, env={"KEYLESS_DATA_DIR": str(tmp_path), "KEYLESS_PORT": str(port)}) as server:
        server.serving_workers(2)
        context = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.pem"))
        secret = "not-a-real-secret-" + uuid.uuid4().hex
        request_ids = [str(uuid.uuid4()) for _ in range(4)]
        for request_id in request_ids:  # new connections: both workers answer
            with httpx.Client(verify=context, timeout=10) as client:
                refused = client.post(
                    f"https://localhost:{port}/{TENANT}/oauth2/v2.0/token",
                    headers={"client-request-id": request_id},
                    data={
                        "grant_type": "client_credentials",
                        "client_id": "nobody",
                        "client_secret": secret,
                        "scope": "api://blob-api/.default",
                    },
                )
                assert refused.status_code in (400, 401)
        assert server.stop() == 0
    records = _every_line_is_a_record(server)
    parent = server.process.pid
    assert {r["pid"] for r in records} - {parent}, "the workers' records are there too"
    assert any(r["logger"] == "uvicorn.error" and r["pid"] != parent for r in records)
    assert any(r["logger"] == "keyless.workers" and r.get("worker") == 1 for r in records)
    refusals = [r for r in records if r["logger"] == "keyless.audit" and "refused" in r["message"]]
    assert sorted(r["request_id"] for r in refusals) == sorted(request_ids)
    assert secret not in server.output()


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), text_handler(lambda request: b"ok"))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_guard_access_records_are_json_with_the_decision_and_request_id(
    tmp_path: Path, upstream: str
) -> None:
    with TestIssuer() as issuer:
        config = tmp_path / "guard.yaml"
        config.write_text(
            f"issuers:\n  - kind: oidc\n    issuer: {issuer.url}\naudiences: [api://logs]\n"
            "allow_http_loopback_issuers: true\npolicy:\n  rules:\n    - path: /**\n      allow: authenticated\n"
        )
        port = free_port()
        args = ["guard", "run", "--upstream", upstream, "--config", str(config), "--port", str(port)]
        token = issuer.mint(sub="logged-caller", aud="api://logs")
        with Server(args) as server:
            server.wait_listening("127.0.0.1", port)
            allowed = httpx.get(
                f"http://127.0.0.1:{port}/a",
                headers={"Authorization": f"Bearer {token}", "X-Request-Id": "req-allowed-1"},
            )
            denied = httpx.get(f"http://127.0.0.1:{port}/b", headers={"X-Request-Id": "bad id with spaces"})
            assert (allowed.status_code, denied.status_code) == (200, 401)
            server.wait_for(lambda r: r["logger"] == "keyless.guard.access" and r["guard"]["path"] == "/b")
            assert server.stop() == 0
    records = _every_line_is_a_record(server)
    access = {r["guard"]["path"]: r for r in records if r["logger"] == "keyless.guard.access"}
    assert access["/a"]["request_id"] == "req-allowed-1"
    assert access["/a"]["guard"]["decision"] == "allow"
    assert access["/a"]["guard"]["subject"] == "logged-caller"
    # A malformed caller id is not copied into the log: a fresh UUID stands in.
    assert uuid.UUID(access["/b"]["request_id"])
    assert (access["/b"]["guard"]["decision"], access["/b"]["guard"]["code"]) == ("deny", "no_token")
    assert any(r["logger"] == "uvicorn.error" for r in records)
    assert token not in server.output()


def test_an_unknown_log_format_is_a_configuration_problem_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "keyless", "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        env={**os.environ, "KEYLESS_DATA_DIR": str(tmp_path), "KEYLESS_LOG_FORMAT": "xml"},
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 2
    assert "KEYLESS_LOG_FORMAT" in result.stderr
    assert "Traceback" not in result.stderr


def test_text_format_puts_uvicorn_records_in_keyless_format(tmp_path: Path, upstream: str) -> None:
    with TestIssuer() as issuer:
        config = tmp_path / "guard.yaml"
        config.write_text(f"issuers:\n  - kind: oidc\n    issuer: {issuer.url}\naudiences: [api://logs]\n"
                          "allow_http_loopback_issuers: true\n")  # fmt: skip
        port = free_port()
        args = ["guard", "run", "--upstream", upstream, "--config", str(config), "--port", str(port)]
        with Server(args, env={"KEYLESS_LOG_FORMAT": "text"}) as server:
            server.wait_listening("127.0.0.1", port)
            assert server.stop() == 0
    started = [line for line in server.output().splitlines() if "Started server process" in line]
    assert started and " INFO uvicorn.error: " in started[0]


def test_json_formatter_keeps_the_exception_and_structured_extras() -> None:
    import logging

    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "keyless.x", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info()
        )
    record.detail = {"tenant": "t1"}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed here" and entry["level"] == "error" and entry["logger"] == "keyless.x"
    assert "ValueError: boom" in entry["exc"]
    assert entry["detail"] == {"tenant": "t1"}
    assert "request_id" not in entry


def test_uvicorn_access_records_get_an_http_field() -> None:
    import logging

    # The record uvicorn's access logger makes for each request (uvicorn/protocols/http).
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/computeMetadata/v1/", "1.1", 200), None,
    )  # fmt: skip
    entry = json.loads(JsonFormatter().format(record))
    assert entry["http"] == {
        "client": "127.0.0.1:5000",
        "method": "GET",
        "path": "/computeMetadata/v1/",
        "status": 200,
    }
    assert entry["message"] == '127.0.0.1:5000 - "GET /computeMetadata/v1/ HTTP/1.1" 200'
