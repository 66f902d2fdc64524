"""Logging for keyless's processes: one handler for keyless's loggers and uvicorn's, as text or JSON.

``KEYLESS_LOG_FORMAT=text`` (the default) writes ``time LEVEL logger: message`` lines;
``KEYLESS_LOG_FORMAT=json`` writes one JSON object per line with these stable fields:

- ``ts``: RFC 3339 time in UTC with milliseconds; ``level``: ``debug`` ... ``critical``;
  ``logger``: the logger's name (``keyless.audit``, ``uvicorn.error``...); ``message``; ``pid``;
- ``request_id``: the id of the HTTP request being served, when the record comes from one
  (the caller's ``x-request-id``, ``client-request-id`` or ``x-ms-client-request-id`` when it sends a
  well-formed one, which MSAL and azure-identity do; otherwise a fresh UUID);
- ``http``: uvicorn's access records as ``client``, ``method``, ``path``, ``status``;
- ``exc``: the formatted exception, when the record carries one;
- any structured ``extra=`` a logger adds (the guard's access log adds ``guard``).

Servers hand uvicorn ``log_config=None`` (``UVICORN_LOGGING``) so its records reach this handler
instead of uvicorn's own format. Audit records (``keyless.audit``) carry codes, tenants, trace ids
and reasons; never a secret or a whole token.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import os
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal, TextIO, cast

import orjson

from keyless.errors import ConfigurationError

__all__ = [
    "FORMATS",
    "UVICORN_LOGGING",
    "JsonFormatter",
    "LogFormat",
    "configure_logging",
    "log_format",
    "with_request_id",
]

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
UVICORN_LOGGING: dict[str, Any] = {"log_config": None}
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_LOGGERS = ("keyless", "uvicorn")
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("keyless_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
# ``color_message`` is uvicorn's copy of the message with terminal colours.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


def log_format() -> LogFormat:
    """``KEYLESS_LOG_FORMAT`` (``text`` or ``json``); anything else is a configuration problem."""
    value = os.environ.get("KEYLESS_LOG_FORMAT", "text").strip().lower() or "text"
    if value not in FORMATS:
        raise ConfigurationError(f"KEYLESS_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {value!r}")
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line, with the fields listed in this module's docstring."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request_id = _request_id.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, _version, status = record.args
            entry["http"] = {"client": client, "method": method, "path": path, "status": status}
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record arrives (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


_handler = _StderrHandler()


def configure_logging(level: str = "info", fmt: LogFormat | None = None) -> None:
    """Send keyless's and uvicorn's records to stderr at ``level``, as text or JSON (``fmt``, default
    ``KEYLESS_LOG_FORMAT``). Idempotent: safe to call again in every worker process."""
    chosen = fmt or log_format()
    # Per-record work no format here uses (logging's documented optimisations): the caller's file
    # and line, thread and multiprocessing names. Servers log a line per token decision.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    _handler.setFormatter(JsonFormatter() if chosen == "json" else logging.Formatter(_TEXT))
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _handler not in logger.handlers:
            logger.addHandler(_handler)
        logger.propagate = False
    logging.getLogger("keyless").setLevel(level.upper())
    logging.getLogger("uvicorn").setLevel(level.upper())


# A request id a caller sends is kept only when it is short and plain (it ends up in every log line).
_CALLER_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_ID_HEADERS = (b"x-request-id", b"client-request-id", b"x-ms-client-request-id")

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_App = Callable[[_Scope, _Receive, _Send], Awaitable[None]]


def _caller_request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    found = {name: value for name, value in headers if name in _ID_HEADERS}
    for name in _ID_HEADERS:
        value = found.get(name)
        if value is not None and _CALLER_ID.match(value):
            return value.decode().lower()
    return None


def with_request_id(app: Any) -> Any:
    """``app`` with each HTTP request's records tagged ``request_id`` (see the module docstring).

    Only in JSON mode: the text format has no field for it, so there ``app`` is returned as it is.
    """
    if not isinstance(_handler.formatter, JsonFormatter):
        return app
    inner = cast(_App, app)

    async def tagged(scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        token = _request_id.set(_caller_request_id(scope.get("headers") or []) or str(uuid.uuid4()))
        try:
            await inner(scope, receive, send)
        finally:
            _request_id.reset(token)

    return tagged
