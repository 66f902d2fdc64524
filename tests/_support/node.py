"""Run the real @azure/msal-node against a keyless authority (see ``msal_node/acquire.mjs``).

    ensure_msal_node()            install the pinned @azure/msal-node once per checkout (npm ci)
    msal_node_acquire(cfg, ...)   one acquireTokenByClientCredential in a fresh node process

Without node or npm the tests that need them are skipped, unless ``CI`` is set or
``KEYLESS_REQUIRE_SERVICES=1``: then they fail with a clear error instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from tests._services import services_required

__all__ = [
    "HARNESS_DIR",
    "MsalNodeHarnessError",
    "ensure_msal_node",
    "msal_node_acquire",
    "msal_node_available",
]

HARNESS_DIR = Path(__file__).resolve().parent / "msal_node"
MSAL_NODE_PACKAGE = "@azure/msal-node"
MIN_NODE_MAJOR = 20  # @azure/msal-node 7 declares engines.node >= 20
INSTALL_TIMEOUT = 600.0
SKIP_REASON = "node/npm not available: msal-node tests skipped"
INSTALL_FAILED = "@azure/msal-node could not be installed: msal-node tests skipped"


class MsalNodeHarnessError(RuntimeError):
    """The harness could not run (missing tools where they are required, install failure, crash)."""


# --------------------------------------------------------------------------- availability


def _unavailable(problem: str, headline: str = SKIP_REASON) -> NoReturn:
    """Fail loudly where node is required (CI), otherwise skip the calling test."""
    if services_required():
        raise MsalNodeHarnessError(
            f"msal-node tests cannot run: {problem} "
            "[required because CI or KEYLESS_REQUIRE_SERVICES=1 is set]"
        )
    pytest.skip(f"{headline} ({problem})")


@functools.cache
def _node_problem() -> str | None:
    """Why node/npm cannot be used here, or None when they can."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if path is None)
        return f"{missing} not on PATH"
    try:
        version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        major = int(version.lstrip("v").split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return f"`node --version` failed: {exc}"
    if major < MIN_NODE_MAJOR:
        return f"node {version} is older than v{MIN_NODE_MAJOR}"
    return None


def msal_node_available() -> bool:
    """True when node (v20+) and npm are on PATH; nothing is installed by asking."""
    return _node_problem() is None


# --------------------------------------------------------------------------- installation


def _pinned_version() -> str:
    manifest = json.loads((HARNESS_DIR / "package.json").read_text(encoding="utf-8"))
    return str(manifest["dependencies"][MSAL_NODE_PACKAGE])


def _installed() -> bool:
    """The pinned @azure/msal-node is in node_modules (npm ci writes it last-but-complete)."""
    installed = HARNESS_DIR / "node_modules" / MSAL_NODE_PACKAGE / "package.json"
    try:
        version = json.loads(installed.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return False
    return bool(version == _pinned_version())


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    """An exclusive lock across processes (pytest-xdist workers) while npm runs."""
    lock_dir = HARNESS_DIR / ".cache"
    lock_dir.mkdir(exist_ok=True)
    fd = os.open(lock_dir / "install.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _npm(args: list[str]) -> subprocess.CompletedProcess[str]:
    npm = shutil.which("npm")
    assert npm is not None
    env = {**os.environ, "npm_config_update_notifier": "false"}
    return subprocess.run(
        [npm, *args],
        cwd=HARNESS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )


def ensure_msal_node() -> Path:
    """Install the pinned @azure/msal-node into ``HARNESS_DIR`` once, and return that directory.

    Runs ``npm ci --no-audit --no-fund`` (falling back to ``npm install`` that leaves the lock file
    alone) under a file lock, unless the pinned version is already installed. Skips the calling test
    (or raises, in CI) when node/npm are missing or the installation fails.
    """
    problem = _node_problem()
    if problem is not None:
        _unavailable(problem)
    if _installed():
        return HARNESS_DIR
    with _install_lock():
        if _installed():  # another worker finished while we waited
            return HARNESS_DIR
        try:
            result = _npm(["ci", "--no-audit", "--no-fund"])
            if result.returncode != 0:
                result = _npm(["install", "--no-audit", "--no-fund", "--package-lock=false"])
        except (OSError, subprocess.SubprocessError) as exc:
            _unavailable(f"npm could not install {MSAL_NODE_PACKAGE} in {HARNESS_DIR}: {exc}", INSTALL_FAILED)
        if result.returncode != 0 or not _installed():
            output = (result.stdout + result.stderr).strip()[-2000:]
            _unavailable(
                f"npm could not install {MSAL_NODE_PACKAGE} in {HARNESS_DIR}:\n{output}", INSTALL_FAILED
            )
    return HARNESS_DIR


# --------------------------------------------------------------------------- running


def msal_node_acquire(config: dict[str, Any], *, ca_file: Path, timeout: float = 60) -> dict[str, Any]:
    """Run ``acquire.mjs`` once with ``config`` on stdin and return its JSON result.

    ``config``: ``{authority, clientId, scopes, knownAuthorities, clientSecret?, clientAssertion?,
    clientCertificate?: {thumbprintSha256, privateKey, x5c}, protocolMode?}``. Returns
    ``{"ok": True, "accessToken", "expiresOn", "tokenType", "fromCache"}`` or
    ``{"ok": False, "errorCode", "errorMessage", "subError", "correlationId", ...}``.
    Node trusts ``ca_file`` through ``NODE_EXTRA_CA_CERTS``, whatever the environment held before.
    With ``KEYLESS_MSAL_NODE_LOG=1`` msal-node's verbose log (PII off) is copied to stderr.
    """
    harness = ensure_msal_node()
    ca_file = Path(ca_file).resolve()
    if not ca_file.is_file():
        raise MsalNodeHarnessError(f"CA file {ca_file} does not exist")
    node = shutil.which("node")
    assert node is not None
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(ca_file)}
    env.pop("NODE_TLS_REJECT_UNAUTHORIZED", None)  # certificate checks stay on
    try:
        result = subprocess.run(
            [node, str(harness / "acquire.mjs")],
            cwd=harness,
            env=env,
            input=json.dumps(config),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise MsalNodeHarnessError(f"msal-node harness timed out after {timeout} s") from exc
    if result.stderr and os.environ.get("KEYLESS_MSAL_NODE_LOG"):
        sys.stderr.write(result.stderr)  # msal-node's log; pytest shows it with a failing test
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        raise MsalNodeHarnessError(
            f"msal-node harness crashed (exit {result.returncode}):\n"
            f"stdout: {result.stdout.strip()[-2000:]}\nstderr: {result.stderr.strip()[-2000:]}"
        )
    try:
        parsed = json.loads(lines[-1])
    except ValueError as exc:
        raise MsalNodeHarnessError(f"msal-node harness printed no JSON: {result.stdout!r}") from exc
    if not isinstance(parsed, dict):
        raise MsalNodeHarnessError(f"msal-node harness printed {parsed!r}, not an object")
    return parsed
