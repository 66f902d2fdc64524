"""``deploy/Dockerfile``: its final stage is a slim, non-root image with only the virtualenv and the
``keyless`` entry point; its build stage's steps, read from the file and run in a fresh virtualenv
here, install keyless, and the entry point starts a server that answers. Where a container runtime
answers (``docker info``), the image is built and runs ``keyless dev --once``."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from tests._support.net import free_port

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "Dockerfile"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [argument for word, argument in self.instructions if word == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for argument in self.all("ENV"):
            for pair in shlex.split(argument):
                key, value = pair.split("=", 1)
                values[key] = value
        return values


def _parse(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """The global ARGs and the stages of a Dockerfile (continuation lines joined, comments dropped)."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, argument = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = argument.split()
            base = words[0]
            for name, value in args.items():
                base = base.replace("${" + name + "}", value)
            stages.append(Stage(base, words[2] if len(words) == 3 and words[1].upper() == "AS" else None))
        elif keyword == "ARG" and not stages:
            name, _, value = argument.partition("=")
            args[name] = value
        else:
            stages[-1].instructions.append((keyword, argument.strip()))
    return args, stages


def test_the_final_stage_is_slim_non_root_and_holds_only_the_virtualenv() -> None:
    _, stages = _parse(DOCKERFILE)
    build, final = stages
    assert build.name == "build"
    assert final.base.startswith("python:") and "-slim" in final.base
    assert final.base == build.base  # the virtualenv runs on the interpreter that built it
    user = final.all("USER")[-1]
    assert user.split(":")[0] not in ("root", "0")
    copies = final.all("COPY")
    assert copies == ["--from=build /opt/keyless /opt/keyless"]
    for command in final.all("RUN"):  # nothing installed in the final stage but the user
        assert not any(word in command for word in ("pip", "apt-get", "gcc", "build-essential"))
    assert json.loads(final.all("ENTRYPOINT")[-1]) == ["keyless"]
    assert json.loads(final.all("CMD")[-1]) == ["serve"]
    assert final.env()["KEYLESS_HOST"] == "0.0.0.0"
    assert build.env()["VENV"] == "/opt/keyless"
    assert any('pip" uninstall' in run or "pip uninstall" in run for run in build.all("RUN"))


def _emulate_copy(argument: str, context: Path, workdir: Path) -> None:
    *sources, destination = shlex.split(argument)
    target = workdir / destination
    for source in sources:
        origin = context / source
        if origin.is_dir():
            shutil.copytree(origin, target if not destination.endswith("/") else target / origin.name,
                            ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target / origin.name)


def test_the_build_steps_install_keyless_and_the_entry_point_serves(tmp_path: Path) -> None:
    _, stages = _parse(DOCKERFILE)
    build, final = stages
    venv = tmp_path / "venv"
    workdir = tmp_path / "src"
    workdir.mkdir()
    env = {
        **os.environ,
        **build.env(),
        "VENV": str(venv),
        # The interpreter running the tests stands in for the base image's.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("VIRTUAL_ENV", None)
    env.pop("PIP_NO_CACHE_DIR", None)  # reuse this machine's pip cache: the test stays quick
    for keyword, argument in build.instructions:
        if keyword == "COPY":
            _emulate_copy(argument, REPO, workdir)
        elif keyword == "RUN":
            step = subprocess.run(["sh", "-c", argument], cwd=workdir, env=env, capture_output=True, text=True,
                                  timeout=600)  # fmt: skip
            assert step.returncode == 0, f"RUN {argument}\n{step.stdout[-3000:]}\n{step.stderr[-3000:]}"
    assert not (venv / "bin" / "pip").exists(), "pip is left out of the image"

    entry = json.loads(final.all("ENTRYPOINT")[-1])
    command = json.loads(final.all("CMD")[-1])
    port = free_port()
    data_dir = tmp_path / "data"
    runtime = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KEYLESS_")},
        **final.env(),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "KEYLESS_DATA_DIR": str(data_dir),
        "KEYLESS_HOST": "127.0.0.1",  # the image listens on every address; the test on loopback
        "KEYLESS_PORT": str(port),
    }
    runtime.pop("VIRTUAL_ENV", None)
    executable = shutil.which(entry[0], path=runtime["PATH"])
    assert executable == str(venv / "bin" / "keyless")
    process = subprocess.Popen([executable, *entry[1:], *command], cwd=tmp_path, env=runtime,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                context = ssl.create_default_context(cafile=str(data_dir / "tls" / "ca.pem"))
                health = httpx.get(f"https://localhost:{port}/healthz", verify=context, timeout=2)
                break
            except (httpx.TransportError, OSError):
                assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
                time.sleep(0.3)
        assert health.status_code == 200
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    first = json.loads(output.splitlines()[0])  # the image logs JSON lines (KEYLESS_LOG_FORMAT=json)
    assert first["logger"].startswith("keyless")


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_the_image_builds_and_plays_the_dev_scenario() -> None:
    if not _docker_answers():
        pytest.skip("no container runtime here (`docker info` fails): the image build is not exercised")
    tag = "keyless:test"
    built = subprocess.run(["docker", "build", "-f", str(DOCKERFILE), "-t", tag, str(REPO)],
                           capture_output=True, text=True, timeout=900)  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    played = subprocess.run(["docker", "run", "--rm", tag, "dev", "--once"], capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert played.returncode == 0, played.stdout[-3000:] + played.stderr[-3000:]
