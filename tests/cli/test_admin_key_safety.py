"""Where the CLI sends the admin key: the data directory's key only to the URL recorded there,
never in clear text off this machine, and an answer that is not a keyless admin API is not read.
Each case runs the real CLI against a real local HTTP server that records what it received."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._support.authority_server import RunningAuthority
from tests.cli.conftest import Cli

KEY = "kla_this-is-the-local-admin-key"


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request 200 with a JSON object, as a server that is not keyless might."""

    received: list[dict[str, str]]

    def do_GET(self) -> None:
        self.received.append(dict(self.headers.items()))
        body = json.dumps({"value": [{"id": "x", "displayName": "not keyless"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, str]]]]:
    received: list[dict[str, str]] = []
    handler = type("Handler", (Recorder,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory as `keyless serve` leaves it: its URL and its admin key."""
    (tmp_path / "url").write_text("https://localhost:8443\n")
    (tmp_path / "admin.key").write_text(KEY + "\n")
    return tmp_path


def test_the_local_admin_key_is_never_sent_to_another_url(
    data_dir: Path, recorder: tuple[str, list[dict[str, str]]]
) -> None:
    url, received = recorder
    result = Cli(data_dir)("tenant", "list", "--url", url)
    assert result.exit_code == 2
    assert "is not sent to" in result.stderr and "--admin-key" in result.stderr
    assert received == []  # nothing was sent at all


def test_an_explicit_admin_key_goes_to_the_url_named_but_a_non_keyless_answer_is_not_read(
    data_dir: Path, recorder: tuple[str, list[dict[str, str]]]
) -> None:
    url, received = recorder
    result = Cli(data_dir)("tenant", "list", "--url", url, "--admin-key", "kla_explicit")
    assert [r.get("Authorization") for r in received] == ["Bearer kla_explicit"]
    assert result.exit_code == 2
    assert "did not answer like a keyless authority" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("url", ["http://keyless-admin.invalid:8443", "http://[2001:db8::1]:8443"])
def test_plain_http_to_a_non_loopback_address_is_refused_before_connecting(data_dir: Path, url: str) -> None:
    # .invalid never resolves and 2001:db8::/32 is documentation space: even a regression that
    # tried to connect could not reach anything.
    result = Cli(data_dir)("tenant", "list", "--url", url, "--admin-key", "kla_explicit")
    assert result.exit_code == 2
    assert "refusing to send the admin key in clear text" in result.stderr


def test_the_local_key_still_reaches_the_recorded_url(cli: Cli, live: RunningAuthority) -> None:
    result = cli("tenant", "list", "--json")
    assert result.exit_code == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)
