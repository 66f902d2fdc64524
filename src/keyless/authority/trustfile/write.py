"""Export: the store as a trust document that loads back into an empty plan.

Secrets appear as ``{displayName, hint}`` (their values cannot be exported; such an entry keeps the
stored secret as it is), certificates inline as PEM, role assignments by resource display name (or
appId when the name is not unique) and role value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from keyless.authority.directory.admin import DirectoryAdmin
from keyless.authority.model import Application, AppRole, ClientSecret, FederatedIdentityCredential, Tenant

__all__ = ["export"]


def export(admin: DirectoryAdmin, tenant_ids: Sequence[str] | None = None) -> dict[str, Any]:
    """The store (all tenants, or those named) as plain data, ready for YAML or JSON.

    Role assignments naming roles that no longer exist are left out.
    """
    store = admin.store
    tenants = [store.get_tenant(t) for t in tenant_ids] if tenant_ids is not None else store.list_tenants()
    return {"tenants": [_export_tenant(admin, t) for t in tenants]}


def _export_tenant(admin: DirectoryAdmin, tenant: Tenant) -> dict[str, Any]:
    apps = admin.store.list_applications(tenant.id)
    names = [a.display_name for a in apps]
    by_sp = {a.service_principal_id: a for a in apps}

    def reference(app: Application) -> str:
        return app.display_name if names.count(app.display_name) == 1 else app.app_id

    held: dict[str, list[dict[str, str]]] = {}
    for assignment in admin.store.list_role_assignments(tenant.id):
        client, resource = by_sp.get(assignment.principal_id), by_sp.get(assignment.resource_id)
        role = (
            next((r for r in resource.app_roles if r.id == assignment.app_role_id), None)
            if resource
            else None
        )
        if client is not None and resource is not None and role is not None:
            held.setdefault(client.app_id, []).append(
                {"resource": reference(resource), "appRole": role.value}
            )
    return {
        "id": tenant.id,
        "displayName": tenant.display_name,
        "domains": list(tenant.domains),
        "signingAlgorithm": tenant.signing_alg,
        "detailedErrors": tenant.detailed_errors,
        "maxFederatedIdentityCredentialsPerApp": tenant.max_fics_per_app,
        "applications": [_export_application(admin, app, held.get(app.app_id, [])) for app in apps],
    }


def _export_application(
    admin: DirectoryAdmin, app: Application, held: list[dict[str, str]]
) -> dict[str, Any]:
    entry: dict[str, Any] = {"displayName": app.display_name, "appId": app.app_id}
    if app.identifier_uris:
        entry["identifierUris"] = list(app.identifier_uris)
    if app.requested_access_token_version is not None:
        entry["api"] = {"requestedAccessTokenVersion": app.requested_access_token_version}
    if app.app_role_assignment_required:
        entry["appRoleAssignmentRequired"] = True
    if app.app_roles:
        entry["appRoles"] = [_export_role(r) for r in app.app_roles]
    fics = [_export_fic(f) for f in admin.store.list_fics(app.object_id)]
    if fics:
        entry["federatedIdentityCredentials"] = fics
    latest: dict[str, ClientSecret] = {}
    for secret in admin.store.list_secrets(app.object_id):
        latest[secret.display_name] = secret
    if latest:
        entry["passwordCredentials"] = [
            {"displayName": s.display_name, "hint": s.hint} for s in latest.values()
        ]
    certs = {c.thumbprint_sha1: c for c in admin.store.list_certificates(app.object_id)}
    if certs:
        entry["keyCredentials"] = [
            {"displayName": c.display_name, "certificate": _pem(c.cert_der)} for c in certs.values()
        ]
    if held:
        entry["appRoleAssignments"] = held
    return entry


def _export_role(role: AppRole) -> dict[str, Any]:
    return {
        "id": role.id,
        "value": role.value,
        "displayName": role.display_name,
        "description": role.description,
        "allowedMemberTypes": list(role.allowed_member_types),
        "isEnabled": role.is_enabled,
    }


def _export_fic(fic: FederatedIdentityCredential) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": fic.name,
        "issuer": fic.issuer,
        "subject": fic.subject,
        "audiences": list(fic.audiences),
    }
    if fic.description is not None:
        entry["description"] = fic.description
    return entry


def _pem(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode("ascii")
