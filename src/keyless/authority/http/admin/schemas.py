"""The admin API's response shapes, typed for its OpenAPI document (and so for /admin/docs).

The routes build their JSON in ``graph_json`` (Graph's property names); these models describe it.
They are documentation (attached with ``responses=``), and tests/authority/http/test_admin_schemas.py
validates every answer the admin API's tests receive against them, with unknown properties
forbidden, so the document cannot drift from what the server sends.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

__all__ = ["RESPONSES", "ok"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TenantOut(_Out):
    id: str
    displayName: str
    domains: list[str]
    signingAlgorithm: Literal["RS256", "ES256"]
    detailedErrors: bool
    maxFederatedIdentityCredentialsPerApp: int


class AppRoleOut(_Out):
    id: str
    value: str
    displayName: str
    description: str
    allowedMemberTypes: list[str]
    isEnabled: bool


class ApiOut(_Out):
    requestedAccessTokenVersion: Literal[1, 2] | None


class ApplicationOut(_Out):
    id: str = Field(description="The object id")
    appId: str
    displayName: str
    identifierUris: list[str]
    appRoles: list[AppRoleOut]
    api: ApiOut
    servicePrincipalId: str
    appRoleAssignmentRequired: bool


class PasswordCredentialOut(_Out):
    keyId: str
    displayName: str
    hint: str
    secretText: str | None = Field(description="Only in the answer to addPassword; null afterwards")
    startDateTime: str | None
    endDateTime: str | None


class KeyCredentialOut(_Out):
    keyId: str
    displayName: str
    customKeyIdentifier: str = Field(description="Upper-case hex SHA-1 thumbprint")
    startDateTime: str | None
    endDateTime: str | None
    type: Literal["AsymmetricX509Cert"]
    usage: Literal["Verify"]


class ExpressionOut(_Out):
    value: str
    languageVersion: Literal[1]


class FederatedIdentityCredentialOut(_Out):
    odata_context: str | None = Field(None, alias="@odata.context")
    odata_type: str = Field(alias="@odata.type")
    id: str
    name: str
    issuer: str
    subject: str | None
    claimsMatchingExpression: ExpressionOut | None = Field(None, description="Graph beta; instead of subject")
    condition: str | None = Field(None, description="keyless: a CEL condition over claims")
    allowBroadMatch: bool | None = Field(None, description="keyless: the expression pins no owner")
    description: str | None
    audiences: list[str]


class AppRoleAssignmentOut(_Out):
    id: str
    principalId: str
    resourceId: str
    appRoleId: str
    principalDisplayName: str | None
    resourceDisplayName: str | None
    appRoleValue: str | None
    createdDateTime: str | None


class SigningKeyOut(_Out):
    kid: str
    alg: Literal["RS256", "ES256"]
    state: Literal["pending", "active", "retired"]
    createdDateTime: str | None
    activatesDateTime: str | None
    retiredDateTime: str | None


class RefusalOut(_Out):
    time: float
    aadsts: int | None
    error: str
    tenant: str
    clientId: str | None
    reason: str
    traceId: str
    correlationId: str
    endpoint: str
    credential: str | None


class StepOut(_Out):
    name: str
    ok: bool | None
    detail: str


class ComparisonOut(_Out):
    credential: str
    field: str
    configured: str
    presented: str
    verdict: Literal["match", "near miss", "differs"]
    why: str | None


class FixOut(_Out):
    summary: str
    trustFile: str | None
    az: str | None
    keyless: str | None


class ExplainedApplication(_Out):
    appId: str
    displayName: str


class ExplanationOut(_Out):
    application: ExplainedApplication
    accepted: bool
    aadsts: int | None
    error: str | None
    error_description: str | None
    detail: str | None
    signatureChecked: bool
    matched: str | None
    header: dict[str, Any]
    claims: dict[str, Any]
    steps: list[StepOut]
    comparisons: list[ComparisonOut]
    fixes: list[FixOut]


class ChangeOut(_Out):
    action: Literal["create", "update", "delete"]
    kind: str
    name: str
    detail: str


class PlanOut(_Out):
    value: list[ChangeOut]
    warnings: list[str] | None = None


def _listed(model: type[BaseModel]) -> type[BaseModel]:
    """Graph's collection: ``{"value": [...]}``."""
    name = f"{model.__name__.removesuffix('Out')}List"
    listed: type[BaseModel] = create_model(name, __base__=_Out, value=(list[model], ...))  # type: ignore[valid-type]
    return listed


TenantList = _listed(TenantOut)
ApplicationList = _listed(ApplicationOut)
PasswordCredentialList = _listed(PasswordCredentialOut)
KeyCredentialList = _listed(KeyCredentialOut)
FederatedIdentityCredentialList = _listed(FederatedIdentityCredentialOut)
AppRoleAssignmentList = _listed(AppRoleAssignmentOut)
SigningKeyList = _listed(SigningKeyOut)
RefusalList = _listed(RefusalOut)


def ok(model: type[BaseModel], status: int = 200) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route answering ``model`` with ``status``."""
    return {status: {"model": model}}


# route function name -> its documented answer (every JSON route of the admin API)
RESPONSES: dict[str, dict[int | str, dict[str, Any]]] = {
    "list_tenants": ok(TenantList),
    "create_tenant": ok(TenantOut, 201),
    "get_tenant": ok(TenantOut),
    "list_applications": ok(ApplicationList),
    "create_application": ok(ApplicationOut, 201),
    "get_application": ok(ApplicationOut),
    "add_password": ok(PasswordCredentialOut),
    "list_passwords": ok(PasswordCredentialList),
    "list_key_credentials": ok(KeyCredentialList),
    "add_key_credential": ok(KeyCredentialOut, 201),
    "list_fics": ok(FederatedIdentityCredentialList),
    "create_fic": ok(FederatedIdentityCredentialOut, 201),
    "get_fic": ok(FederatedIdentityCredentialOut),
    "list_assignments": ok(AppRoleAssignmentList),
    "create_assignment": ok(AppRoleAssignmentOut, 201),
    "list_signing_keys": ok(SigningKeyList),
    "rotate_signing_key": ok(SigningKeyOut, 201),
    "plan_trust": ok(PlanOut),
    "apply_trust": ok(PlanOut),
    "plan_resolved": ok(PlanOut),
    "apply_resolved": ok(PlanOut),
    "explain": ok(ExplanationOut),
    "refusals": ok(RefusalList),
}
