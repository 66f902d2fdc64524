"""The README's two commands and its five-minute tour work as written: `make run` is `keyless dev`
(played by tests/dev/test_dev_command.py), and every command of the tour runs against a live stack."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._support.net import free_ports

from keyless.dev._stack import DevPorts, DevStack, run_stack

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def _tour_commands() -> list[str]:
    tour = README.split("## Five-minute tour", 1)[1].split("\n## ", 1)[0]
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", tour, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)  # continuation lines
        for line in joined.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command and not command.startswith("#"):
                commands.append(command)
    inline = re.findall(r"`(keyless (?:export|plan|apply)[^`]*)`", tour)
    return commands + inline


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    ports = DevPorts(*free_ports(3))
    with run_stack(tmp_path_factory.mktemp("readme"), REPO / "examples" / "trust.yaml", ports) as stack:
        yield stack


def test_make_run_runs_keyless_dev() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^run: .*\n\t\$\(BIN\)/keyless dev \$\(ARGS\)$", makefile, re.M)
    # `make run` installs the server extra only: no test or lint tools.
    assert re.search(
        r"^\$\(RUN_STAMP\):.*(\n\t.*)*\n\t\$\(BIN\)/pip install --quiet -e '\.\[server\]'", makefile, re.M
    )
    assert "make run" in README and "make test" in README


def test_the_tour_has_commands() -> None:
    commands = _tour_commands()
    assert any(c.startswith("keyless explain") for c in commands)
    assert any(c.startswith("python examples/") for c in commands)


def test_the_tour_replays_as_printed_in_a_fresh_shell_that_sources_only_dev_env(
    dev: DevStack, tmp_path: Path
) -> None:
    """Each command of the tour, as the README prints it, in a new bash whose environment has only
    the system PATH and what ``. .keyless/dev.env`` adds (no virtualenv activated, no variables set
    by the test). The stack runs in a temporary directory on free ports, so the one substitution
    is where dev.env lies; /tmp/t and mine.yaml go to the test's own directory."""
    env_file = dev.data_dir.resolve() / "dev.env"
    clean = {
        "HOME": str(tmp_path),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "COLUMNS": "200",
    }
    commands = _tour_commands()
    assert commands[0] == ". .keyless/dev.env", commands[0]
    for command in commands[1:]:
        line = command.replace("/tmp/t", str(tmp_path / "t")).replace(
            "mine.yaml", str(tmp_path / "mine.yaml")
        )
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-c", f". {env_file} && {line}"],
            capture_output=True,
            text=True,
            timeout=90,
            env=clean,
            cwd=REPO,  # the clone, where a newcomer follows the README
        )
        expected = (0, 1) if line.startswith("keyless explain") else (0,)  # refused on purpose
        assert result.returncode in expected, f"{command}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr, command


def test_dev_env_keeps_the_public_cas_and_adds_the_local_one(dev: DevStack) -> None:
    bundle = dev.ca_bundle.read_text()
    assert dev.ca_file.read_text().strip() in bundle
    assert bundle.count("BEGIN CERTIFICATE") > 50  # the system's (or certifi's) CAs as well
    exported = (dev.data_dir / "dev.env").read_text()
    assert f"SSL_CERT_FILE={dev.ca_bundle}" in exported
    assert "export PATH=" in exported and str(Path(sys.executable).parent) in exported
