"""Every directory rule, as pure functions that return problems (an empty list: no problem).

``DirectoryAdmin`` calls them for every write, whatever asked for it (the admin API, trust
apply, ``serve --trust``); the trust-file reader and the admin API's request models call the
format rules too, so a mistake is reported with the file line or the JSON field that made it.
Messages follow Microsoft Graph's where Graph has one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from keyless.authority.directory import breadth
from keyless.authority.model import Application, AppRole, FederatedIdentityCredential
from keyless.authority.token.conditions import ConditionError, compile_condition
from keyless.authority.token.expressions import ExpressionError, parse_expression

__all__ = [
    "FIC_NAME_RULE",
    "IDENTIFIER_URI_TAKEN",
    "ISSUER_EXPRESSION_TAKEN",
    "ISSUER_SUBJECT_TAKEN",
    "MAX_FIELD",
    "ONE_OF_SUBJECT_OR_EXPRESSION",
    "UriClash",
    "domain_problems",
    "fic_clash",
    "fic_problems",
    "identifier_uri_clashes",
    "identifier_uri_key",
    "identifier_uri_problems",
    "is_guid",
    "role_problems",
    "same_identifier_uri",
    "tenant_problems",
    "valid_fic_name",
]

MAX_FIELD = 600
IDENTIFIER_URI_TAKEN = "Another object with the same value for property identifierUris already exists."
ISSUER_SUBJECT_TAKEN = "Issuer and subject combination already exists for this application."
ISSUER_EXPRESSION_TAKEN = (
    "Issuer and claimsMatchingExpression combination already exists for this application."
)
ONE_OF_SUBJECT_OR_EXPRESSION = "Either subject or claimsMatchingExpression must be defined, but not both."
FIC_NAME_RULE = "must be 3-120 characters of letters, digits, '-' and '_', starting with a letter or digit"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_FIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,119}$")


# -- formats ------------------------------------------------------------------------------------------


def is_guid(value: str) -> bool:
    """Entra's ids: 8-4-4-4-12 hexadecimal digits, either case."""
    return bool(_GUID.match(value))


def valid_fic_name(name: str) -> bool:
    """Graph's rule: 3-120 characters, alphanumerics, '-' and '_', starting alphanumeric."""
    return bool(_FIC_NAME.match(name))


def domain_problems(domains: Iterable[str]) -> list[str]:
    """A tenant's domains are DNS names: at least one dot, no whitespace."""
    return [f"domain {d!r} is not a DNS name" for d in domains if "." not in d or any(c.isspace() for c in d)]


def identifier_uri_problems(uris: Iterable[str]) -> list[str]:
    """An identifier URI has a scheme (``api://name``, ``https://...``) and no whitespace."""
    return [
        f"identifier URI {u!r} must be a URI such as api://name"
        for u in uris
        if ":" not in u or any(c.isspace() for c in u)
    ]


def tenant_problems(display_name: str, domains: Sequence[str]) -> list[str]:
    problems = domain_problems(domains)
    if not display_name.strip():
        problems.append("displayName is required")
    return problems


def role_problems(roles: Sequence[AppRole]) -> list[str]:
    """App role values and ids are unique within an application; values have no spaces."""
    values = [r.value for r in roles]
    ids = [r.id for r in roles]
    problems = [f"app role value {v!r} is used twice" for v in set(values) if values.count(v) > 1]
    problems += [f"app role id {i!r} is used twice" for i in set(ids) if ids.count(i) > 1]
    problems += [f"app role value {v!r} may not contain spaces" for v in values if not v or " " in v]
    return problems


def fic_problems(fic: FederatedIdentityCredential) -> list[str]:
    """Graph's rules for one federated identity credential, every problem at once; for a flexible
    credential also the expression's and the condition's syntax (with the column) and the
    broad-match rule (``breadth``)."""
    problems = []
    if not valid_fic_name(fic.name):
        problems.append(f"name {fic.name!r} {FIC_NAME_RULE}")
    if len(fic.audiences) != 1:
        problems.append("Federated identity credentials must have exactly one audience.")
    problems += _matching_problems(fic)
    for field, value in (
        ("issuer", fic.issuer),
        *((("subject", fic.subject),) if fic.subject is not None else ()),
        *(("audience", a) for a in fic.audiences),
    ):
        if not value:
            problems.append(f"{field} is required")
        elif len(value) > MAX_FIELD:
            problems.append(f"{field} is longer than {MAX_FIELD} characters")
    if fic.description is not None and len(fic.description) > MAX_FIELD:
        problems.append(f"description is longer than {MAX_FIELD} characters")
    if fic.issuer and not fic.issuer.startswith(("https://", "http://")):
        problems.append(f"issuer {fic.issuer!r} must be an OIDC issuer URL (https://...)")
    return problems


def _matching_problems(fic: FederatedIdentityCredential) -> list[str]:
    problems = []
    expression = fic.claims_matching_expression
    if (expression is None) == (fic.subject is None):
        problems.append(ONE_OF_SUBJECT_OR_EXPRESSION)
    if expression is not None:
        try:
            parsed = parse_expression(expression)
        except ExpressionError as exc:
            problems.append(f"claimsMatchingExpression: {exc}")
        else:
            broad = breadth.broad_match_problem(fic.issuer, parsed)
            if broad is not None and not fic.allow_broad_match:
                problems.append(f"claimsMatchingExpression: {broad}")
    if fic.condition is not None:
        try:
            compile_condition(fic.condition)
        except ConditionError as exc:
            problems.append(f"condition: {exc}")
    return problems


# -- uniqueness ---------------------------------------------------------------------------------------


def identifier_uri_key(uri: str) -> str:
    """What identifier URIs compare by: without a trailing slash (``api://x`` and ``api://x/`` are one)."""
    return uri.rstrip("/")


def same_identifier_uri(a: str, b: str) -> bool:
    return identifier_uri_key(a) == identifier_uri_key(b)


@dataclass(frozen=True, slots=True)
class UriClash:
    """``uri`` of ``app`` is already an identifier URI of ``owner`` in the same tenant."""

    uri: str
    app: Application
    owner: Application

    def __str__(self) -> str:
        return (
            f"{IDENTIFIER_URI_TAKEN} Application {self.app.display_name!r} cannot have {self.uri!r}: "
            f"it is an identifier URI of application {self.owner.display_name!r} (appId {self.owner.app_id})."
        )


def identifier_uri_clashes(app: Application, others: Iterable[Application]) -> list[UriClash]:
    """Entra: an identifier URI names one application per tenant (it is the audience of its tokens).

    ``others`` are the other applications of ``app``'s tenant (``app`` itself among them is skipped).
    """
    clashes = []
    for other in others:
        if other.object_id == app.object_id:
            continue
        for uri in dict.fromkeys(app.identifier_uris):
            if any(same_identifier_uri(uri, theirs) for theirs in other.identifier_uris):
                clashes.append(UriClash(uri, app, other))
    return clashes


def fic_clash(fic: FederatedIdentityCredential, others: Iterable[FederatedIdentityCredential]) -> str | None:
    """Graph's uniqueness per application: the name, and the issuer + subject pair."""
    for other in others:
        if other.id == fic.id:
            continue
        if other.name == fic.name:
            return f"A federated identity credential named '{fic.name}' already exists on this application."
        if fic.subject is not None and (other.issuer, other.subject) == (fic.issuer, fic.subject):
            return ISSUER_SUBJECT_TAKEN
        expression = fic.claims_matching_expression
        if expression is not None and (other.issuer, other.claims_matching_expression) == (
            fic.issuer,
            expression,
        ):
            return ISSUER_EXPRESSION_TAKEN
    return None
