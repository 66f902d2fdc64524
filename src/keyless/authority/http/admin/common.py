"""What every admin route shares: the admin-key check, lookups that 404 with a clear message,
``If-Match`` handling, and the route paths."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from keyless.authority._service import Authority
from keyless.authority.directory.admin import DirectoryAdmin
from keyless.authority.model import Application, Tenant
from keyless.errors import Conflict, NotFound

__all__ = [
    "APP",
    "FICS",
    "NO_CONTENT",
    "TENANT",
    "Admin",
    "IfMatch",
    "Json",
    "Unauthorized",
    "app_or_404",
    "authority_of",
    "check_version",
    "no_content",
    "require_admin",
    "set_etag",
    "tenant_or_404",
    "value_list",
]

log = logging.getLogger("keyless.admin")

TENANT = "/tenants/{tenant}"
APP = TENANT + "/applications/{app}"
FICS = APP + "/federatedIdentityCredentials"

Json = dict[str, Any]
NO_CONTENT: dict[str, Any] = {"status_code": 204, "response_class": Response}


class Unauthorized(Exception):
    """No admin key, or a wrong one: 401 with ``WWW-Authenticate``."""


bearer = HTTPBearer(auto_error=False, description="The admin key (written to admin.key at first start).")


def authority_of(request: Request) -> Authority:
    authority: Authority = request.app.state.authority
    return authority


def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("Authentication required: send Authorization: Bearer <admin key>.")
    if not authority_of(request).check_admin_key(credentials.credentials):
        log.warning(
            "admin API: refused a bad admin key from %s", request.client.host if request.client else "?"
        )
        raise Unauthorized("The admin key is not valid.")


def admin_of(request: Request) -> DirectoryAdmin:
    return authority_of(request).admin


Admin = Annotated[DirectoryAdmin, Depends(admin_of)]
IfMatch = Annotated[str | None, Header(description="Expected version (the ETag of a GET); 412 if it moved")]


def tenant_or_404(admin: DirectoryAdmin, ref: str) -> Tenant:
    try:
        return admin.get_tenant(ref)
    except NotFound:
        raise NotFound(f"Tenant '{ref}' does not exist.") from None


def app_or_404(admin: DirectoryAdmin, tenant: str, ref: str) -> Application:
    return admin.find_application(tenant_or_404(admin, tenant).id, ref)


def check_version(if_match: str | None, current: int) -> None:
    if if_match is None:
        return
    tags = [t.strip().removeprefix("W/").strip('"') for t in if_match.split(",")]
    if "*" not in tags and str(current) not in tags:
        raise Conflict(f'If-Match {if_match} does not match the current version "{current}"; re-read it.')


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def value_list(items: Sequence[Json]) -> Json:
    return {"value": list(items)}


def no_content(version: int | None = None) -> Response:
    """204, with the new ETag after an update."""
    return Response(status_code=204, headers={"ETag": f'"{version}"'} if version is not None else None)
