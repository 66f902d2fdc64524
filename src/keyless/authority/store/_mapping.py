"""Translation between the model's frozen dataclasses and rows of ``_tables``.

``*_row`` functions turn an object into the column values to write; ``*_from`` functions turn a
fetched row back into the object. Tuples become JSON lists on the way in and tuples on the way
out; nothing else here touches the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from keyless.authority.model import (
    AdminKey,
    Application,
    AppRole,
    AppRoleAssignment,
    Certificate,
    ClientSecret,
    FederatedIdentityCredential,
    KeyState,
    Refusal,
    SigningAlg,
    SigningKeyRecord,
    Tenant,
    TokenVersion,
)

Row = Mapping[Any, Any]  # a RowMapping: keyed by column name (or Column)
Values = dict[str, Any]


def _strings(values: Sequence[Any]) -> tuple[str, ...]:
    return tuple(str(value) for value in values)


def _bytes(value: Any) -> bytes:
    """Drivers hand back ``bytes`` or ``memoryview`` for binary columns."""
    return bytes(value)


# -- tenants ---------------------------------------------------------------------------------


def tenant_row(tenant: Tenant) -> Values:
    return {
        "id": tenant.id,
        "display_name": tenant.display_name,
        "domains": list(tenant.domains),
        "signing_alg": tenant.signing_alg,
        "detailed_errors": tenant.detailed_errors,
        "max_fics_per_app": tenant.max_fics_per_app,
        "created_at": tenant.created_at,
        "version": tenant.version,
    }


def tenant_from(row: Row) -> Tenant:
    return Tenant(
        id=row["id"],
        display_name=row["display_name"],
        domains=_strings(row["domains"]),
        signing_alg=cast(SigningAlg, row["signing_alg"]),
        detailed_errors=bool(row["detailed_errors"]),
        max_fics_per_app=row["max_fics_per_app"],
        created_at=row["created_at"],
        version=row["version"],
    )


def domain_rows(tenant: Tenant) -> list[Values]:
    """The lower-cased, de-duplicated rows of ``tenant_domains`` for ``tenant``."""
    unique = dict.fromkeys(domain.lower() for domain in tenant.domains)
    return [{"domain": domain, "tenant_id": tenant.id} for domain in unique]


# -- applications ------------------------------------------------------------------------------


def _app_role_json(role: AppRole) -> Values:
    return {
        "id": role.id,
        "value": role.value,
        "display_name": role.display_name,
        "description": role.description,
        "allowed_member_types": list(role.allowed_member_types),
        "is_enabled": role.is_enabled,
    }


def _app_role_from(data: Row) -> AppRole:
    return AppRole(
        id=data["id"],
        value=data["value"],
        display_name=data["display_name"],
        description=data["description"],
        allowed_member_types=_strings(data["allowed_member_types"]),
        is_enabled=bool(data["is_enabled"]),
    )


def application_row(app: Application) -> Values:
    return {
        "object_id": app.object_id,
        "app_id": app.app_id,
        "tenant_id": app.tenant_id,
        "display_name": app.display_name,
        "identifier_uris": list(app.identifier_uris),
        "app_roles": [_app_role_json(role) for role in app.app_roles],
        "requested_access_token_version": app.requested_access_token_version,
        "service_principal_id": app.service_principal_id,
        "app_role_assignment_required": app.app_role_assignment_required,
        "created_at": app.created_at,
        "version": app.version,
    }


def application_from(row: Row) -> Application:
    return Application(
        object_id=row["object_id"],
        app_id=row["app_id"],
        tenant_id=row["tenant_id"],
        display_name=row["display_name"],
        identifier_uris=_strings(row["identifier_uris"]),
        app_roles=tuple(_app_role_from(role) for role in row["app_roles"]),
        requested_access_token_version=cast(TokenVersion | None, row["requested_access_token_version"]),
        service_principal_id=row["service_principal_id"],
        app_role_assignment_required=bool(row["app_role_assignment_required"]),
        created_at=row["created_at"],
        version=row["version"],
    )


# -- role assignments ----------------------------------------------------------------------------


def assignment_row(assignment: AppRoleAssignment) -> Values:
    return {
        "id": assignment.id,
        "tenant_id": assignment.tenant_id,
        "principal_id": assignment.principal_id,
        "resource_id": assignment.resource_id,
        "app_role_id": assignment.app_role_id,
        "created_at": assignment.created_at,
    }


def assignment_from(row: Row) -> AppRoleAssignment:
    return AppRoleAssignment(
        id=row["id"],
        tenant_id=row["tenant_id"],
        principal_id=row["principal_id"],
        resource_id=row["resource_id"],
        app_role_id=row["app_role_id"],
        created_at=row["created_at"],
    )


# -- credentials ---------------------------------------------------------------------------------


def secret_row(secret: ClientSecret) -> Values:
    return {
        "key_id": secret.key_id,
        "application_id": secret.application_id,
        "display_name": secret.display_name,
        "hint": secret.hint,
        "secret_hash": secret.secret_hash,
        "salt": secret.salt,
        "start_at": secret.start,
        "end_at": secret.end,
    }


def secret_from(row: Row) -> ClientSecret:
    return ClientSecret(
        key_id=row["key_id"],
        application_id=row["application_id"],
        display_name=row["display_name"],
        hint=row["hint"],
        secret_hash=_bytes(row["secret_hash"]),
        salt=_bytes(row["salt"]),
        start=row["start_at"],
        end=row["end_at"],
    )


def certificate_row(cert: Certificate) -> Values:
    return {
        "key_id": cert.key_id,
        "application_id": cert.application_id,
        "display_name": cert.display_name,
        "cert_der": cert.cert_der,
        "thumbprint_sha1": cert.thumbprint_sha1,
        "thumbprint_sha256": cert.thumbprint_sha256,
        "start_at": cert.start,
        "end_at": cert.end,
    }


def certificate_from(row: Row) -> Certificate:
    return Certificate(
        key_id=row["key_id"],
        application_id=row["application_id"],
        display_name=row["display_name"],
        cert_der=_bytes(row["cert_der"]),
        thumbprint_sha1=row["thumbprint_sha1"],
        thumbprint_sha256=row["thumbprint_sha256"],
        start=row["start_at"],
        end=row["end_at"],
    )


def fic_row(fic: FederatedIdentityCredential) -> Values:
    return {
        "id": fic.id,
        "application_id": fic.application_id,
        "name": fic.name,
        "issuer": fic.issuer,
        "subject": fic.subject,
        "audiences": list(fic.audiences),
        "description": fic.description,
        "created_at": fic.created_at,
        "version": fic.version,
        "claims_matching_expression": fic.claims_matching_expression,
        "condition": fic.condition,
        "allow_broad_match": fic.allow_broad_match,
    }


def fic_from(row: Row) -> FederatedIdentityCredential:
    return FederatedIdentityCredential(
        id=row["id"],
        application_id=row["application_id"],
        name=row["name"],
        issuer=row["issuer"],
        subject=row["subject"],
        audiences=_strings(row["audiences"]),
        description=row["description"],
        created_at=row["created_at"],
        version=row["version"],
        claims_matching_expression=row["claims_matching_expression"],
        condition=row["condition"],
        allow_broad_match=bool(row["allow_broad_match"]),
    )


# -- signing and admin keys ----------------------------------------------------------------------


def signing_key_row(key: SigningKeyRecord) -> Values:
    return {
        "kid": key.kid,
        "tenant_id": key.tenant_id,
        "alg": key.alg,
        "private_key_encrypted": key.private_key_encrypted,
        "cert_der": key.cert_der,
        "state": key.state.value,
        "created_at": key.created_at,
        "activates_at": key.activates_at,
        "retired_at": key.retired_at,
        "version": key.version,
    }


def signing_key_from(row: Row) -> SigningKeyRecord:
    return SigningKeyRecord(
        kid=row["kid"],
        tenant_id=row["tenant_id"],
        alg=cast(SigningAlg, row["alg"]),
        private_key_encrypted=_bytes(row["private_key_encrypted"]),
        cert_der=_bytes(row["cert_der"]),
        state=KeyState(row["state"]),
        created_at=row["created_at"],
        activates_at=row["activates_at"],
        retired_at=row["retired_at"],
        version=row["version"],
    )


def admin_key_row(key: AdminKey) -> Values:
    return {
        "id": key.id,
        "display_name": key.display_name,
        "key_hash": key.key_hash,
        "created_at": key.created_at,
    }


def admin_key_from(row: Row) -> AdminKey:
    return AdminKey(
        id=row["id"],
        display_name=row["display_name"],
        key_hash=_bytes(row["key_hash"]),
        created_at=row["created_at"],
    )


# -- refusals ------------------------------------------------------------------------------------


def refusal_row(refusal: Refusal) -> Values:
    """The tenant is stored lower-cased, as searches compare it."""
    return {
        "time": refusal.time,
        "tenant": refusal.tenant.lower(),
        "aadsts": refusal.aadsts,
        "error": refusal.error,
        "client_id": refusal.client_id,
        "reason": refusal.reason,
        "trace_id": refusal.trace_id,
        "correlation_id": refusal.correlation_id,
        "endpoint": refusal.endpoint,
        "credential": refusal.credential,
        "presented": refusal.presented,
    }


def refusal_from(row: Row) -> Refusal:
    return Refusal(
        time=row["time"],
        aadsts=row["aadsts"],
        error=row["error"],
        tenant=row["tenant"],
        client_id=row["client_id"],
        reason=row["reason"],
        trace_id=row["trace_id"],
        correlation_id=row["correlation_id"],
        endpoint=row["endpoint"],
        credential=row["credential"],
        presented=row["presented"],
    )
