"""No command answers with a traceback: each case below runs the real `keyless` in a subprocess
with a missing file, an unusable directory or database, an unreachable server, a bad URL or a
value out of range, and must end with one clear message and its documented exit code
(0 ok, 1 refused or failed, 2 usage or configuration, 3 unreachable)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PG = "postgresql+psycopg://nosuchrole:secret-pw@127.0.0.1:5432/test"

# (id, arguments, extra environment, exit code, a phrase the message must contain)
CASES: list[tuple[str, list[str], dict[str, str], int, str]] = [
    ("data-dir-unusable", ["serve", "--data-dir", "/proc/nope", "--port", "0"], {}, 2, "cannot be created"),
    (
        "database-wrong-role",
        ["serve", "--port", "0"],
        {"KEYLESS_DATABASE_URL": PG},
        2,
        "cannot open the database",
    ),
    (
        "sqlite-unwritable",
        ["serve", "--port", "0"],
        {"KEYLESS_DATABASE_URL": "sqlite:////proc/nope/x.db"},
        2,
        "cannot open the database",
    ),
    (
        "database-mysql",
        ["serve", "--port", "0"],
        {"KEYLESS_DATABASE_URL": "mysql://u@127.0.0.1/db"},
        2,
        "no database driver",
    ),
    (
        "database-not-a-url",
        ["serve", "--port", "0"],
        {"KEYLESS_DATABASE_URL": "nonsense"},
        2,
        "is not a database URL",
    ),
    ("serve-port-out-of-range", ["serve", "--port", "99999"], {}, 2, "'--port'"),
    ("serve-workers-zero", ["serve", "--workers", "0"], {}, 2, "'--workers'"),
    ("dev-port-out-of-range", ["dev", "--authority-port", "99999"], {}, 2, "'--authority-port'"),
    ("dev-trust-missing", ["dev", "--once", "--trust", "/nope/trust.yaml"], {}, 2, "/nope/trust.yaml"),
    ("token-file-missing", ["jwt", "decode", "./no-such-token.jwt"], {}, 2, "no such token file"),
    ("token-path-with-dots", ["jwt", "decode", "tokens/my.token.jwt"], {}, 2, "no such token file"),
    ("token-garbage", ["jwt", "decode", "aaa.bbb.ccc"], {}, 1, "not base64url-encoded JSON"),
    ("metadata-config-missing", ["metadata", "--config", "/nope.yaml"], {}, 2, "/nope.yaml"),
    ("guard-config-missing", ["guard", "run", "--config", "/nope.yaml"], {}, 2, "/nope.yaml"),
    ("guard-check-config-missing", ["guard", "check", "--config", "/nope.yaml"], {}, 2, "/nope.yaml"),
    (
        "guard-port-out-of-range",
        ["guard", "run", "--config", "/nope.yaml", "--port", "70000"],
        {},
        2,
        "'--port'",
    ),
    ("apply-file-missing", ["apply", "-f", "/nope.yaml"], {}, 2, "/nope.yaml"),
    ("plan-file-missing", ["plan", "-f", "/nope.yaml"], {}, 2, "/nope.yaml"),
    ("explain-token-missing", ["explain", "/nope/token", "--app", "x"], {}, 2, "no such token file"),
    (
        "authority-unreachable",
        ["tenant", "list", "--url", "https://127.0.0.1:1", "--admin-key", "k"],
        {},
        3,
        "cannot reach",
    ),
    (
        "url-bad-scheme",
        ["tenant", "list", "--url", "ftp://127.0.0.1/", "--admin-key", "k"],
        {},
        2,
        "https://",
    ),
    ("url-malformed", ["tenant", "list", "--url", "https://[bad", "--admin-key", "k"], {}, 2, "--url"),
    (
        "url-plain-http-remote",
        ["tenant", "list", "--url", "http://keyless.invalid", "--admin-key", "k"],
        {},
        2,
        "clear text",
    ),
    ("unknown-command", ["no-such-command"], {}, 2, "No such command"),
    ("version", ["--version"], {}, 0, ""),
    ("short-help", ["-h"], {}, 0, "Usage"),
]


@pytest.mark.parametrize(("args", "env", "code", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_clear_line_and_an_exit_code(
    args: list[str], env: dict[str, str], code: int, phrase: str, tmp_path: Path
) -> None:
    environment = {**os.environ, "KEYLESS_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200", **env}
    environment.pop("KEYLESS_DATABASE_URL", None) if "KEYLESS_DATABASE_URL" not in env else None
    result = subprocess.run(
        [sys.executable, "-m", "keyless", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == code, output
    assert phrase in output, output
    assert "secret-pw" not in output  # a database password is never shown
