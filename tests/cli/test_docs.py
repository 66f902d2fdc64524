"""The CLI and trust-file documentation keep up with the code: every schema key and every command
is documented, and the schema published in the docs is the one the loader follows."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command

from keyless.authority.trustfile.schema import ACCEPTED_KEYS
from keyless.cli import app

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "src" / "keyless" / "authority" / "trust-file.schema.json"
TRUST_DOC = (REPO / "docs" / "trust-file.md").read_text()
CLI_DOC = (REPO / "docs" / "cli.md").read_text()


def _schema_keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            yield key
            yield from _schema_keys(value)
        for value in node.get("$defs", {}).values():
            yield from _schema_keys(value)


@pytest.mark.parametrize("key", sorted(set(_schema_keys(json.loads(SCHEMA.read_text())))))
def test_every_schema_key_is_documented(key: str) -> None:
    assert f"| `{key}` |" in TRUST_DOC


@pytest.mark.parametrize("key", sorted({k for keys in ACCEPTED_KEYS.values() for k in keys}))
def test_every_key_the_loader_accepts_is_documented(key: str) -> None:
    assert f"| `{key}` |" in TRUST_DOC


def test_the_schema_in_the_docs_is_the_shipped_schema() -> None:
    embedded = re.search(r"## The JSON Schema.*?```json\n(.*?)```", TRUST_DOC, re.S)
    assert embedded is not None
    assert json.loads(embedded.group(1)) == json.loads(SCHEMA.read_text())


def _command_names() -> list[str]:
    def walk(command: Any, path: list[str]) -> Iterator[str]:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                yield from walk(child, [*path, name])
        else:
            yield " ".join(path)

    return list(walk(get_command(app), []))


@pytest.mark.parametrize("command", _command_names())
def test_every_command_is_documented_with_an_example(command: str) -> None:
    group, _, sub = command.partition(" ")
    if sub:
        assert re.search(rf"`keyless {group} [^`]*\b{sub}\b", CLI_DOC), f"no heading for keyless {command}"
    assert re.search(rf"^keyless {re.escape(command)}\b", CLI_DOC, re.M), f"no example of keyless {command}"


SERVERS = {"serve", "metadata", "dev", "guard run", "guard authz"}  # they run; they print no data


@pytest.mark.parametrize("command", _command_names())
def test_every_command_that_prints_data_has_json(command: str) -> None:
    if command in SERVERS:
        return
    cmd = get_command(app)
    for part in command.split():
        cmd = cmd.commands[part]  # type: ignore[attr-defined]
    options = {opt for param in cmd.params for opt in getattr(param, "opts", [])}
    assert "--json" in options, f"keyless {command} prints data but has no --json"


@pytest.mark.parametrize("command", ["", *_command_names()])
def test_help_fits_80_columns_so_examples_never_wrap_mid_command(command: str) -> None:
    """Examples sit in unwrapped (``\\b``) blocks, continued with `` \\`` lines: at 80 columns no
    help line is longer, so a terminal never breaks a command in the middle."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [*command.split(), "--help"], terminal_width=80, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    long = [line for line in result.output.splitlines() if len(line) > 80]
    assert not long, "\n".join(long)


@pytest.mark.parametrize("command", _command_names())
def test_arguments_are_named_in_capitals_in_help(command: str) -> None:
    from typer.testing import CliRunner

    usage = CliRunner().invoke(app, [*command.split(), "--help"]).output.splitlines()[0]
    for placeholder in re.findall(r"[{\\[]([^\\]}]+)[}\\]]", usage.split("[OPTIONS]", 1)[-1]):
        assert placeholder.rstrip(".") == placeholder.rstrip(".").upper(), usage
