"""Admin routes for the directory: tenants, applications, password and key credentials."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import math
from typing import Annotated, Any

from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Body, Depends, Request, Response

from keyless.authority.http.admin import graph_json as gj
from keyless.authority.http.admin.common import (
    APP,
    NO_CONTENT,
    TENANT,
    Admin,
    IfMatch,
    Json,
    app_or_404,
    authority_of,
    check_version,
    no_content,
    require_admin,
    set_etag,
    tenant_or_404,
    value_list,
)
from keyless.authority.http.admin.models import (
    AddPasswordIn,
    ApplicationCreate,
    ApplicationPatch,
    KeyCredentialIn,
    RemovePasswordIn,
    TenantCreate,
    TenantPatch,
    changes,
    check_read_only,
)
from keyless.authority.http.admin.schemas import RESPONSES
from keyless.errors import ConfigurationError
from keyless.jose import load_certificate

__all__ = ["router"]

router = APIRouter(prefix="/v1.0", dependencies=[Depends(require_admin)])


# -- tenants ------------------------------------------------------------------------------------------


@router.get("/tenants", tags=["tenants"], response_model=None, responses=RESPONSES["list_tenants"])
def list_tenants(admin: Admin) -> Json:
    return value_list([gj.tenant_json(t) for t in admin.list_tenants()])


@router.post(
    "/tenants", status_code=201, tags=["tenants"], response_model=None, responses=RESPONSES["create_tenant"]
)
def create_tenant(request: Request, admin: Admin, body: TenantCreate) -> Json:
    """``detailedErrors`` defaults to on in development mode (KEYLESS_DEV_MODE), else off (as Entra)."""
    detailed = body.detailed_errors
    tenant = admin.create_tenant(
        body.display_name,
        tenant_id=body.id,
        domains=body.domains,
        signing_alg=body.signing_algorithm,
        detailed_errors=authority_of(request).settings.dev_mode if detailed is None else detailed,
        max_fics_per_app=body.max_federated_identity_credentials_per_app,
    )
    return gj.tenant_json(tenant)


@router.get(TENANT, tags=["tenants"], response_model=None, responses=RESPONSES["get_tenant"])
def get_tenant(admin: Admin, tenant: str, response: Response) -> Json:
    found = tenant_or_404(admin, tenant)
    set_etag(response, found.version)
    return gj.tenant_json(found)


@router.patch(TENANT, tags=["tenants"], **NO_CONTENT)
def update_tenant(admin: Admin, tenant: str, body: TenantPatch, if_match: IfMatch = None) -> Response:
    current = tenant_or_404(admin, tenant)
    check_version(if_match, current.version)
    check_read_only([("id", body.id, current.id)])
    given = changes(body)
    renames = {
        "display_name": "display_name",
        "domains": "domains",
        "signing_algorithm": "signing_alg",
        "detailed_errors": "detailed_errors",
        "max_federated_identity_credentials_per_app": "max_fics_per_app",
    }
    fields = {renames[k]: v for k, v in given.items() if k in renames}
    if "domains" in fields:
        fields["domains"] = tuple(fields["domains"])
    updated = admin.update_tenant(dataclasses.replace(current, **fields))
    return no_content(updated.version)


@router.delete(TENANT, tags=["tenants"], **NO_CONTENT)
def delete_tenant(admin: Admin, tenant: str) -> Response:
    admin.delete_tenant(tenant_or_404(admin, tenant).id)
    return no_content()


# -- applications -------------------------------------------------------------------------------------


@router.get(
    TENANT + "/applications",
    tags=["applications"],
    response_model=None,
    responses=RESPONSES["list_applications"],
)
def list_applications(admin: Admin, tenant: str) -> Json:
    apps = admin.list_applications(tenant_or_404(admin, tenant).id)
    return value_list([gj.application_json(a) for a in apps])


@router.post(
    TENANT + "/applications",
    status_code=201,
    tags=["applications"],
    response_model=None,
    responses=RESPONSES["create_application"],
)
def create_application(admin: Admin, tenant: str, body: ApplicationCreate) -> Json:
    found = tenant_or_404(admin, tenant)
    roles = [r.to_model() for r in body.app_roles]
    app = admin.create_application(
        found.id,
        body.display_name,
        app_id=body.app_id,
        identifier_uris=body.identifier_uris,
        app_roles=roles,
        requested_access_token_version=body.token_version()[1],
        app_role_assignment_required=body.app_role_assignment_required,
    )
    return gj.application_json(app)


@router.get(APP, tags=["applications"], response_model=None, responses=RESPONSES["get_application"])
def get_application(admin: Admin, tenant: str, app: str, response: Response) -> Json:
    found = app_or_404(admin, tenant, app)
    set_etag(response, found.version)
    return gj.application_json(found)


@router.patch(APP, tags=["applications"], **NO_CONTENT)
def update_application(
    admin: Admin, tenant: str, app: str, body: ApplicationPatch, if_match: IfMatch = None
) -> Response:
    current = app_or_404(admin, tenant, app)
    check_version(if_match, current.version)
    check_read_only(
        [
            ("id", body.id, current.object_id),
            ("appId", body.app_id, current.app_id),
            ("servicePrincipalId", body.service_principal_id, current.service_principal_id),
        ]
    )
    given = changes(body, nullable=("requested_access_token_version", "api"))
    fields: dict[str, Any] = {}
    for name in ("display_name", "app_role_assignment_required"):
        if name in given:
            fields[name] = given[name]
    if "identifier_uris" in given:
        fields["identifier_uris"] = tuple(given["identifier_uris"])
    if "app_roles" in given:
        fields["app_roles"] = tuple(r.to_model(current.app_roles) for r in given["app_roles"])
    version_given, version = body.token_version()
    if version_given:
        fields["requested_access_token_version"] = version
    wanted = dataclasses.replace(current, **fields)
    updated = admin.update_application(wanted)
    return no_content(updated.version)


@router.delete(APP, tags=["applications"], **NO_CONTENT)
def delete_application(admin: Admin, tenant: str, app: str) -> Response:
    admin.delete_application(app_or_404(admin, tenant, app).object_id)
    return no_content()


# -- password and key credentials ---------------------------------------------------------------------


@router.post(
    APP + "/addPassword", tags=["credentials"], response_model=None, responses=RESPONSES["add_password"]
)
def add_password(
    request: Request,
    admin: Admin,
    tenant: str,
    app: str,
    body: Annotated[AddPasswordIn | None, Body()] = None,
) -> Json:
    """Create a client secret. ``secretText`` is in this response only; it is never shown again."""
    found = app_or_404(admin, tenant, app)
    credential = (body or AddPasswordIn()).password_credential
    kwargs: dict[str, Any] = {}
    if credential.end_date_time is not None:
        end = credential.end_date_time
        end = end if end.tzinfo else end.replace(tzinfo=dt.UTC)
        lifetime = math.ceil(end.timestamp() - authority_of(request).clock())
        if lifetime <= 0:
            raise ConfigurationError("endDateTime must be in the future.")
        kwargs["lifetime"] = lifetime
    return gj.new_secret_json(admin.add_secret(found, credential.display_name, **kwargs))


@router.post(APP + "/removePassword", tags=["credentials"], **NO_CONTENT)
def remove_password(admin: Admin, tenant: str, app: str, body: RemovePasswordIn) -> Response:
    found = app_or_404(admin, tenant, app)
    admin.remove_secret(found, body.key_id)
    return no_content()


@router.get(
    APP + "/passwordCredentials",
    tags=["credentials"],
    response_model=None,
    responses=RESPONSES["list_passwords"],
)
def list_passwords(admin: Admin, tenant: str, app: str) -> Json:
    found = app_or_404(admin, tenant, app)
    return value_list([gj.secret_json(s) for s in admin.list_secrets(found)])


def _certificate_bytes(key: str) -> bytes:
    """PEM text, or base64 of DER (Graph's ``key``) or of a PEM file."""
    if key.lstrip().startswith("-----BEGIN"):
        return key.encode("utf-8")
    try:
        return base64.b64decode("".join(key.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError("key: not a PEM certificate nor base64 of a DER one.") from None


@router.get(
    APP + "/keyCredentials",
    tags=["credentials"],
    response_model=None,
    responses=RESPONSES["list_key_credentials"],
)
def list_key_credentials(admin: Admin, tenant: str, app: str) -> Json:
    found = app_or_404(admin, tenant, app)
    return value_list([gj.certificate_json(c) for c in admin.list_certificates(found)])


@router.post(
    APP + "/keyCredentials",
    status_code=201,
    tags=["credentials"],
    response_model=None,
    responses=RESPONSES["add_key_credential"],
)
def add_key_credential(admin: Admin, tenant: str, app: str, body: KeyCredentialIn) -> Json:
    found = app_or_404(admin, tenant, app)
    try:
        der = load_certificate(_certificate_bytes(body.key)).public_bytes(Encoding.DER)
    except ValueError as exc:
        raise ConfigurationError(f"key: not a PEM or DER certificate: {exc}") from None
    return gj.certificate_json(admin.add_certificate(found, der, body.display_name))


@router.delete(APP + "/keyCredentials/{key_id}", tags=["credentials"], **NO_CONTENT)
def delete_key_credential(admin: Admin, tenant: str, app: str, key_id: str) -> Response:
    found = app_or_404(admin, tenant, app)
    admin.remove_certificate(found, key_id.lower())
    return no_content()
