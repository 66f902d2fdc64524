"""Admin routes for federation and authorization: federated identity credentials, app role
assignments, signing keys, and trust documents (plan, apply, export)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse

from keyless.authority.directory.admin import DirectoryAdmin
from keyless.authority.directory.trustgraph import build_trust_graph, to_dot, to_mermaid
from keyless.authority.http.admin import graph_json as gj
from keyless.authority.http.admin.common import (
    FICS,
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
    AssignmentIn,
    FicCreate,
    FicPatch,
    RotateIn,
    changes,
    check_read_only,
)
from keyless.authority.http.admin.schemas import RESPONSES
from keyless.authority.model import Application, AppRole, FederatedIdentityCredential, Tenant
from keyless.authority.trustfile import reconcile as trust
from keyless.errors import ConfigurationError, NotFound

__all__ = ["fics", "router"]

router = APIRouter(prefix="/v1.0", dependencies=[Depends(require_admin)])
# Federated credentials are also served under Graph beta's /beta prefix, where Graph has
# claimsMatchingExpression (keyless accepts it under /v1.0 too).
fics = APIRouter(dependencies=[Depends(require_admin)])


# -- federated identity credentials -------------------------------------------------------------------


def _fic_created(request: Request, app: Application, fic: FederatedIdentityCredential) -> Json:
    entity = f"applications('{app.object_id}')/federatedIdentityCredentials/$entity"
    mount = request.scope.get("root_path", "")  # "/admin" when mounted in the authority's app
    version = "beta" if request.url.path.startswith(f"{mount}/beta/") else "v1.0"
    context = f"{request.url.scheme}://{request.url.netloc}{mount}/{version}/$metadata#{entity}"
    return {"@odata.context": context, **gj.fic_json(fic)}


@fics.get(FICS, tags=["federatedIdentityCredentials"], response_model=None, responses=RESPONSES["list_fics"])
def list_fics(admin: Admin, tenant: str, app: str) -> Json:
    found = app_or_404(admin, tenant, app)
    return value_list([gj.fic_json(f) for f in admin.list_fics(found)])


@fics.post(
    FICS,
    status_code=201,
    tags=["federatedIdentityCredentials"],
    response_model=None,
    responses=RESPONSES["create_fic"],
)
def create_fic(request: Request, admin: Admin, tenant: str, app: str, body: FicCreate) -> Json:
    found = app_or_404(admin, tenant, app)
    fic = admin.create_fic(
        found,
        name=body.name,
        issuer=body.issuer,
        subject=body.subject,
        audiences=body.audiences,
        description=body.description,
        claims_matching_expression=(
            body.claims_matching_expression.value if body.claims_matching_expression else None
        ),
        condition=body.condition,
        allow_broad_match=body.allow_broad_match,
    )
    return _fic_created(request, found, fic)


@fics.get(
    FICS + "/{fic}",
    tags=["federatedIdentityCredentials"],
    response_model=None,
    responses=RESPONSES["get_fic"],
)
def get_fic(admin: Admin, tenant: str, app: str, fic: str, response: Response) -> Json:
    found = admin.find_fic(app_or_404(admin, tenant, app), fic)
    set_etag(response, found.version)
    return gj.fic_json(found)


@fics.patch(FICS + "/{fic}", tags=["federatedIdentityCredentials"], **NO_CONTENT)
def update_fic(
    admin: Admin, tenant: str, app: str, fic: str, body: FicPatch, if_match: IfMatch = None
) -> Response:
    owner = app_or_404(admin, tenant, app)
    current = admin.find_fic(owner, fic)
    check_version(if_match, current.version)
    check_read_only([("id", body.id, current.id)])
    if body.name is not None and body.name != current.name:
        raise ConfigurationError("name is immutable: create a new federated identity credential instead.")
    nullable = ("description", "odata_type", "subject", "claims_matching_expression", "condition")
    given = changes(body, nullable=nullable)
    kept = ("issuer", "subject", "description", "condition", "allow_broad_match")
    fields = {k: v for k, v in given.items() if k in kept}
    if "audiences" in given:
        fields["audiences"] = tuple(given["audiences"])
    if "claims_matching_expression" in given:
        expression = body.claims_matching_expression
        fields["claims_matching_expression"] = expression.value if expression else None
        if expression is not None and "subject" not in given:
            fields["subject"] = None  # an expression replaces the subject (Graph: one or the other)
    elif given.get("subject") is not None:
        fields["claims_matching_expression"] = None
    wanted = dataclasses.replace(current, **fields)
    updated = admin.update_fic(wanted)
    return no_content(updated.version)


@fics.delete(FICS + "/{fic}", tags=["federatedIdentityCredentials"], **NO_CONTENT)
def delete_fic(admin: Admin, tenant: str, app: str, fic: str) -> Response:
    admin.delete_fic(app_or_404(admin, tenant, app), fic)
    return no_content()


router.include_router(fics)


# -- app role assignments -----------------------------------------------------------------------------


def _assignment_parties(
    admin: DirectoryAdmin, tenant: Tenant, body: AssignmentIn
) -> tuple[Application, Application, AppRole]:
    graph = (body.principal_id, body.resource_id, body.app_role_id)
    friendly = (body.client, body.resource, body.app_role)
    apps = admin.list_applications(tenant.id)
    if all(graph) and not any(friendly):
        by_sp = {a.service_principal_id: a for a in apps}
        client, resource = by_sp.get(graph[0] or ""), by_sp.get(graph[1] or "")
        role_ref, client_ref, resource_ref = graph[2] or "", graph[0], graph[1]
    elif all(friendly) and not any(graph):
        client, resource = (_find_or_none(admin, tenant, ref or "") for ref in friendly[:2])
        role_ref, client_ref, resource_ref = friendly[2] or "", friendly[0], friendly[1]
    else:
        raise ConfigurationError(
            "Give either principalId, resourceId and appRoleId, or client, resource and appRole."
        )
    problems = [
        f"{what} '{ref}' is not an application of this tenant."
        for what, ref, app in (("Client", client_ref, client), ("Resource", resource_ref, resource))
        if app is None
    ]
    if problems:
        raise ConfigurationError(problems)
    assert client is not None
    assert resource is not None
    role = next((r for r in resource.app_roles if role_ref in (r.id, r.value)), None)
    if role is None:
        raise ConfigurationError(
            f"Permission being assigned was not found on application '{resource.app_id}'."
        )
    return client, resource, role


def _find_or_none(admin: DirectoryAdmin, tenant: Tenant, ref: str) -> Application | None:
    try:
        return admin.find_application(tenant.id, ref)
    except NotFound:
        return None


@router.get(
    TENANT + "/appRoleAssignments",
    tags=["appRoleAssignments"],
    response_model=None,
    responses=RESPONSES["list_assignments"],
)
def list_assignments(admin: Admin, tenant: str) -> Json:
    found = tenant_or_404(admin, tenant)
    by_sp = {a.service_principal_id: a for a in admin.list_applications(found.id)}
    return value_list([gj.assignment_json(a, by_sp) for a in admin.list_role_assignments(found.id)])


@router.post(
    TENANT + "/appRoleAssignments",
    status_code=201,
    tags=["appRoleAssignments"],
    response_model=None,
    responses=RESPONSES["create_assignment"],
)
def create_assignment(admin: Admin, tenant: str, body: AssignmentIn) -> Json:
    found = tenant_or_404(admin, tenant)
    client, resource, role = _assignment_parties(admin, found, body)
    assignment = admin.assign_role(client, resource, role.id)
    by_sp = {a.service_principal_id: a for a in (client, resource)}
    return gj.assignment_json(assignment, by_sp)


@router.delete(TENANT + "/appRoleAssignments/{assignment}", tags=["appRoleAssignments"], **NO_CONTENT)
def delete_assignment(admin: Admin, tenant: str, assignment: str) -> Response:
    found = tenant_or_404(admin, tenant)
    admin.unassign_role(assignment.lower(), found)
    return no_content()


# -- signing keys -------------------------------------------------------------------------------------


@router.get(
    TENANT + "/signingKeys",
    tags=["signingKeys"],
    response_model=None,
    responses=RESPONSES["list_signing_keys"],
)
def list_signing_keys(admin: Admin, tenant: str) -> Json:
    return value_list([gj.signing_key_json(k) for k in admin.signing_keys(tenant_or_404(admin, tenant).id)])


@router.post(
    TENANT + "/signingKeys/rotate",
    status_code=201,
    tags=["signingKeys"],
    response_model=None,
    responses=RESPONSES["rotate_signing_key"],
)
def rotate_signing_key(admin: Admin, tenant: str, body: Annotated[RotateIn | None, Body()] = None) -> Json:
    """Add a key, published now, that starts signing after ``publishDelaySeconds`` (default: the setting)."""
    delay = body.publish_delay_seconds if body else None
    return gj.signing_key_json(admin.rotate_keys(tenant_or_404(admin, tenant).id, publish_delay=delay))


# -- the trust graph ----------------------------------------------------------------------------------


@router.get(TENANT + "/trustGraph", tags=["trust"], response_model=None)
def trust_graph(
    request: Request,
    admin: Admin,
    tenant: str,
    format: Annotated[Literal["dot", "mermaid", "json"], Query(description="dot, mermaid or json")] = "json",
    q: Annotated[str, Query(max_length=200, description="Only what contains this text")] = "",
) -> Json | PlainTextResponse:
    """Who trusts whom in the tenant: applications, their federated credentials, the issuers those
    name, and app roles held between applications; as Graphviz ``dot``, a Mermaid flowchart, or JSON."""
    found = tenant_or_404(admin, tenant)
    view = authority_of(request).directory().tenant(found.id)
    if view is None:  # written a moment ago on another node: the next poll brings it
        raise NotFound(f"Tenant '{tenant}' is not in this node's directory yet.")
    graph = build_trust_graph(view, q)
    if format == "dot":
        return PlainTextResponse(to_dot(graph), media_type="text/vnd.graphviz")
    if format == "mermaid":
        return PlainTextResponse(to_mermaid(graph), media_type="text/plain")
    return {
        "tenant": graph.tenant,
        "nodes": [dataclasses.asdict(n) for n in graph.nodes],
        "edges": [dataclasses.asdict(e) for e in graph.edges],
    }


# -- trust documents ----------------------------------------------------------------------------------

TrustBody = Annotated[
    dict[str, Any],
    Body(description="A trust document (the YAML trust file's structure, as JSON); secrets only as hint"),
]


@router.post("/trust/plan", tags=["trust"], response_model=None, responses=RESPONSES["plan_trust"])
def plan_trust(admin: Admin, document: TrustBody, prune: bool = False) -> Json:
    return trust.plan(admin, trust.parse_trust_document(document), prune=prune).to_json()


@router.post("/trust/apply", tags=["trust"], response_model=None, responses=RESPONSES["apply_trust"])
def apply_trust(admin: Admin, request: Request, document: TrustBody, prune: bool = False) -> Json:
    lock_timeout = authority_of(request).settings.apply_lock_timeout
    doc = trust.parse_trust_document(document)
    return trust.apply(admin, doc, prune=prune, lock_timeout=lock_timeout).to_json()


@router.get("/trust/export", tags=["trust"])
def export_trust(admin: Admin, tenant: Annotated[list[str] | None, Query()] = None) -> Json:
    """The store as a trust document: secrets only as ``hint``, certificates inline as PEM."""
    ids = [tenant_or_404(admin, t).id for t in tenant] if tenant else None
    return trust.export(admin, ids)
