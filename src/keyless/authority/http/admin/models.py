"""Request bodies of the admin API: pydantic models with Microsoft Graph's (camelCase) names.

Unknown properties are refused, as Graph does. ``PATCH`` bodies are partial: only the properties
sent are changed (``changes()``), and read-only properties (``id``, ``appId`` ...) may be sent back
unchanged, so a GET-modify-PATCH round trip works.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from keyless.authority.directory import rules
from keyless.authority.model import FIC_AUDIENCE_DEFAULT, AppRole, TokenVersion, new_id
from keyless.errors import ConfigurationError

__all__ = [
    "AddPasswordIn",
    "AppRoleIn",
    "ApplicationCreate",
    "ApplicationPatch",
    "AssignmentIn",
    "ClaimsMatchingExpression",
    "FicCreate",
    "FicPatch",
    "KeyCredentialIn",
    "RemovePasswordIn",
    "RotateIn",
    "TenantCreate",
    "TenantPatch",
    "changes",
    "check_read_only",
]


def _guid(value: str) -> str:
    if not rules.is_guid(value):
        raise ValueError(f"{value!r} is not a GUID")
    return value.lower()


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Guid = Annotated[str, AfterValidator(_guid)]
# Domains and identifier URIs are only shaped here (a domain is compared lower-case); whether one is
# acceptable is a directory rule, enforced by DirectoryAdmin for every entry point.
Domain = Annotated[str, AfterValidator(str.lower)]
Uri = str
Name = Annotated[str, StringConstraints(max_length=256), AfterValidator(_not_blank)]
MaxFics = Annotated[int, Field(ge=1, le=1_000_000)]  # Entra's is 20; docs/trust-rules.md


def _not_a_boolean(value: object) -> object:
    if isinstance(value, bool):  # JSON true would otherwise pass as 1
        raise ValueError("Input should be 1 or 2")
    return value


Version = Annotated[Literal[1, 2], BeforeValidator(_not_a_boolean)]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


Domains = Annotated[list[Domain], AfterValidator(_unique)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


def changes(body: BaseModel, *, nullable: Sequence[str] = ()) -> dict[str, Any]:
    """The properties a PATCH body sets (by field name); null only where the property allows it."""
    given = {name: getattr(body, name) for name in body.model_fields_set}
    problems = [
        f"{to_camel(name)} may not be null" for name, v in given.items() if v is None and name not in nullable
    ]
    if problems:
        raise ConfigurationError(problems)
    return given


def check_read_only(pairs: Sequence[tuple[str, object, object]]) -> None:
    """Read-only properties may be sent back only unchanged."""
    problems = [
        f"{name} is read-only" for name, given, current in pairs if given is not None and given != current
    ]
    if problems:
        raise ConfigurationError(problems)


# -- tenants ------------------------------------------------------------------------------------------


class TenantCreate(_In):
    id: Guid | None = None
    display_name: Name
    domains: Domains = []
    signing_algorithm: Literal["RS256", "ES256"] = "RS256"
    detailed_errors: bool | None = Field(None, description="Default: on in development mode, else off")
    max_federated_identity_credentials_per_app: MaxFics = 20


class TenantPatch(_In):
    id: Guid | None = None  # read-only
    display_name: Name | None = None
    domains: Domains | None = None
    signing_algorithm: Literal["RS256", "ES256"] | None = None
    detailed_errors: bool | None = None
    max_federated_identity_credentials_per_app: MaxFics | None = None


# -- applications -------------------------------------------------------------------------------------


class AppRoleIn(_In):
    id: Guid | None = None
    value: Annotated[str, StringConstraints(min_length=1, max_length=250)]
    display_name: str = ""
    description: str = ""
    allowed_member_types: list[Literal["Application", "User"]] = ["Application"]
    is_enabled: bool = True

    def to_model(self, stored: Sequence[AppRole] = ()) -> AppRole:
        """Without an id, a role keeps the id of the stored role with the same value (or gets one)."""
        same = next((r.id for r in stored if r.value == self.value), None)
        return AppRole(
            id=self.id or same or new_id(),
            value=self.value,
            display_name=self.display_name,
            description=self.description,
            allowed_member_types=tuple(self.allowed_member_types),
            is_enabled=self.is_enabled,
        )


class ApiIn(_In):
    requested_access_token_version: Version | None = None


class _TokenVersionMixin(_In):
    api: ApiIn | None = None
    requested_access_token_version: Version | None = None

    def token_version(self) -> tuple[bool, TokenVersion | None]:
        """``(given, version)`` from ``api.requestedAccessTokenVersion`` or the top-level alias."""
        found: list[TokenVersion | None] = []
        if self.api is not None and "requested_access_token_version" in self.api.model_fields_set:
            found.append(self.api.requested_access_token_version)
        if "requested_access_token_version" in self.model_fields_set:
            found.append(self.requested_access_token_version)
        if len(set(found)) > 1:
            raise ConfigurationError(
                "api.requestedAccessTokenVersion and requestedAccessTokenVersion disagree"
            )
        return (bool(found), found[0] if found else None)


class ApplicationCreate(_TokenVersionMixin):
    display_name: Name
    app_id: Guid | None = None
    identifier_uris: list[Uri] = []
    app_roles: list[AppRoleIn] = []
    app_role_assignment_required: bool = False


class ApplicationPatch(_TokenVersionMixin):
    id: Guid | None = None  # read-only
    app_id: Guid | None = None  # read-only
    service_principal_id: Guid | None = None  # read-only
    display_name: Name | None = None
    identifier_uris: list[Uri] | None = None
    app_roles: list[AppRoleIn] | None = None
    app_role_assignment_required: bool | None = None


# -- credentials --------------------------------------------------------------------------------------


class PasswordCredentialIn(_In):
    display_name: str = ""
    end_date_time: dt.datetime | None = None


class AddPasswordIn(_In):
    password_credential: PasswordCredentialIn = PasswordCredentialIn()


class RemovePasswordIn(_In):
    key_id: Guid


class KeyCredentialIn(_In):
    display_name: str = ""
    key: Annotated[str, Field(min_length=1, description="PEM text, or base64 of the DER certificate")]
    type: Literal["AsymmetricX509Cert"] = "AsymmetricX509Cert"
    usage: Literal["Verify"] = "Verify"


class ClaimsMatchingExpression(_In):
    """Graph beta's ``federatedIdentityExpression``."""

    odata_type: str | None = Field(None, alias="@odata.type")
    value: Annotated[str, Field(description="claims['<name>'] eq|matches '<comparand>' [and ...]")]
    language_version: Literal[1] = 1


class FicCreate(_In):
    odata_type: str | None = Field(None, alias="@odata.type")
    name: str
    issuer: str
    subject: str | None = None
    claims_matching_expression: ClaimsMatchingExpression | None = Field(
        None, description="Instead of subject: a flexible credential (Graph beta)"
    )
    condition: str | None = Field(None, description="keyless: a CEL expression over claims that must be true")
    allow_broad_match: bool = Field(False, description="keyless: allow an expression that pins no owner")
    audiences: list[str] = [FIC_AUDIENCE_DEFAULT]
    description: str | None = None


class FicPatch(_In):
    odata_type: str | None = Field(None, alias="@odata.type")
    id: str | None = None  # read-only
    name: str | None = None  # immutable
    issuer: str | None = None
    subject: str | None = None
    claims_matching_expression: ClaimsMatchingExpression | None = None
    condition: str | None = None
    allow_broad_match: bool | None = None
    audiences: list[str] | None = None
    description: str | None = None


# -- role assignments and keys ------------------------------------------------------------------------


class AssignmentIn(_In):
    """Graph's ``{principalId, resourceId, appRoleId}`` or the friendlier ``{client, resource, appRole}``."""

    principal_id: Guid | None = Field(None, description="Client service principal id (Graph form)")
    resource_id: Guid | None = Field(None, description="Resource service principal id (Graph form)")
    app_role_id: Guid | None = Field(None, description="App role id (Graph form)")
    client: str | None = Field(None, description="Client application: objectId, appId or displayName")
    resource: str | None = Field(None, description="Resource application: objectId, appId or displayName")
    app_role: str | None = Field(None, description="App role value or id")


class RotateIn(_In):
    publish_delay_seconds: Annotated[int, Field(ge=0, le=366 * 86400)] | None = None
