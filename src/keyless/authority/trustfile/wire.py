"""A *resolved* trust document: what ``keyless plan`` / ``keyless apply`` send to a running authority.

A trust file names its secrets and certificates by reference (``valueFrom: {env|file}``,
``certificateFile``), and a server must never resolve those against its own environment or files.
So the CLI loads and validates the file where it lives (every problem as ``file:line``), resolves
the references there, and sends the result over the admin API (TLS, admin key):

* certificates inline as PEM (``certificate``);
* a secret with a value as ``{displayName, secretText}``; one without (an exported ``hint``) as
  ``{displayName, hint}``, which keeps the stored secret as it is.

The server turns it back into the same ``TrustDocument`` and plans or applies it exactly as
``keyless serve --trust FILE`` would, so a changed secret is replaced and an unchanged one is not.
Secret values travel only in the request; plans and answers never carry them.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from keyless.authority.trustfile.read import parse_trust_document
from keyless.authority.trustfile.schema import ApplicationSpec, TenantSpec, TrustDocument, Where
from keyless.errors import ConfigurationError

__all__ = ["from_wire", "localize_problems", "to_wire"]

SOURCE = "<api>"


# -- the client side --------------------------------------------------------------------------------


def to_wire(doc: TrustDocument) -> dict[str, Any]:
    """The loaded (and resolved) document as JSON for the admin API, secrets included."""
    return {"tenants": [_tenant(t) for t in doc.tenants]}


def _tenant(spec: TenantSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "displayName": spec.display_name,
        "domains": list(spec.domains),
        "signingAlgorithm": spec.signing_alg,
        "detailedErrors": spec.detailed_errors,
        "maxFederatedIdentityCredentialsPerApp": spec.max_fics_per_app,
        "applications": [_application(a) for a in spec.applications],
    }


def _application(spec: ApplicationSpec) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "displayName": spec.display_name,
        "appId": spec.app_id,
        "identifierUris": list(spec.identifier_uris),
        "appRoleAssignmentRequired": spec.app_role_assignment_required,
    }
    if spec.requested_access_token_version is not None:
        entry["api"] = {"requestedAccessTokenVersion": spec.requested_access_token_version}
    entry["appRoles"] = [
        {
            **({"id": r.id} if r.id else {}),
            "value": r.value,
            "displayName": r.display_name,
            "description": r.description,
            "allowedMemberTypes": list(r.allowed_member_types),
            "isEnabled": r.is_enabled,
        }
        for r in spec.app_roles
    ]
    entry["federatedIdentityCredentials"] = [
        {
            "name": f.name,
            "issuer": f.issuer,
            "subject": f.subject,
            "audiences": list(f.audiences),
            **({"description": f.description} if f.description is not None else {}),
        }
        for f in spec.fics
    ]
    entry["passwordCredentials"] = [
        {"displayName": s.display_name, "secretText": s.value}
        if s.value is not None
        else {"displayName": s.display_name, "hint": s.hint or ""}
        for s in spec.secrets
    ]
    entry["keyCredentials"] = [
        {
            **({"displayName": c.display_name} if c.display_name is not None else {}),
            "certificate": x509.load_der_x509_certificate(c.cert_der).public_bytes(Encoding.PEM).decode(),
        }
        for c in spec.certificates
    ]
    entry["appRoleAssignments"] = [
        {"resource": a.resource, "appRole": a.app_role} for a in spec.role_assignments
    ]
    return entry


def _places(doc: TrustDocument) -> dict[str, str]:
    """``tenants[0].applications[1]`` -> ``trust.yaml:12`` for every object that has a place."""
    found: dict[str, str] = {}

    def note(where: Where) -> None:
        if where.path:
            found[where.path] = str(where)

    for tenant in doc.tenants:
        note(tenant.where)
        for app in tenant.applications:
            note(app.where)
            for secret in app.secrets:
                note(secret.where)
            for assignment in app.role_assignments:
                note(assignment.where)
    return found


_API_PLACE = re.compile(r"^<api>: ([A-Za-z0-9_.\[\]]+)(:?)")


def localize_problems(problems: list[str], doc: TrustDocument) -> list[str]:
    """Point the server's ``<api>: tenants[0]...`` problems back at the file's lines."""
    places = _places(doc)
    result = []
    for problem in problems:
        match = _API_PLACE.match(problem)
        if match is not None:
            path = match.group(1)
            while path and path not in places:
                path = path.rsplit(".", 1)[0] if "." in path else ""
            if path:
                problem = places[path] + problem[match.end(1) :]
        result.append(problem)
    return result


# -- the server side --------------------------------------------------------------------------------


def _items(data: object, key: str) -> list[tuple[int, Any]]:
    value = data.get(key) if isinstance(data, Mapping) else None
    return list(enumerate(value)) if isinstance(value, list) else []


def from_wire(data: object) -> TrustDocument:
    """Parse a resolved document: ``secretText`` is taken out before the usual validation (which
    refuses literal secrets in files) and put back into the parsed secret specs."""
    body = copy.deepcopy(data)
    values: dict[tuple[int, int, int], str] = {}
    problems: list[str] = []
    for i, tenant in _items(body, "tenants"):
        for j, app in _items(tenant, "applications"):
            for k, secret in _items(app, "passwordCredentials"):
                if not isinstance(secret, dict) or "secretText" not in secret:
                    continue
                where = f"{SOURCE}: tenants[{i}].applications[{j}].passwordCredentials[{k}]"
                text = secret.pop("secretText")
                if not isinstance(text, str) or not text:
                    problems.append(f"{where}: secretText must be a non-empty string")
                    secret.setdefault("hint", "")  # reported once, here
                elif "hint" in secret or "valueFrom" in secret:
                    problems.append(f"{where}: give secretText alone (not with hint or valueFrom)")
                else:
                    secret["hint"] = text[:3]
                    values[(i, j, k)] = text
    try:
        doc = parse_trust_document(body, source=SOURCE)
    except ConfigurationError as exc:
        raise ConfigurationError(problems + exc.problems) from None
    if problems:
        raise ConfigurationError(problems)
    return _with_values(doc, values)


def _with_values(doc: TrustDocument, values: dict[tuple[int, int, int], str]) -> TrustDocument:
    tenants = []
    for i, tenant in enumerate(doc.tenants):
        apps = []
        for j, app in enumerate(tenant.applications):
            secrets = tuple(
                dataclasses.replace(s, value=values[(i, j, k)], hint=None) if (i, j, k) in values else s
                for k, s in enumerate(app.secrets)
            )
            apps.append(dataclasses.replace(app, secrets=secrets))
        tenants.append(dataclasses.replace(tenant, applications=tuple(apps)))
    return dataclasses.replace(doc, tenants=tuple(tenants))
