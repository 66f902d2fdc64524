"""The last-resort 500 handler: the protocol's error shape, and a log line the client cannot forge."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from starlette.requests import Request

from keyless.authority.http.app import _server_error


def _request(path: str) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
    }
    return Request(scope)


def test_a_server_error_logs_the_request_path_escaped_and_bounded(caplog: pytest.LogCaptureFixture) -> None:
    path = "/x\nINFO forged line" + "a" * 5000
    with caplog.at_level(logging.ERROR):
        try:
            raise RuntimeError("boom")
        except RuntimeError as exc:
            response = asyncio.run(_server_error(_request(path), exc))
    message = caplog.records[-1].getMessage()
    assert "\n" not in message
    assert "\\nINFO forged line" in message
    assert len(message) < 400
    assert response.status_code == 500
    assert json.loads(bytes(response.body))["error"] == "server_error"
