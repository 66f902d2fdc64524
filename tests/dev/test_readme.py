"""The README's two commands and its five-minute tour work as written: `make run` is `keyless dev`
(played by tests/dev/test_dev_command.py), and every command of the tour runs against a live stack."""

from __future__ import annotations

import os
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


def test_every_tour_command_runs_against_a_live_stack(dev: DevStack, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GOOGLE_APPLICATION_CREDENTIALS"}
    env.update(dev.client_environment())
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["COLUMNS"] = "200"
    env["KEYLESS_DATA_DIR"] = str(dev.data_dir)  # `.keyless`, the default, as seen from the repository
    for command in _tour_commands():
        if command.startswith(". "):
            continue  # the environment above is what dev.env exports
        line = command.replace(".keyless", str(dev.data_dir)).replace("/tmp/t", str(tmp_path / "t"))
        line = line.replace("mine.yaml", str(tmp_path / "mine.yaml"))
        result = subprocess.run(
            ["bash", "-c", line], capture_output=True, text=True, timeout=90, env=env, cwd=REPO
        )
        expected = (
            (0, 1) if line.startswith("keyless explain") else (0,)
        )  # the tour's token is refused on purpose
        assert result.returncode in expected, f"{command}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr, command
