"""The whole system on one machine: the authority (HTTPS, SQLite), the metadata emulator (playing
Cloud Run, in Google issuer mode so a trust written for the real cloud works unchanged), and the
demo blob API behind the guard (HTTPS). Every port is bound before anything starts, so a busy port
is reported with the flag that changes it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import socket
import ssl
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from keyless._net import bind_socket
from keyless._serving import ServerThread
from keyless.authority import (
    Authority,
    FederatedIdentityCredential,
    TrustDocument,
    apply,
    create_app,
    load_trust_file,
    plan,
)
from keyless.config import load_authority_settings
from keyless.dev._blobapi import DEFAULT_POLICY, create_blob_api
from keyless.errors import ConfigurationError
from keyless.guard import GuardConfig, GuardProxy, config_from_mapping
from keyless.metadata import GOOGLE_ISSUER, MetadataConfig, MetadataServer
from keyless.tls import TLSFiles, ensure_local_tls

__all__ = ["DevPorts", "DevStack", "run_stack"]

LOOPBACK = "127.0.0.1"
ENV_FILE = "dev.env"
LOCK_FILE = "dev.lock"
CA_BUNDLE_FILE = "clients-ca-bundle.pem"


@dataclass(frozen=True)
class DevPorts:
    authority: int = 8443
    metadata: int = 8080
    api: int = 8444


@dataclass(frozen=True)
class DevStack:
    data_dir: Path
    authority_url: str
    metadata_host: str
    api_url: str
    tls: TLSFiles
    tenant_id: str
    client_id: str
    resource_app_id: str
    scope: str
    env_file: Path
    authority: Authority
    seeded: str = ""  # what happened to the seed trust file at start

    def federated_credentials(self) -> list[FederatedIdentityCredential]:
        """The caller application's federated identity credentials, as the authority holds them."""
        view = self.authority.directory().tenant(self.tenant_id)
        app = view.application(self.client_id) if view else None
        return list(app.fics) if app else []

    @property
    def ca_file(self) -> Path:
        assert self.tls.ca_cert is not None
        return self.tls.ca_cert

    @property
    def ca_bundle(self) -> Path:
        """The system's trusted CAs plus the local CA, in one file (written by :func:`run_stack`):
        what the clients' CA variables point at, so a shell that sources dev.env still trusts
        public sites."""
        return self.data_dir.resolve() / "tls" / CA_BUNDLE_FILE

    def client_environment(self) -> dict[str, str]:
        """What a client process needs to play the workload against this stack (absolute paths)."""
        bundle = str(self.ca_bundle)
        return {
            "REQUESTS_CA_BUNDLE": bundle,
            "CURL_CA_BUNDLE": bundle,
            "SSL_CERT_FILE": bundle,
            "NODE_EXTRA_CA_CERTS": str(self.ca_file.resolve()),  # added to Node's own CAs
            "GCE_METADATA_HOST": self.metadata_host,
            "GCE_METADATA_IP": self.metadata_host,
            "AZURE_AUTHORITY_HOST": self.authority_url,
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_CLIENT_ID": self.client_id,
            "KEYLESS_AUTHORITY_HOST": self.authority_url,
            "KEYLESS_SCOPE": self.scope,
            "KEYLESS_API_URL": self.api_url,
            "KEYLESS_DATA_DIR": str(self.data_dir.resolve()),  # the CLI finds this stack from anywhere
        }


def _bind_all(ports: DevPorts) -> dict[str, socket.socket]:
    sockets: dict[str, socket.socket] = {}
    try:
        sockets["authority"] = bind_socket(LOOPBACK, ports.authority, flag="--authority-port")
        sockets["api"] = bind_socket(LOOPBACK, ports.api, flag="--api-port")
        sockets["upstream"] = bind_socket(LOOPBACK, 0)
        # The metadata server binds its own port (checked last, same message shape).
        bind_socket(LOOPBACK, ports.metadata, flag="--metadata-port").close()
    except Exception:
        for sock in sockets.values():
            sock.close()
        raise
    return sockets


def _guard_config(
    authority_url: str, tenant_id: str, audience: str, ca_file: Path, upstream: str
) -> GuardConfig:
    return config_from_mapping(
        {
            "issuers": [{"kind": "keyless", "url": authority_url, "tenants": [tenant_id], "versions": [2]}],
            "audiences": [audience],
            "ca_bundle": str(ca_file),
            "upstream": upstream,
            "policy": DEFAULT_POLICY,
        }
    )


def _write_ca_bundle(local_ca: Path, bundle: Path) -> None:
    """The system's CA certificates (the OpenSSL default file, else certifi's) followed by the local CA."""
    system = Path(ssl.get_default_verify_paths().cafile or "")
    if not system.is_file():
        import certifi

        system = Path(certifi.where())
    bundle.write_text(system.read_text() + "\n# keyless dev: the local CA\n" + local_ca.read_text())


def _write_env_file(stack_env: dict[str, str], path: Path) -> None:
    bin_dir = Path(sys.executable).parent  # the virtualenv keyless runs from
    lines = [
        f"# Source this file in a shell to run clients against `keyless dev`:  . {path.resolve()}",
        "# It puts keyless's virtualenv first on PATH (so `keyless` and `python` with its packages are",
        "# found), points the CA variables at the system's CAs plus the local CA, and names the stack.",
        f'export PATH={shlex.quote(str(bin_dir))}:"$PATH"',
    ]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in stack_env.items()]
    lines.append("unset GOOGLE_APPLICATION_CREDENTIALS")
    path.write_text("\n".join(lines) + "\n")


@contextlib.contextmanager
def _only_stack_in(data_dir: Path) -> Iterator[None]:
    """Hold ``data_dir/dev.lock`` while the stack runs: a second ``keyless dev`` on the same data
    directory is refused (it would overwrite this one's url and dev.env). The lock is the kernel's
    (``flock``), so a stack that died leaves nothing stale behind."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / LOCK_FILE, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            raise ConfigurationError(
                f"another keyless dev (pid {holder}) is running on {data_dir}: stop it, or give this one "
                "its own --data-dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _seed(authority: Authority, doc: TrustDocument, trust_file: Path, reseed: bool) -> str:
    """Apply the seed trust file to a new directory (or with ``reseed``); otherwise keep the user's
    changes and say how far the directory is from the seed."""
    if reseed or not authority.store.list_tenants():
        changes = apply(authority.admin, doc).changes
        return f"{trust_file}: {len(changes)} change(s) applied"
    pending = plan(authority.admin, doc).changes
    if not pending:
        return f"{trust_file}: the directory matches it"
    return (
        f"{trust_file}: not re-applied, keeping your changes ({len(pending)} difference(s) from it); "
        f"`keyless plan -f {trust_file}` shows them, `keyless dev --reseed` applies it"
    )


@contextlib.contextmanager
def run_stack(
    data_dir: Path, trust_file: Path, ports: DevPorts = DevPorts(), *, reseed: bool = False
) -> Iterator[DevStack]:
    doc = load_trust_file(trust_file)  # a bad file is reported before anything starts
    with _only_stack_in(data_dir), _running_stack(data_dir, trust_file, doc, ports, reseed) as dev:
        yield dev


@contextlib.contextmanager
def _running_stack(
    data_dir: Path, trust_file: Path, doc: TrustDocument, ports: DevPorts, reseed: bool
) -> Iterator[DevStack]:
    sockets = _bind_all(ports)
    authority_sock, api_sock, upstream_sock = sockets["authority"], sockets["api"], sockets["upstream"]
    # Port 0 picks a free port: the URLs carry the one the socket got.
    ports = DevPorts(authority_sock.getsockname()[1], ports.metadata, api_sock.getsockname()[1])
    tls = ensure_local_tls(data_dir)
    with contextlib.ExitStack() as stack:
        metadata = stack.enter_context(
            MetadataServer(MetadataConfig(issuer="google"), host=LOOPBACK, port=ports.metadata)
        )
        authority_url = f"https://localhost:{ports.authority}"
        settings = load_authority_settings(
            data_dir=data_dir,
            port=ports.authority,
            public_url=authority_url,
            dev_mode=True,
            allow_http_loopback_issuers=True,
            issuer_overrides={GOOGLE_ISSUER: metadata.discovery_url},
            log_level="warning",
        )
        authority = Authority.open(settings)
        seeded = _seed(authority, doc, trust_file, reseed)
        tenant, client, resource = _seed_ids(authority)
        stack.enter_context(
            ServerThread(
                create_app(authority),
                authority_sock,
                certfile=tls.cert,
                keyfile=tls.key,
                name="authority",
                limits=settings.server_limits,
            )
        )
        upstream = stack.enter_context(
            ServerThread(create_blob_api(data_dir / "blobs"), upstream_sock, name="blob-api")
        )
        upstream_url = f"http://{LOOPBACK}:{upstream.port}"
        assert tls.ca_cert is not None
        config = _guard_config(authority_url, tenant, resource, tls.ca_cert, upstream_url)
        proxy = GuardProxy(config=config)
        stack.enter_context(ServerThread(proxy, api_sock, certfile=tls.cert, keyfile=tls.key, name="guard"))
        dev = DevStack(
            data_dir=data_dir,
            authority_url=authority_url,
            metadata_host=metadata.host_port,
            api_url=f"https://localhost:{ports.api}",
            tls=tls,
            tenant_id=tenant,
            client_id=client,
            resource_app_id=resource,
            scope="api://blob-api/.default",
            env_file=data_dir / ENV_FILE,
            authority=authority,
            seeded=seeded,
        )
        _write_ca_bundle(dev.ca_file, dev.ca_bundle)
        _write_env_file(dev.client_environment(), dev.env_file)
        yield dev


def _seed_ids(authority: Authority) -> tuple[str, str, str]:
    """The tenant, caller and resource of the example trust (found by display name)."""
    for tenant in authority.store.list_tenants():
        apps = {a.display_name: a for a in authority.store.list_applications(tenant.id)}
        if "blob-api" in apps and "cloud-run-caller" in apps:
            return tenant.id, apps["cloud-run-caller"].app_id, apps["blob-api"].app_id
    raise LookupError("the trust file has no 'blob-api' and 'cloud-run-caller' applications")
