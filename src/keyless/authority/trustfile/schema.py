"""The trust document's model, and the machinery to read it with line numbers.

A trust document declares tenants, applications and their credentials with Microsoft Graph's
property names. ``_trustparse`` validates YAML or JSON into these frozen specs (every problem at
once, as ``file:line: message``); ``_trustfile`` reconciles them with a store (plan, apply, export).
``ACCEPTED_KEYS`` lists every key per object; ``trust-file.schema.json`` mirrors it.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from keyless._yaml import load_yaml
from keyless.authority.directory import rules
from keyless.authority.model import (
    FIC_AUDIENCE_DEFAULT,
    FederatedIdentityCredential,
    SigningAlg,
    TokenVersion,
)
from keyless.errors import ConfigurationError

__all__ = [
    "ACCEPTED_KEYS",
    "APPLICATION_PROPERTIES",
    "AppRoleSpec",
    "ApplicationSpec",
    "CertificateSpec",
    "Context",
    "FicSpec",
    "Problem",
    "Reader",
    "RoleAssignmentSpec",
    "SecretSpec",
    "TenantSpec",
    "TrustDocument",
    "TrustFileError",
    "Where",
    "read_yaml",
    "suggest",
    "type_name",
]

# The application properties a trust file carries one to one, as (Graph's name, attribute): the
# attribute has the same name on ``ApplicationSpec`` and on ``model.Application``, so reconciling
# (plan, apply) and reading the store back (export) go through this table, not through per-property
# code. Roles and credentials are matched item by item and are not in it.
APPLICATION_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("displayName", "display_name"),
    ("identifierUris", "identifier_uris"),
    ("requestedAccessTokenVersion", "requested_access_token_version"),
    ("appRoleAssignmentRequired", "app_role_assignment_required"),
)

# Every key the loader accepts, per object; trust-file.schema.json has one $defs entry per name.
ACCEPTED_KEYS: dict[str, tuple[str, ...]] = {
    "document": ("$schema", "tenants"),
    "tenant": (
        "id",
        "displayName",
        "domains",
        "signingAlgorithm",
        "detailedErrors",
        "maxFederatedIdentityCredentialsPerApp",
        "applications",
    ),
    "application": (
        "displayName",
        "appId",
        "identifierUris",
        "api",
        "requestedAccessTokenVersion",
        "appRoleAssignmentRequired",
        "appRoles",
        "federatedIdentityCredentials",
        "passwordCredentials",
        "keyCredentials",
        "appRoleAssignments",
    ),
    "api": ("requestedAccessTokenVersion",),
    "appRole": ("id", "value", "displayName", "description", "allowedMemberTypes", "isEnabled"),
    "federatedIdentityCredential": (
        "name",
        "issuer",
        "subject",
        "claimsMatchingExpression",
        "condition",
        "allowBroadMatch",
        "audiences",
        "description",
    ),
    "passwordCredential": ("displayName", "valueFrom", "hint"),
    "valueFrom": ("env", "file"),
    "keyCredential": ("displayName", "certificateFile", "certificate"),
    "appRoleAssignment": ("resource", "appRole"),
}


# -- the document ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Where:
    """A place in the document: ``file:line`` for YAML, ``<api>: tenants[0]...`` without lines."""

    source: str
    line: int | None
    path: str

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.source}:{self.line}"
        return f"{self.source}: {self.path}" if self.path else self.source

    def child(self, key: str | int, line: int | None) -> Where:
        path = f"{self.path}[{key}]" if isinstance(key, int) else f"{self.path}.{key}".lstrip(".")
        return Where(self.source, line if line is not None else self.line, path)


_NOWHERE = Where("<code>", None, "")


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem of a trust document, and where it is."""

    where: Where
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class TrustFileError(ConfigurationError):
    """Every problem of a trust document at once; ``found`` keeps where each one is."""

    def __init__(self, found: list[Problem] | tuple[Problem, ...]) -> None:
        self.found = tuple(found)
        super().__init__([str(p) for p in self.found])


@dataclass(frozen=True, slots=True)
class AppRoleSpec:
    id: str | None  # None: keep the stored role's id (same value), or generate one
    value: str
    display_name: str = ""
    description: str = ""
    allowed_member_types: tuple[str, ...] = ("Application",)
    is_enabled: bool = True


@dataclass(frozen=True, slots=True)
class FicSpec:
    name: str
    issuer: str
    subject: str | None  # None for a flexible credential (``expression``)
    audiences: tuple[str, ...] = (FIC_AUDIENCE_DEFAULT,)
    description: str | None = None
    expression: str | None = None  # claimsMatchingExpression's value (language version 1)
    condition: str | None = None
    allow_broad_match: bool = False

    @property
    def rule(self) -> str:
        return self.subject if self.subject is not None else f"{self.expression}"

    def credential(self, application_id: str = "") -> FederatedIdentityCredential:
        """The credential this entry describes (no id: not stored)."""
        return FederatedIdentityCredential(
            "",
            application_id,
            self.name,
            self.issuer,
            self.subject,
            self.audiences,
            self.description,
            claims_matching_expression=self.expression,
            condition=self.condition,
            allow_broad_match=self.allow_broad_match,
        )


@dataclass(frozen=True, slots=True)
class SecretSpec:
    """A password credential matched by ``display_name``; ``value`` None keeps the stored one."""

    display_name: str
    value: str | None = dataclasses.field(default=None, repr=False)
    hint: str | None = None
    where: Where = dataclasses.field(default=_NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class CertificateSpec:
    """A key credential matched by thumbprint (``x5t``, base64url SHA-1)."""

    cert_der: bytes = dataclasses.field(repr=False)
    thumbprint: str
    display_name: str | None = None  # None: the certificate's subject, as the admin API does


@dataclass(frozen=True, slots=True)
class RoleAssignmentSpec:
    """This application holds ``role_value`` on the application ``resource_app_id`` (resolved)."""

    resource: str  # as written: displayName or appId
    app_role: str  # as written: value or id
    resource_app_id: str = ""
    role_value: str = ""
    where: Where = dataclasses.field(default=_NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class ApplicationSpec:
    display_name: str
    app_id: str
    identifier_uris: tuple[str, ...] = ()
    app_roles: tuple[AppRoleSpec, ...] = ()
    requested_access_token_version: TokenVersion | None = None
    app_role_assignment_required: bool = False
    fics: tuple[FicSpec, ...] = ()
    secrets: tuple[SecretSpec, ...] = ()
    certificates: tuple[CertificateSpec, ...] = ()
    role_assignments: tuple[RoleAssignmentSpec, ...] = ()
    where: Where = dataclasses.field(default=_NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class TenantSpec:
    id: str
    display_name: str
    domains: tuple[str, ...] = ()
    signing_alg: SigningAlg = "RS256"
    detailed_errors: bool = False
    max_fics_per_app: int = 20
    applications: tuple[ApplicationSpec, ...] = ()
    where: Where = dataclasses.field(default=_NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class TrustDocument:
    tenants: tuple[TenantSpec, ...]
    source: str = "<api>"


# -- YAML with line numbers ------------------------------------------------------------------------


def read_yaml(path: Path) -> object:
    """Parse a YAML file into plain data whose mappings and lists remember their lines."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot read the trust file: {exc}") from None
    return load_yaml(text, str(path))


# -- reading one mapping ---------------------------------------------------------------------------


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    names = {dict: "a mapping", list: "a list", str: "a string"}
    return next((n for t, n in names.items() if isinstance(value, t)), f"a {type(value).__name__}")


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    lowered = {c.lower(): c for c in choices}
    match = lowered.get(word.lower()) or next(iter(difflib.get_close_matches(word, choices, n=1)), None)
    return f" (did you mean {match!r}?)" if match else ""


class Context:
    """Where the document came from, and every problem found so far."""

    def __init__(self, source: str, base_dir: Path | None, *, inline_secrets: bool = False) -> None:
        self.source = source
        self.base_dir = base_dir
        self.inline_secrets = inline_secrets  # a resolved document: ``secretText`` is accepted
        self.problems: list[Problem] = []

    def problem(self, where: Where, message: str) -> None:
        self.problems.append(Problem(where, message))


class Reader:
    """Typed access to one mapping of the document; every problem lands in the context."""

    def __init__(
        self,
        ctx: Context,
        data: object,
        where: Where,
        kind: str,
        *,
        name_key: str | None = None,
        refused: Mapping[str, str] | None = None,
        also: tuple[str, ...] = (),
    ) -> None:
        self.ctx = ctx
        self.where = where
        self.label = kind
        self.valid = isinstance(data, dict)
        self.data: dict[object, object] = data if isinstance(data, dict) else {}
        if not self.valid:
            ctx.problem(where, f"{kind} must be a mapping, not {type_name(data)}")
            return
        name = self.data.get(name_key) if name_key else None
        if isinstance(name, str):
            self.label = f"{kind} {name!r}"
        allowed = (*ACCEPTED_KEYS[kind.split(" ")[0]], *also)
        for key, line in getattr(data, "duplicates", []):
            ctx.problem(where.child(str(key), line), f"{self.label}: key {key!r} is given twice")
        for key in self.data:
            if not isinstance(key, str):
                self.report(None, f"key {key!r} must be a string")
            elif refused and key in refused:
                self.report(key, refused[key])
            elif key not in allowed:
                self.report(key, f"unknown key {key!r}{suggest(key, allowed)}")

    def at(self, key: str | None) -> Where:
        if key is None:
            return self.where
        lines = getattr(self.data, "key_lines", {})
        return self.where.child(key, lines.get(key))

    def report(self, key: str | None, message: str) -> None:
        self.ctx.problem(self.at(key), f"{self.label}: {message}")

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> object:
        return self.data.get(key)

    def text(self, key: str, *, required: bool = False, empty_ok: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.report(key if key in self.data else None, f"{key} is required")
            return None
        if not isinstance(value, str):
            quote = " (quote it)" if isinstance(value, int | float) and not isinstance(value, bool) else ""
            self.report(key, f"{key} must be a string, not {type_name(value)}{quote}")
            return None
        if not value.strip() and not empty_ok:
            self.report(key, f"{key} must not be empty")
            return None
        return value

    def guid(self, key: str, *, required: bool = False) -> str | None:
        value = self.text(key, required=required)
        if value is not None and not rules.is_guid(value):
            self.report(key, f"{key} {value!r} is not a GUID")
            return None
        return value.lower() if value else None

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.report(key, f"{key} must be true or false, not {type_name(value)}")
            return default
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.report(key, f"{key} must be a whole number from {low} to {high}")
            return default
        return value

    def texts(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.report(key, f"{key} must be a list of non-empty strings")
            return default
        return tuple(str(v) for v in value)

    def items(self, key: str) -> list[tuple[object, Where]]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.report(key, f"{key} must be a list, not {type_name(value)}")
            return []
        base = self.at(key)
        lines: list[int] = getattr(value, "item_lines", [])
        return [(item, base.child(i, lines[i] if i < len(lines) else None)) for i, item in enumerate(value)]
