"""keyless as people install it: the wheel is built from this checkout and installed into fresh
virtualenvs, one per set of extras, and each part is run from there.

* the core alone imports the SDK and the guard's verifier, and its `keyless` script says which
  extra to install instead of dying with an ImportError;
* `keyless[guard]` runs the guard's command line without the authority's database or FastAPI;
* `keyless[server]` runs the whole local stack (`keyless dev --once`).

Needs pip to reach the package index (or its cache); the wheel is built once per test run.
"""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from tests._support.net import free_ports

REPO = Path(__file__).resolve().parents[1]


def _run(
    *args: str | Path, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", out, REPO)
    if built.returncode != 0:
        pytest.skip(f"the wheel cannot be built here (pip could not get hatchling?): {built.stderr[-500:]}")
    (found,) = out.glob("keyless-*.whl")
    return found


def _venv_with(wheel: Path, where: Path, extras: str = "") -> Path:
    venv.EnvBuilder(with_pip=True).create(where)
    python = where / "bin" / "python"
    target = f"{wheel}[{extras}]" if extras else str(wheel)
    installed = _run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", target)
    assert installed.returncode == 0, installed.stderr[-2000:]
    return where / "bin"


def test_the_wheel_carries_the_type_marker_and_the_license(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "keyless/py.typed" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


def test_the_core_alone_imports_the_sdk_and_names_the_extra_for_the_command_line(
    wheel: Path, tmp_path: Path
) -> None:
    bin_dir = _venv_with(wheel, tmp_path / "core")
    imported = _run(bin_dir / "python", "-c", "import keyless.credential, keyless.jose, keyless.trust")
    assert imported.returncode == 0, imported.stderr
    script = _run(bin_dir / "keyless", "--version")
    assert script.returncode == 2
    assert "Traceback" not in script.stderr
    assert "pip install 'keyless[cli]'" in script.stderr


def test_the_guard_extra_runs_the_guard_without_the_authoritys_server_parts(
    wheel: Path, tmp_path: Path
) -> None:
    bin_dir = _venv_with(wheel, tmp_path / "guard", "guard")
    absent = _run(
        bin_dir / "python",
        "-c",
        "import importlib.util as u; print(u.find_spec('sqlalchemy'), u.find_spec('fastapi'))",
    )
    assert absent.stdout.strip() == "None None"
    checked = _run(bin_dir / "keyless", "guard", "check", "--config", REPO / "examples" / "guard-entra.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    served = _run(bin_dir / "keyless", "serve", "--help")
    assert "Traceback" not in served.stdout + served.stderr


def test_the_server_extra_plays_the_local_stack_from_the_wheel(wheel: Path, tmp_path: Path) -> None:
    bin_dir = _venv_with(wheel, tmp_path / "server", "server")
    authority, metadata, api = free_ports(3)
    played = _run(
        bin_dir / "keyless",
        "dev",
        "--once",
        "--data-dir", tmp_path / "data",
        "--authority-port", str(authority),
        "--metadata-port", str(metadata),
        "--api-port", str(api),
        cwd=tmp_path,
        timeout=180,
    )  # fmt: skip
    assert played.returncode == 0, (played.stdout + played.stderr)[-3000:]
    assert "Traceback" not in played.stdout + played.stderr
