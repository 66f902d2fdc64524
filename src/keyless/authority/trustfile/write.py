"""The one serializer of trust documents, for export and for the wire.

``document_data`` turns a ``TrustDocument`` into plain data (YAML or JSON). ``export`` reads the
store into a document (``from_store``) and serializes it without secret values: secrets appear as
``{displayName, hint}`` (such an entry keeps the stored secret as it is), certificates inline as
PEM, role assignments by resource display name (or appId when the name is not unique) and role
value; the result loads back into an empty plan. ``wire.to_wire`` serializes a resolved document
*with* its secret values (``secretText``), for the admin API.

Optional fields at their default are left out; tenants always carry every field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from keyless.authority.directory.admin import DirectoryAdmin
from keyless.authority.model import Application, ClientSecret, Tenant
from keyless.authority.trustfile.schema import (
    APPLICATION_PROPERTIES,
    ApplicationSpec,
    AppRoleSpec,
    CertificateSpec,
    FicSpec,
    RoleAssignmentSpec,
    SecretSpec,
    TenantSpec,
    TrustDocument,
)

__all__ = ["document_data", "export", "from_store"]


# -- document -> data ---------------------------------------------------------------------------------


def document_data(doc: TrustDocument, *, secret_values: bool) -> dict[str, Any]:
    """``doc`` as plain data; ``secret_values`` writes each known secret value as ``secretText``."""
    return {"tenants": [_tenant(t, secret_values) for t in doc.tenants]}


def _tenant(spec: TenantSpec, secret_values: bool) -> dict[str, Any]:
    return {
        "id": spec.id,
        "displayName": spec.display_name,
        "domains": list(spec.domains),
        "signingAlgorithm": spec.signing_alg,
        "detailedErrors": spec.detailed_errors,
        "maxFederatedIdentityCredentialsPerApp": spec.max_fics_per_app,
        "applications": [_application(a, secret_values) for a in spec.applications],
    }


def _application(spec: ApplicationSpec, secret_values: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"displayName": spec.display_name, "appId": spec.app_id}
    if spec.identifier_uris:
        entry["identifierUris"] = list(spec.identifier_uris)
    if spec.requested_access_token_version is not None:
        entry["api"] = {"requestedAccessTokenVersion": spec.requested_access_token_version}
    if spec.app_role_assignment_required:
        entry["appRoleAssignmentRequired"] = True
    if spec.app_roles:
        entry["appRoles"] = [_role(r) for r in spec.app_roles]
    if spec.fics:
        entry["federatedIdentityCredentials"] = [_fic(f) for f in spec.fics]
    if spec.secrets:
        entry["passwordCredentials"] = [_secret(s, secret_values) for s in spec.secrets]
    if spec.certificates:
        entry["keyCredentials"] = [_certificate(c) for c in spec.certificates]
    if spec.role_assignments:
        entry["appRoleAssignments"] = [
            {"resource": a.resource, "appRole": a.app_role} for a in spec.role_assignments
        ]
    return entry


def _role(spec: AppRoleSpec) -> dict[str, Any]:
    return {
        **({"id": spec.id} if spec.id else {}),
        "value": spec.value,
        "displayName": spec.display_name,
        "description": spec.description,
        "allowedMemberTypes": list(spec.allowed_member_types),
        "isEnabled": spec.is_enabled,
    }


def _fic(spec: FicSpec) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": spec.name, "issuer": spec.issuer}
    if spec.expression is not None:
        entry["claimsMatchingExpression"] = {"value": spec.expression, "languageVersion": 1}
    else:
        entry["subject"] = spec.subject
    if spec.condition is not None:
        entry["condition"] = spec.condition
    if spec.allow_broad_match:
        entry["allowBroadMatch"] = True
    entry["audiences"] = list(spec.audiences)
    if spec.description is not None:
        entry["description"] = spec.description
    return entry


def _secret(spec: SecretSpec, secret_values: bool) -> dict[str, Any]:
    if secret_values and spec.value is not None:
        return {"displayName": spec.display_name, "secretText": spec.value}
    return {"displayName": spec.display_name, "hint": spec.hint or ""}


def _certificate(spec: CertificateSpec) -> dict[str, Any]:
    pem = x509.load_der_x509_certificate(spec.cert_der).public_bytes(Encoding.PEM).decode("ascii")
    return {
        **({"displayName": spec.display_name} if spec.display_name is not None else {}),
        "certificate": pem,
    }


# -- store -> document --------------------------------------------------------------------------------


def export(admin: DirectoryAdmin, tenant_ids: Sequence[str] | None = None) -> dict[str, Any]:
    """The store (all tenants, or those named) as plain data, ready for YAML or JSON.

    Role assignments naming roles that no longer exist are left out.
    """
    return document_data(from_store(admin, tenant_ids), secret_values=False)


def from_store(admin: DirectoryAdmin, tenant_ids: Sequence[str] | None = None) -> TrustDocument:
    """The store (all tenants, or those named) as a trust document."""
    tenants = [admin.get_tenant(t) for t in tenant_ids] if tenant_ids is not None else admin.list_tenants()
    return TrustDocument(tuple(_tenant_spec(admin, t) for t in tenants), source="<store>")


def _tenant_spec(admin: DirectoryAdmin, tenant: Tenant) -> TenantSpec:
    apps = admin.list_applications(tenant.id)
    names = [a.display_name for a in apps]
    by_sp = {a.service_principal_id: a for a in apps}

    def reference(app: Application) -> str:
        return app.display_name if names.count(app.display_name) == 1 else app.app_id

    held: dict[str, list[RoleAssignmentSpec]] = {}
    for assignment in admin.list_role_assignments(tenant.id):
        client, resource = by_sp.get(assignment.principal_id), by_sp.get(assignment.resource_id)
        role = (
            next((r for r in resource.app_roles if r.id == assignment.app_role_id), None)
            if resource
            else None
        )
        if client is not None and resource is not None and role is not None:
            held.setdefault(client.app_id, []).append(RoleAssignmentSpec(reference(resource), role.value))
    return TenantSpec(
        id=tenant.id,
        display_name=tenant.display_name,
        domains=tenant.domains,
        signing_alg=tenant.signing_alg,
        detailed_errors=tenant.detailed_errors,
        max_fics_per_app=tenant.max_fics_per_app,
        applications=tuple(_application_spec(admin, app, held.get(app.app_id, [])) for app in apps),
    )


def _application_spec(
    admin: DirectoryAdmin, app: Application, held: list[RoleAssignmentSpec]
) -> ApplicationSpec:
    latest: dict[str, ClientSecret] = {}
    for secret in admin.list_secrets(app):
        latest[secret.display_name] = secret
    certificates = {c.thumbprint_sha1: c for c in admin.list_certificates(app)}
    return ApplicationSpec(
        app_id=app.app_id,
        **{attr: getattr(app, attr) for _, attr in APPLICATION_PROPERTIES},
        app_roles=tuple(
            AppRoleSpec(r.id, r.value, r.display_name, r.description, r.allowed_member_types, r.is_enabled)
            for r in app.app_roles
        ),
        fics=tuple(
            FicSpec(
                f.name,
                f.issuer,
                f.subject,
                f.audiences,
                f.description,
                f.claims_matching_expression,
                f.condition,
                f.allow_broad_match,
            )
            for f in admin.list_fics(app)
        ),
        secrets=tuple(SecretSpec(s.display_name, hint=s.hint) for s in latest.values()),
        certificates=tuple(
            CertificateSpec(c.cert_der, c.thumbprint_sha1, c.display_name) for c in certificates.values()
        ),
        role_assignments=tuple(held),
    )
