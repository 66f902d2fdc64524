"""A real keyless authority for tests: HTTPS with its local CA on 127.0.0.1, an ephemeral port,
served by uvicorn in a background thread, plus helpers that seed the federation scenario."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyless._net import bind_socket
from keyless._serving import ServerThread
from keyless.authority._service import Authority
from keyless.authority.directory.admin import DirectoryAdmin
from keyless.authority.http.app import create_app
from keyless.authority.model import FIC_AUDIENCE_DEFAULT, Application, AppRole, Tenant, new_id
from keyless.config import load_authority_settings
from keyless.tls import ensure_local_tls


@dataclass
class RunningAuthority:
    base_url: str  # https://localhost:PORT
    ca_file: Path
    authority: Authority
    data_dir: Path

    @property
    def admin(self) -> DirectoryAdmin:
        return self.authority.admin

    def token_url(self, tenant: str, version: int = 2) -> str:
        return f"{self.base_url}/{tenant}/oauth2/{'v2.0/' if version == 2 else ''}token"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def admin_key(self) -> str:
        return (self.data_dir / "admin.key").read_text().strip()


@contextlib.contextmanager
def run_authority(data_dir: Path, **settings: Any) -> Iterator[RunningAuthority]:
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    base_url = f"https://localhost:{port}"
    tls = ensure_local_tls(data_dir)
    assert tls.ca_cert is not None
    authority = Authority.open(
        load_authority_settings(data_dir=data_dir, port=port, public_url=base_url, **settings)
    )
    with ServerThread(create_app(authority), sock, certfile=tls.cert, keyfile=tls.key, name="authority"):
        yield RunningAuthority(base_url, tls.ca_cert, authority, data_dir)


@dataclass
class Federation:
    """The seed scenario's directory: a resource API with roles and a caller app that trusts an issuer."""

    tenant: Tenant
    resource: Application
    client: Application
    scope: str

    @property
    def tenant_id(self) -> str:
        return self.tenant.id


def seed_federation(
    admin: DirectoryAdmin,
    *,
    issuer: str,
    subject: str = "112233445566778899001",
    audience: str = FIC_AUDIENCE_DEFAULT,
    token_version: int = 2,
    roles: tuple[str, ...] = ("Blob.Read",),
    domain: str = "contoso.example",
    assignment_required: bool = False,
) -> Federation:
    tenant = admin.create_tenant("Contoso", domains=[domain])
    resource = admin.create_application(
        tenant.id,
        "blob-api",
        identifier_uris=["api://blob-api"],
        app_roles=[AppRole(id=new_id(), value="Blob.Read"), AppRole(id=new_id(), value="Blob.Write")],
        requested_access_token_version=2 if token_version == 2 else 1,
        app_role_assignment_required=assignment_required,
    )
    client = admin.create_application(tenant.id, "cloud-run-caller")
    admin.create_fic(client, name="cloud-run", issuer=issuer, subject=subject, audiences=[audience])
    for role in roles:
        admin.assign_role(client, resource, role)
    return Federation(tenant, resource, client, "api://blob-api/.default")
