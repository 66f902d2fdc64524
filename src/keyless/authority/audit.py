"""The audit trail: one structured event per token decision, on the ``keyless.audit`` logger.

Each event is a flat JSON object with stable field names (docs/operations.md, *Audit events*):

    {"event": "token.issued", "decision": "issued", "tenant": ..., "client": ..., "grant_type": ...,
     "credential": {"kind": "federated", "id": ..., "name": ..., "issuer": ..., "subject": ...},
     "trace_id": ..., "correlation_id": ...}
    {"event": "token.refused", "decision": "refused", "aadsts": 700213, "error": "invalid_client",
     "tenant": ..., "client": ..., "trace_id": ..., "correlation_id": ..., "reason": ..., "path": ...}

It goes to the log as the record's ``audit`` field (``KEYLESS_LOG_FORMAT=json`` prints it; the text
format prints the message, which carries the same facts), and, with ``KEYLESS_AUDIT_FILE``, as
one bare JSON line per event to that file, rotated by size. Nothing in an event is a secret or a
token: ids the directory does not know are fingerprints, reasons are escaped and bounded
(``directory.recordable``), and a federated credential's issuer and subject are values the
credential itself names.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import Any

import orjson

from keyless.authority.token.client_auth import MatchedCredential

__all__ = ["AuditFile", "changed", "configure_audit_file", "credential_fields", "issued", "refused"]

audit = logging.getLogger("keyless.audit")


def credential_fields(credential: MatchedCredential) -> dict[str, Any]:
    fields: dict[str, Any] = {"kind": credential.kind, "id": credential.id, "name": credential.name}
    if credential.issuer is not None:
        fields["issuer"] = credential.issuer
        fields["subject"] = credential.subject
    if credential.override is not None:
        fields["development_override"] = credential.override
    return fields


def issued(
    *,
    tenant: str,
    client: str,
    credential: MatchedCredential,
    trace_id: str,
    correlation_id: str,
    resource: str | None = None,
) -> None:
    """One issued token. The text message keeps the shape operators grep for."""
    if not audit.isEnabledFor(logging.INFO):
        return
    event = {
        "event": "token.issued",
        "decision": "issued",
        "tenant": tenant,
        "client": client,
        "grant_type": "client_credentials",
        "credential": credential_fields(credential),
        "resource": resource,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
    }
    if credential.kind == "federated":
        override = credential.override
        audit.info(
            "federated assertion accepted tenant=%s client=%s fic=%s iss=%s sub=%s trace_id=%s%s",
            tenant,
            client,
            credential.name,
            credential.issuer,
            credential.subject,
            trace_id,
            f" DEVELOPMENT ISSUER OVERRIDE via {override}" if override else "",
            extra={"audit": event},
        )
    else:
        audit.info(
            "token issued tenant=%s client=%s credential=%s:%s trace_id=%s",
            tenant,
            client,
            credential.kind,
            credential.id,
            trace_id,
            extra={"audit": event},
        )


def refused(
    *,
    aadsts: int | None,
    error: str,
    tenant: str,
    client: str | None,
    trace_id: str,
    correlation_id: str,
    reason: str,
    path: str,
    credential: str | None = None,
) -> None:
    """One refused token request (every value already made recordable by the caller); ``credential``
    the federated credential it concerned when one had matched (a condition or time window failed)."""
    event = {
        "event": "token.refused",
        "decision": "refused",
        "aadsts": aadsts,
        "error": error,
        "tenant": tenant,
        "client": client,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "reason": reason,
        "path": path,
        "credential": credential,
    }
    audit.warning(
        "refused AADSTS%s %s tenant=%s client=%s trace_id=%s correlation_id=%s reason=%s",
        aadsts,
        path,
        tenant,
        client,
        trace_id,
        correlation_id,
        reason,
        extra={"audit": event},
    )


def changed(
    *, source: str, action: str, target: str, actor: str | None, outcome: str, detail: str = ""
) -> None:
    """One change to the directory made through the admin API (``source="api"``; the CLI uses it
    too) or the console (``source="console"``): what, by which admin key (its id, never the key),
    and whether it was made. ``target`` is a path the server chose, not raw client input."""
    event = {
        "event": "directory.changed",
        "source": source,
        "action": action,
        "target": target,
        "actor": actor,
        "outcome": outcome,
        "detail": detail,
    }
    audit.info(
        "directory %s %s source=%s actor=%s outcome=%s",
        action,
        target,
        source,
        actor,
        outcome,
        extra={"audit": event},
    )


class AuditFile(logging.Handler):
    """Audit events as JSON lines in one file shared by every worker process, rotated by size.

    Each line is written with one ``write`` on an ``O_APPEND`` descriptor, so lines of several
    processes never interleave. Rotation (``path`` -> ``path.1`` ... ``path.N``) happens under an
    ``flock`` on ``path.lock``; the other processes notice that ``path`` is a new file (its inode
    changed) and reopen it before their next line."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        super().__init__(logging.INFO)
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._fd = -1
        self._inode = -1
        self._guard = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._open()

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._inode = fd, os.fstat(fd).st_ino

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "audit", None)
        if not isinstance(event, dict):
            return
        line = orjson.dumps({"time": round(record.created, 3), **event}) + b"\n"
        try:
            with self._guard:
                self._follow_rotation()
                if self.max_bytes and os.fstat(self._fd).st_size + len(line) > self.max_bytes:
                    self._rotate()
                os.write(self._fd, line)
        except OSError:
            self.handleError(record)

    def _follow_rotation(self) -> None:
        try:
            if os.stat(self.path).st_ino != self._inode:
                self._open()
        except FileNotFoundError:
            self._open()

    def _rotate(self) -> None:
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._follow_rotation()  # another process may have rotated while we waited
                if os.fstat(self._fd).st_size <= self.max_bytes // 2:
                    return
                for index in range(self.backups - 1, 0, -1):
                    older = Path(f"{self.path}.{index}")
                    if older.exists():
                        older.replace(f"{self.path}.{index + 1}")
                if self.backups > 0:
                    self.path.replace(f"{self.path}.1")
                else:
                    self.path.unlink(missing_ok=True)
                self._open()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._guard:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        super().close()


_files: dict[Path, AuditFile] = {}


def configure_audit_file(path: Path | None, *, max_bytes: int, backups: int) -> None:
    """Add the audit file handler for ``path`` to ``keyless.audit`` (once per process and path)."""
    if path is None:
        return
    resolved = path.resolve()
    if resolved in _files:
        return
    handler = _files[resolved] = AuditFile(resolved, max_bytes=max_bytes, backups=backups)
    audit.addHandler(handler)
    if audit.level == logging.NOTSET or audit.level > logging.INFO:
        audit.setLevel(logging.INFO)
