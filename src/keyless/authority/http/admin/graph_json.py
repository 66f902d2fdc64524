"""Model objects as Microsoft Graph-shaped JSON, shared by the admin API and the CLI.

Graph's property names (``displayName``, ``appRoles``, ``federatedIdentityCredentials`` ...), ISO
8601 UTC times ending in ``Z``, and never secret material: a client secret's value appears only in
``new_secret_json`` (the answer to ``addPassword``), hashes and private keys never.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

from keyless.authority.directory.admin import NewSecret
from keyless.authority.model import (
    Application,
    AppRole,
    AppRoleAssignment,
    Certificate,
    ClientSecret,
    FederatedIdentityCredential,
    SigningKeyRecord,
    Tenant,
)

__all__ = [
    "FIC_ODATA_TYPE",
    "Json",
    "app_role_json",
    "application_json",
    "assignment_json",
    "certificate_json",
    "fic_json",
    "iso_time",
    "new_secret_json",
    "secret_json",
    "signing_key_json",
    "tenant_json",
    "thumbprint_hex",
]

Json = dict[str, Any]

FIC_ODATA_TYPE = "#microsoft.graph.federatedIdentityCredential"


def iso_time(timestamp: float | None) -> str | None:
    """POSIX seconds as Graph writes times: ``2024-05-01T12:00:00Z``."""
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def thumbprint_hex(cert: Certificate) -> str:
    """Graph's ``customKeyIdentifier``: the upper-case hex SHA-1 thumbprint of the certificate."""
    return hashlib.sha1(cert.cert_der, usedforsecurity=False).hexdigest().upper()


def tenant_json(tenant: Tenant) -> Json:
    return {
        "id": tenant.id,
        "displayName": tenant.display_name,
        "domains": list(tenant.domains),
        "signingAlgorithm": tenant.signing_alg,
        "detailedErrors": tenant.detailed_errors,
        "maxFederatedIdentityCredentialsPerApp": tenant.max_fics_per_app,
    }


def app_role_json(role: AppRole) -> Json:
    return {
        "id": role.id,
        "value": role.value,
        "displayName": role.display_name,
        "description": role.description,
        "allowedMemberTypes": list(role.allowed_member_types),
        "isEnabled": role.is_enabled,
    }


def application_json(app: Application) -> Json:
    return {
        "id": app.object_id,
        "appId": app.app_id,
        "displayName": app.display_name,
        "identifierUris": list(app.identifier_uris),
        "appRoles": [app_role_json(role) for role in app.app_roles],
        "api": {"requestedAccessTokenVersion": app.requested_access_token_version},
        "servicePrincipalId": app.service_principal_id,
        "appRoleAssignmentRequired": app.app_role_assignment_required,
    }


def secret_json(secret: ClientSecret) -> Json:
    """A password credential as Graph lists it: ``secretText`` is always null after creation."""
    return {
        "keyId": secret.key_id,
        "displayName": secret.display_name,
        "hint": secret.hint,
        "secretText": None,
        "startDateTime": iso_time(secret.start),
        "endDateTime": iso_time(secret.end),
    }


def new_secret_json(new: NewSecret) -> Json:
    """The one response that carries a secret's value: the answer to ``addPassword``."""
    return {**secret_json(new.credential), "secretText": new.value}


def certificate_json(cert: Certificate) -> Json:
    return {
        "keyId": cert.key_id,
        "displayName": cert.display_name,
        "customKeyIdentifier": thumbprint_hex(cert),
        "startDateTime": iso_time(cert.start),
        "endDateTime": iso_time(cert.end),
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    }


def fic_json(fic: FederatedIdentityCredential) -> Json:
    """Graph's shape; a flexible credential adds Graph beta's ``claimsMatchingExpression``, and
    keyless's ``condition`` and ``allowBroadMatch`` appear only when set."""
    found: Json = {
        "@odata.type": FIC_ODATA_TYPE,
        "id": fic.id,
        "name": fic.name,
        "issuer": fic.issuer,
        "subject": fic.subject,
        "description": fic.description,
        "audiences": list(fic.audiences),
    }
    if fic.claims_matching_expression is not None:
        found["claimsMatchingExpression"] = {"value": fic.claims_matching_expression, "languageVersion": 1}
    if fic.condition is not None:
        found["condition"] = fic.condition
    if fic.allow_broad_match:
        found["allowBroadMatch"] = True
    return found


def assignment_json(assignment: AppRoleAssignment, apps_by_sp: Mapping[str, Application]) -> Json:
    """An app role assignment with the display names and role value resolved where known."""
    principal = apps_by_sp.get(assignment.principal_id)
    resource = apps_by_sp.get(assignment.resource_id)
    role_value = None
    if resource is not None:
        role_value = next((r.value for r in resource.app_roles if r.id == assignment.app_role_id), None)
    return {
        "id": assignment.id,
        "principalId": assignment.principal_id,
        "resourceId": assignment.resource_id,
        "appRoleId": assignment.app_role_id,
        "principalDisplayName": principal.display_name if principal else None,
        "resourceDisplayName": resource.display_name if resource else None,
        "appRoleValue": role_value,
        "createdDateTime": iso_time(assignment.created_at),
    }


def signing_key_json(key: SigningKeyRecord) -> Json:
    """Public facts about a signing key; never the (sealed) private key."""
    return {
        "kid": key.kid,
        "alg": key.alg,
        "state": str(key.state),
        "createdDateTime": iso_time(key.created_at),
        "activatesDateTime": iso_time(key.activates_at),
        "retiredDateTime": iso_time(key.retired_at),
    }
