"""Every ``keyless serve`` flag has the same effect with ``--workers 1`` and ``--workers 2``: the
workers build their application from the parent's resolved settings (one object), not from a few
exported environment variables. Each flag has a check below, run against a real server over real
sockets; a flag added without a check fails ``test_every_serve_flag_has_a_check``."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import typer.main
from tests._support.net import free_port
from tests._support.oidc_issuer import TestIssuer
from tests._support.processes import Server, worker_pids

from keyless.cli import app

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
HOST = "127.0.0.2"  # not the default 127.0.0.1: --host must be what the workers listen on
TENANT = str(uuid.uuid4())
CALLER = str(uuid.uuid4())
SUBJECT = "system:serviceaccount:apps:flags"


def _trust_file(path: Path, issuer: TestIssuer) -> Path:
    path.write_text(
        f"""tenants:
  - id: {TENANT}
    displayName: Flags
    domains: [flags.example]
    applications:
      - displayName: flags-api
        appId: {uuid.uuid4()}
        identifierUris: [api://flags-api]
        appRoles:
          - {{id: {uuid.uuid4()}, value: Flags.Read, displayName: Read, allowedMemberTypes: [Application]}}
      - displayName: flags-caller
        appId: {CALLER}
        federatedIdentityCredentials:
          - name: loopback-issuer
            issuer: {issuer.url}
            subject: {SUBJECT}
            audiences: [api://AzureADTokenExchange]
        appRoleAssignments:
          - {{resource: flags-api, appRole: Flags.Read}}
"""
    )
    return path


@dataclass
class Served:
    server: Server
    workers: int
    port: int
    data_dir: Path
    env_data_dir: Path
    public_url: str
    issuer: TestIssuer

    def client(self) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.data_dir / "tls" / "ca.pem"))
        return httpx.Client(base_url=f"https://{HOST}:{self.port}", verify=context, timeout=10)


def _host(served: Served) -> None:
    with served.client() as client:
        assert client.get("/healthz").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"https://127.0.0.1:{served.port}/healthz", verify=False, timeout=2)


def _port(served: Served) -> None:
    with served.client() as client:
        assert client.get("/healthz").json()["status"] == "ok"


def _data_dir(served: Served) -> None:
    # The admin key the parent wrote in --data-dir (not in KEYLESS_DATA_DIR) opens the admin API of
    # whichever worker answers: each one read the same directory and key-encryption key.
    assert not (served.env_data_dir / "admin.key").exists()
    key = (served.data_dir / "admin.key").read_text().strip()
    for _ in range(6):
        with served.client() as client:  # a new connection each: both workers answer
            answer = client.get("/admin/v1.0/tenants", headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 200, answer.text
            assert TENANT in answer.text


def _trust(served: Served) -> None:
    with served.client() as client:
        doc = client.get("/flags.example/v2.0/.well-known/openid-configuration")
        assert doc.status_code == 200, doc.text


def _workers(served: Served) -> None:
    expected = 0 if served.workers == 1 else served.workers
    if expected:
        served.server.serving_workers(expected)
    assert len(worker_pids(served.server.process.pid)) == expected


def _public_url(served: Served) -> None:
    for _ in range(4):
        with served.client() as client:
            doc = client.get(f"/{TENANT}/v2.0/.well-known/openid-configuration").json()
            assert doc["issuer"] == f"{served.public_url}/{TENANT}/v2.0"


def _dev(served: Served) -> None:
    # Development mode accepts an http issuer on loopback: a federated exchange succeeds on every
    # worker (new connections spread over them), where without it each refuses with AADSTS90061.
    for _ in range(6):
        with served.client() as client:
            answer = client.post(
                f"/{TENANT}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": CALLER,
                    "scope": "api://flags-api/.default",
                    "client_assertion_type": JWT_BEARER,
                    "client_assertion": served.issuer.mint(sub=SUBJECT),
                },
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["token_type"] == "Bearer"


# The check for each flag of `keyless serve`, by its parameter name.
FLAG_CHECKS: dict[str, Callable[[Served], None]] = {
    "host": _host,
    "port": _port,
    "data_dir": _data_dir,
    "trust": _trust,
    "workers": _workers,
    "public_url": _public_url,
    "dev": _dev,
}


def test_every_serve_flag_has_a_check() -> None:
    group = typer.main.get_command(app)
    serve = group.commands["serve"]  # type: ignore[attr-defined]
    assert {param.name for param in serve.params} == set(FLAG_CHECKS)


@contextmanager
def _serving(workers: int, tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    data_dir, env_data_dir = tmp_path / "data", tmp_path / "env-data"
    public_url = f"https://keyless.test:{port}"
    with TestIssuer() as issuer:
        args = [
            "serve",
            "--host", HOST,
            "--port", str(port),
            "--data-dir", str(data_dir),
            "--trust", str(_trust_file(tmp_path / "trust.yaml", issuer)),
            "--workers", str(workers),
            "--public-url", public_url,
            "--dev",
        ]  # fmt: skip
        with Server(args, env={"KEYLESS_DATA_DIR": str(env_data_dir)}) as server:
            server.wait_listening(HOST, port)
            if workers > 1:
                server.serving_workers(workers)
            yield Served(server, workers, port, data_dir, env_data_dir, public_url, issuer)
            assert server.stop() == 0, server.output()


@pytest.mark.parametrize("workers", [1, 2])
def test_every_serve_flag_has_the_same_effect_with_one_or_two_workers(workers: int, tmp_path: Path) -> None:
    failures: dict[str, str] = {}
    with _serving(workers, tmp_path) as served:
        for flag, check in FLAG_CHECKS.items():
            try:
                check(served)
            except (Exception, pytest.fail.Exception) as exc:
                failures[flag] = f"{type(exc).__name__}: {exc}"
    assert not failures, failures
