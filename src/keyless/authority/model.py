"""The authority's domain model, with Microsoft Graph's names in mind.

Plain frozen dataclasses: the store persists them, the directory snapshot indexes them, the admin
API maps them to Graph-shaped JSON. ``version`` is the compare-and-swap counter a store bumps on
every update. Times are POSIX seconds (``float``), always UTC.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

__all__ = [
    "FIC_AUDIENCE_DEFAULT",
    "AdminKey",
    "AppRole",
    "AppRoleAssignment",
    "Application",
    "Certificate",
    "ClientSecret",
    "FederatedIdentityCredential",
    "KeyState",
    "Refusal",
    "SigningKeyRecord",
    "Tenant",
    "new_id",
]

FIC_AUDIENCE_DEFAULT = "api://AzureADTokenExchange"

SigningAlg = Literal["RS256", "ES256"]
TokenVersion = Literal[1, 2]


def new_id() -> str:
    """A fresh lower-case GUID, as Entra uses for ids."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    display_name: str
    domains: tuple[str, ...] = ()
    signing_alg: SigningAlg = "RS256"
    # Adds the exact mismatch to error_description; off by default, like Entra.
    detailed_errors: bool = False
    # Entra's limit of 20 federated credentials per application, configurable per tenant.
    max_fics_per_app: int = 20
    created_at: float = 0.0
    version: int = 1


@dataclass(frozen=True, slots=True)
class AppRole:
    id: str
    value: str
    display_name: str = ""
    description: str = ""
    allowed_member_types: tuple[str, ...] = ("Application",)
    is_enabled: bool = True


@dataclass(frozen=True, slots=True)
class Application:
    """An app registration together with its service principal in the same tenant."""

    object_id: str
    app_id: str
    tenant_id: str
    display_name: str
    identifier_uris: tuple[str, ...] = ()
    app_roles: tuple[AppRole, ...] = ()
    requested_access_token_version: TokenVersion | None = None
    service_principal_id: str = field(default_factory=new_id)
    app_role_assignment_required: bool = False
    created_at: float = 0.0
    version: int = 1

    @property
    def token_version(self) -> TokenVersion:
        """Graph's ``null`` means v1, as in Entra."""
        return self.requested_access_token_version or 1


@dataclass(frozen=True, slots=True)
class AppRoleAssignment:
    """Client service principal ``principal_id`` holds role ``app_role_id`` on resource ``resource_id``."""

    id: str
    tenant_id: str
    principal_id: str
    resource_id: str
    app_role_id: str
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class ClientSecret:
    """A password credential. Only a salted hash is kept; the value is shown once at creation."""

    key_id: str
    application_id: str  # object id of the application
    display_name: str
    hint: str  # first three characters, as Entra shows them
    secret_hash: bytes
    salt: bytes
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Certificate:
    """A key credential: a public certificate the app signs client assertions with."""

    key_id: str
    application_id: str
    display_name: str
    cert_der: bytes
    thumbprint_sha1: str  # base64url, as in a JWS x5t header
    thumbprint_sha256: str  # base64url, as in x5t#S256
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class FederatedIdentityCredential:
    """A trust rule: tokens of ``issuer`` for ``audiences`` whose subject is ``subject`` exactly, or
    (a flexible credential, Graph beta) whose claims satisfy ``claims_matching_expression``; either
    way, if ``condition`` (CEL over ``claims``) is set, it must also hold. docs/trust-rules.md."""

    id: str
    application_id: str
    name: str
    issuer: str
    subject: str | None  # None exactly when claims_matching_expression is set
    audiences: tuple[str, ...] = (FIC_AUDIENCE_DEFAULT,)
    description: str | None = None
    created_at: float = 0.0
    version: int = 1
    claims_matching_expression: str | None = field(default=None, kw_only=True)  # language version 1
    condition: str | None = field(default=None, kw_only=True)
    allow_broad_match: bool = field(default=False, kw_only=True)

    @property
    def rule(self) -> str:
        """What the credential matches, in one line: the subject, or the expression."""
        return self.subject if self.subject is not None else f"{self.claims_matching_expression}"


class KeyState(StrEnum):
    PENDING = "pending"  # published in the JWKS, not yet signing
    ACTIVE = "active"  # signs new tokens
    RETIRED = "retired"  # published until every token it signed has expired


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    kid: str
    tenant_id: str
    alg: SigningAlg
    private_key_encrypted: bytes  # sealed with the key-encryption key
    cert_der: bytes  # self-signed certificate for x5c / x5t
    state: KeyState
    created_at: float
    activates_at: float
    retired_at: float | None = None
    version: int = 1


@dataclass(frozen=True, slots=True)
class AdminKey:
    """A bearer credential for the admin API; only its hash is kept."""

    id: str
    display_name: str
    key_hash: bytes
    created_at: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """A token-endpoint refusal as admins see it: the exact reason, never a token or a secret."""

    time: float
    aadsts: int | None
    error: str
    tenant: str  # as the request named it: GUID or domain ("" when the URL had none)
    client_id: str | None
    reason: str  # the exact mismatch (the refusal's detail), or the first line of the description
    trace_id: str
    correlation_id: str
    endpoint: str  # the request path
    credential: str | None = None  # the federated credential it concerned, "name (id)", if one matched
    presented: dict[str, Any] | None = None  # a verified assertion's iss, sub, aud (never the token)

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "aadsts": self.aadsts,
            "error": self.error,
            "tenant": self.tenant,
            "clientId": self.client_id,
            "reason": self.reason,
            "traceId": self.trace_id,
            "correlationId": self.correlation_id,
            "endpoint": self.endpoint,
            "credential": self.credential,
            "presented": self.presented,
        }
