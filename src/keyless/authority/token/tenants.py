"""The tenant a token or metadata URL names: a GUID or a verified domain, never ``/common``."""

from __future__ import annotations

import re

from keyless.authority.directory.rules import is_guid
from keyless.authority.directory.snapshot import Directory, TenantView
from keyless.authority.token.aadsts import refuse

__all__ = ["MULTI_TENANT", "is_tenant_ref", "resolve_tenant"]

_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
MULTI_TENANT = frozenset({"common", "organizations", "consumers"})


def is_tenant_ref(ref: str) -> bool:
    return is_guid(ref) or bool(_DOMAIN.match(ref)) or ref.lower() in MULTI_TENANT


def resolve_tenant(directory: Directory, ref: str) -> TenantView:
    """The tenant a URL names, by GUID or domain (case-insensitive)."""
    if not is_tenant_ref(ref):
        raise refuse(900023, tenant=ref)
    if ref.lower() in MULTI_TENANT:
        raise refuse(9001023)
    tenant = directory.tenant(ref)
    if tenant is None:
        raise refuse(90002, tenant=ref)
    return tenant
