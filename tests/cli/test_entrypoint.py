"""The ``keyless`` entry point as a real process: help, version, exit codes (0 ok, 1 failed, 2 usage
or configuration, 3 unreachable), a message and the next step instead of a traceback (unless
``--debug``); and every command's ``--help`` shows an example."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from keyless import __version__
from keyless.cli import app

REPO = Path(__file__).resolve().parents[2]
# Commands whose modules belong to other parts (keep in step with their owners).
NO_EXAMPLE_YET: set[str] = set()


def keyless(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLESS_")}
    return subprocess.run(
        [sys.executable, "-m", "keyless", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "KEYLESS_DATA_DIR": str(tmp_path)},
        cwd=REPO,
    )


def test_help_lists_every_command_and_the_exit_codes(tmp_path: Path) -> None:
    result = keyless("--help", tmp_path=tmp_path)
    assert result.returncode == 0
    for command in (
        "serve", "metadata", "guard", "dev", "token", "jwt", "explain", "refusals", "plan", "apply", "export",
        "tenant", "app", "fic", "secret", "cert", "role", "keys", "version",
    ):  # fmt: skip
        assert f"\n  {command} " in result.stdout, command
    assert "3 authority unreachable" in " ".join(result.stdout.split())


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    result = keyless("version", tmp_path=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, __version__)
    assert CliRunner().invoke(app, ["version", "--json"]).stdout == f'{{\n  "version": "{__version__}"\n}}\n'


def test_an_unreachable_authority_is_exit_3_without_a_traceback(tmp_path: Path) -> None:
    result = keyless(
        "tenant", "list", "--url", "https://127.0.0.1:9", "--admin-key", "kla_x", tmp_path=tmp_path
    )
    assert result.returncode == 3
    assert "cannot reach the authority at https://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_admin_key_is_exit_2_and_names_the_ways_to_give_one(tmp_path: Path) -> None:
    result = keyless("tenant", "list", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "--admin-key" in result.stderr and "KEYLESS_ADMIN_KEY" in result.stderr


def test_a_bad_trust_file_is_exit_2_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "trust.yaml"
    path.write_text("tenants:\n  - id: not-a-guid\n    displayName: X\n")
    result = keyless("plan", "-f", str(path), tmp_path=tmp_path)
    assert result.returncode == 2
    assert f"{path}:2: tenant 'X': id 'not-a-guid' is not a GUID" in result.stderr
    missing = keyless("apply", "-f", str(tmp_path / "nope.yaml"), tmp_path=tmp_path)
    assert missing.returncode == 2 and "cannot read the trust file" in missing.stderr


def test_usage_errors_are_exit_2(tmp_path: Path) -> None:
    assert keyless("no-such-command", tmp_path=tmp_path).returncode == 2
    assert keyless("fic", "create", "t", "a", tmp_path=tmp_path).returncode == 2  # --name missing


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = keyless("--debug", "tenant", "list", tmp_path=tmp_path)
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "ConfigurationError" in result.stderr


def _commands() -> Iterator[tuple[str, Any]]:
    def walk(command: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                yield from walk(child, [*path, name])
        else:
            yield " ".join(path), command

    yield from walk(get_command(app), [])


@pytest.mark.parametrize("name", [name for name, _ in _commands()])
def test_every_command_help_shows_an_example(name: str) -> None:
    result = CliRunner().invoke(app, [*name.split(), "--help"])
    assert result.exit_code == 0
    if name in NO_EXAMPLE_YET:
        pytest.skip(f"{name}: no example in its help yet (owned elsewhere)")
    assert "Example" in result.stdout, result.stdout
