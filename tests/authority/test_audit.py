"""The audit trail as structured events: one per token decision, with the credential that matched,
codes and trace ids the caller also sees; no secret or token in it; and the optional audit file,
one JSON line per event, shared by worker processes and rotated by size."""

from __future__ import annotations

import json
import logging
import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from tests._support.authority_server import Federation, RunningAuthority
from tests._support.oidc_issuer import TestIssuer
from tests.authority.test_token_errors import SUBJECT, federated_form, post

from keyless._logging import JsonFormatter
from keyless.authority.audit import AuditFile


def events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.audit for r in caplog.records if r.name == "keyless.audit" and hasattr(r, "audit")]


def test_an_issued_token_names_the_federated_credential_that_matched_and_the_trace_id_sent(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="keyless.audit")
    response = post(
        authority,
        federation.tenant_id,
        federated_form(federation, issuer.mint(sub=SUBJECT)),
        headers={"client-request-id": "0d1c0a8e-2b1f-4c83-9f57-5a3c1e2d4b6f"},
    )
    assert response.status_code == 200, response.text
    (event,) = [e for e in events(caplog) if e["event"] == "token.issued"]
    fic = authority.admin.list_fics(federation.client)[0]
    assert event["decision"] == "issued"
    assert event["tenant"] == federation.tenant_id and event["client"] == federation.client.app_id
    assert event["credential"] == {
        "kind": "federated",
        "id": fic.id,
        "name": fic.name,
        "issuer": issuer.url,
        "subject": SUBJECT,
    }
    assert event["trace_id"] == response.headers["x-ms-request-id"]
    assert event["correlation_id"] == "0d1c0a8e-2b1f-4c83-9f57-5a3c1e2d4b6f"
    record = next(r for r in caplog.records if getattr(r, "audit", None) is event)
    line = json.loads(JsonFormatter().format(record))
    assert line["audit"] == event  # KEYLESS_LOG_FORMAT=json carries the whole event


def test_a_refusal_event_carries_the_code_and_the_trace_id_of_the_error_response(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="keyless.audit")
    response = post(
        authority, federation.tenant_id, federated_form(federation, issuer.mint(sub="someone-else"))
    )
    assert response.status_code == 401
    (event,) = [e for e in events(caplog) if e["event"] == "token.refused"]
    assert event["aadsts"] == 700213 and event["error"] == "invalid_client"
    assert event["trace_id"] == response.json()["trace_id"]
    assert event["client"] == federation.client.app_id


def test_a_client_secret_issuance_names_the_secret_by_key_id_never_by_value(
    authority: RunningAuthority, federation: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="keyless.audit")
    secret = authority.admin.add_secret(federation.client, "ci")
    form = {
        "grant_type": "client_credentials",
        "client_id": federation.client.app_id,
        "client_secret": secret.value,
        "scope": federation.scope,
    }
    assert post(authority, federation.tenant_id, form).status_code == 200
    (event,) = [e for e in events(caplog) if e["event"] == "token.issued"]
    assert event["credential"] == {"kind": "secret", "id": secret.credential.key_id, "name": "ci"}
    assert secret.value not in json.dumps(events(caplog)) + caplog.text


def test_the_audit_file_gets_one_json_line_per_event(tmp_path: Path, issuer: TestIssuer) -> None:
    from tests._support.authority_server import run_authority, seed_federation

    path = tmp_path / "audit" / "events.jsonl"
    with run_authority(
        tmp_path / "a", dev_mode=True, allow_http_loopback_issuers=True, audit_file=path
    ) as running:
        federation = seed_federation(running.admin, issuer=issuer.url, subject=SUBJECT)
        assert (
            post(
                running, federation.tenant_id, federated_form(federation, issuer.mint(sub=SUBJECT))
            ).status_code
            == 200
        )
        assert post(running, federation.tenant_id, {"grant_type": "nope"}).status_code == 400
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["event"] for line in lines[-2:]] == ["token.issued", "token.refused"]
    assert lines[-1]["aadsts"] == 70003
    assert all(isinstance(line["time"], float) for line in lines)
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def _write(path: str, writer: int, count: int) -> None:
    handler = AuditFile(Path(path), max_bytes=4096, backups=1000)
    for index in range(count):
        record = logging.LogRecord("keyless.audit", logging.INFO, __file__, 0, "x", None, None)
        record.audit = {"event": "token.issued", "writer": writer, "index": index, "pad": "p" * 60}
        handler.emit(record)
    handler.close()


def test_several_processes_share_the_file_rotation_loses_and_mixes_no_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_write, args=(str(path), w, 400)) for w in range(3)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
        assert process.exitcode == 0
    files = [path, *sorted(tmp_path.glob("events.jsonl.*"))]
    assert len(files) > 5  # it rotated, many times
    seen = set()
    for file in files:
        # the bound is checked before each write: every writer may add its one line past it
        assert file.stat().st_size <= 4096 + 3 * 150
        for line in file.read_text().splitlines():
            event = json.loads(line)  # whole lines only: none torn or interleaved
            seen.add((event["writer"], event["index"]))
    assert seen == {(w, i) for w in range(3) for i in range(400)}


def test_rotation_keeps_only_the_configured_backups(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    handler = AuditFile(path, max_bytes=1000, backups=2)
    for index in range(200):
        record = logging.LogRecord("keyless.audit", logging.INFO, __file__, 0, "x", None, None)
        record.audit = {"event": "token.issued", "index": index}
        handler.emit(record)
    handler.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock") == [
        "events.jsonl",
        "events.jsonl.1",
        "events.jsonl.2",
    ]
    last = [json.loads(line)["index"] for line in path.read_text().splitlines()]
    assert last[-1] == 199
