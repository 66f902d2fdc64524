"""Shell completion (typer's): the script for each shell, and completions of real commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests._support.processes import REPO


def keyless(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "keyless"), *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_completion_script_is_printed() -> None:
    shown = keyless("--show-completion", "bash")
    assert shown.returncode == 0, shown.stderr
    assert "_KEYLESS_COMPLETE=complete_bash" in shown.stdout
    assert "complete -o default -F _keyless_completion keyless" in shown.stdout


def test_commands_and_sub_commands_complete() -> None:
    top = keyless(env={"_KEYLESS_COMPLETE": "complete_bash", "COMP_WORDS": "keyless gu", "COMP_CWORD": "1"})
    assert top.stdout.split() == ["guard"]
    sub = keyless(
        env={"_KEYLESS_COMPLETE": "complete_bash", "COMP_WORDS": "keyless guard au", "COMP_CWORD": "2"}
    )
    assert sub.stdout.split() == ["authz"]
