"""Validation of a trust document (YAML with line numbers, or a JSON body) into frozen specs.

Everything is checked before anything is returned, and every problem is reported at once as
``file:line: message`` (``<api>: tenants[0].applications[1]: message`` for a JSON body): unknown
keys with a suggestion, ids that are not GUIDs, duplicates, Graph's rules for federated
credentials, role assignments naming an unknown resource or role. Secret values never appear in
the document: they come from an environment variable or a file (``valueFrom``); an exported entry
with only a ``hint`` means "keep the stored secret as is".
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from collections import Counter
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from keyless.authority.directory import rules
from keyless.authority.model import FIC_AUDIENCE_DEFAULT, TokenVersion
from keyless.authority.trustfile.schema import (
    ApplicationSpec,
    AppRoleSpec,
    CertificateSpec,
    Context,
    FicSpec,
    Reader,
    RoleAssignmentSpec,
    SecretSpec,
    TenantSpec,
    TrustDocument,
    TrustFileError,
    Where,
    read_yaml,
    suggest,
)
from keyless.errors import ConfigurationError
from keyless.jose import load_certificate, x5t_sha1

__all__ = ["LITERAL_SECRET", "load_trust_file", "parse_trust_document"]

LITERAL_SECRET = (
    "secrets come from env or file, never from the trust file: use valueFrom: {env: NAME} or {file: PATH}"
)
_LITERAL_SECRET_KEYS = ("value", "secretText", "secret", "password", "clientSecret")
_MEMBER_TYPES = ("Application", "User")
MAX_FICS_LIMIT = 1_000_000


def load_trust_file(path: str | Path) -> TrustDocument:
    """Read and validate a YAML trust file; relative file references are resolved next to it."""
    path = Path(path)
    return parse_trust_document(read_yaml(path), source=str(path), base_dir=path.parent)


def parse_trust_document(
    data: object, *, source: str = "<api>", base_dir: Path | None = None, inline_secrets: bool = False
) -> TrustDocument:
    """Validate a trust document given as plain data (parsed YAML or a JSON body).

    ``base_dir`` is where relative ``certificateFile`` / ``valueFrom.file`` paths point. Without it
    (a document sent to the admin API) references to the server's environment and files are
    refused: the server's secrets are not the caller's to use. ``inline_secrets`` accepts
    ``secretText`` values: a document the CLI resolved and sent (``wire``), never a file.
    """
    ctx = Context(source, base_dir, inline_secrets=inline_secrets)
    root = Where(source, getattr(data, "line", None), "")
    if data is None:
        raise ConfigurationError(f"{source}: the trust document is empty; it needs 'tenants:'")
    reader = Reader(ctx, data, root, "document")
    if reader.valid and not reader.has("tenants"):
        reader.report(None, "tenants is required")
    tenants = [t for item, where in reader.items("tenants") if (t := _tenant(ctx, item, where)) is not None]
    _check_document(ctx, tenants)
    if ctx.problems:
        raise TrustFileError(ctx.problems)
    return TrustDocument(tuple(tenants), source)


def _tenant(ctx: Context, data: object, where: Where) -> TenantSpec | None:
    r = Reader(ctx, data, where, "tenant", name_key="displayName")
    if not r.valid:
        return None
    tenant_id = r.guid("id", required=True)
    display_name = r.text("displayName", required=True)
    domains = tuple(d.lower() for d in r.texts("domains"))
    for problem in rules.domain_problems(domains):
        r.report("domains", problem)
    alg = r.raw("signingAlgorithm") or "RS256"
    if alg not in ("RS256", "ES256"):
        r.report("signingAlgorithm", f"signingAlgorithm must be RS256 or ES256, not {alg!r}")
        alg = "RS256"
    detailed = r.flag("detailedErrors", False)
    max_fics = r.integer("maxFederatedIdentityCredentialsPerApp", 20, 1, MAX_FICS_LIMIT)
    apps = [
        app
        for item, item_where in r.items("applications")
        if (app := _application(ctx, item, item_where, max_fics)) is not None
    ]
    apps = _resolve_assignments(ctx, apps)
    _check_identifier_uris(ctx, apps)
    if tenant_id is None or display_name is None:
        return None
    return TenantSpec(
        id=tenant_id,
        display_name=display_name,
        domains=domains,
        signing_alg="ES256" if alg == "ES256" else "RS256",
        detailed_errors=detailed,
        max_fics_per_app=max_fics,
        applications=tuple(apps),
        where=where,
    )


def _application(ctx: Context, data: object, where: Where, max_fics: int) -> ApplicationSpec | None:
    r = Reader(ctx, data, where, "application", name_key="displayName")
    if not r.valid:
        return None
    display_name = r.text("displayName", required=True)
    app_id = r.guid("appId", required=True)
    uris = r.texts("identifierUris")
    _check_unique(r, "identifierUris", list(uris), "identifier URI")
    for problem in rules.identifier_uri_problems(uris):
        r.report("identifierUris", problem)
    version = _token_version(r)
    required = r.flag("appRoleAssignmentRequired", False)
    roles = [x for item, w in r.items("appRoles") if (x := _app_role(ctx, item, w)) is not None]
    _check_unique(r, "appRoles", [x.value for x in roles], "app role value")
    _check_unique(r, "appRoles", [x.id for x in roles if x.id], "app role id")
    fics = [f for item, w in r.items("federatedIdentityCredentials") if (f := _fic(ctx, item, w)) is not None]
    _check_unique(r, "federatedIdentityCredentials", [f.name for f in fics], "federated credential name")
    _check_unique(
        r,
        "federatedIdentityCredentials",
        [f"{f.issuer} {f.subject}" for f in fics if f.subject is not None],
        "issuer and subject pair",
    )
    _check_unique(
        r,
        "federatedIdentityCredentials",
        [f"{f.issuer} {f.expression}" for f in fics if f.expression is not None],
        "issuer and claimsMatchingExpression pair",
    )
    if len(fics) > max_fics:
        r.report(
            "federatedIdentityCredentials",
            f"{len(fics)} federated identity credentials, more than the limit of {max_fics} per application",
        )
    secrets = [p for item, w in r.items("passwordCredentials") if (p := _secret(ctx, item, w)) is not None]
    _check_unique(r, "passwordCredentials", [s.display_name for s in secrets], "password credential name")
    certs = [c for item, w in r.items("keyCredentials") if (c := _certificate(ctx, item, w)) is not None]
    _check_unique(r, "keyCredentials", [c.thumbprint for c in certs], "certificate thumbprint")
    assignments = [
        a for item, w in r.items("appRoleAssignments") if (a := _assignment(ctx, item, w)) is not None
    ]
    # Without a name or appId the document is refused anyway; the spec still takes part in the
    # checks across applications (role assignments, identifier URIs) so those problems show too.
    return ApplicationSpec(
        display_name=display_name or "",
        app_id=app_id or "",
        identifier_uris=uris,
        app_roles=tuple(roles),
        requested_access_token_version=version,
        app_role_assignment_required=required,
        fics=tuple(fics),
        secrets=tuple(secrets),
        certificates=tuple(certs),
        role_assignments=tuple(assignments),
        where=where,
    )


def _check_unique(r: Reader, key: str, values: list[str], what: str) -> None:
    for value, count in Counter(values).items():
        if count > 1:
            r.report(key, f"{what} {value!r} is used {count} times")


def _token_version(r: Reader) -> TokenVersion | None:
    found: list[tuple[str, object]] = []
    if r.has("requestedAccessTokenVersion"):
        found.append(("requestedAccessTokenVersion", r.raw("requestedAccessTokenVersion")))
    if r.has("api"):
        api = Reader(r.ctx, r.raw("api"), r.at("api"), "api")
        if api.has("requestedAccessTokenVersion"):
            found.append(("api", api.raw("requestedAccessTokenVersion")))
    for key, value in found:
        if value not in (1, 2, None) or isinstance(value, bool):
            r.report(key, f"requestedAccessTokenVersion must be 1, 2 or null, not {value!r}")
            return None
    if len({v for _, v in found}) > 1:
        r.report("api", "api.requestedAccessTokenVersion and requestedAccessTokenVersion disagree")
        return None
    value = found[0][1] if found else None
    return 2 if value == 2 else 1 if value == 1 else None


def _app_role(ctx: Context, data: object, where: Where) -> AppRoleSpec | None:
    r = Reader(ctx, data, where, "appRole", name_key="value")
    if not r.valid:
        return None
    role_id = r.guid("id")
    value = r.text("value", required=True)
    if value is not None and any(c.isspace() for c in value):
        r.report("value", f"app role value {value!r} may not contain spaces")
        value = None
    members = r.texts("allowedMemberTypes", ("Application",))
    for member in members:
        if member not in _MEMBER_TYPES:
            r.report(
                "allowedMemberTypes", f"allowedMemberTypes may hold Application and User, not {member!r}"
            )
    spec = AppRoleSpec(
        id=role_id,
        value=value or "",
        display_name=r.text("displayName", empty_ok=True) or "",
        description=r.text("description", empty_ok=True) or "",
        allowed_member_types=members,
        is_enabled=r.flag("isEnabled", True),
    )
    return spec if value else None


def _fic(ctx: Context, data: object, where: Where) -> FicSpec | None:
    r = Reader(ctx, data, where, "federatedIdentityCredential", name_key="name")
    if not r.valid:
        return None
    name = r.text("name", required=True)
    issuer = r.text("issuer", required=True)
    expression = _expression(r)
    subject = r.text("subject", required=expression is None and not r.has("claimsMatchingExpression"))
    audiences = r.texts("audiences", (FIC_AUDIENCE_DEFAULT,))
    description = r.text("description", empty_ok=True)
    condition = r.text("condition")
    broad = r.flag("allowBroadMatch", False)
    if name is None or issuer is None or (subject is None and expression is None):
        return None
    spec = FicSpec(name, issuer, subject, audiences, description, expression, condition, broad)
    problems = rules.fic_problems(spec.credential())
    for problem in problems:
        key = (
            problem.split(":", 1)[0]
            if problem.startswith(("claimsMatchingExpression:", "condition:"))
            else None
        )
        r.report(key, problem)
    if problems:
        return None
    return spec


def _expression(r: Reader) -> str | None:
    """``claimsMatchingExpression``: Graph's ``{value, languageVersion: 1}``, or just the value."""
    raw = r.raw("claimsMatchingExpression")
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw
    if isinstance(raw, dict) and isinstance(raw.get("value"), str):
        version = raw.get("languageVersion", 1)
        if version != 1 or set(raw) - {"value", "languageVersion"}:
            r.report("claimsMatchingExpression", "must be {value: '<expression>', languageVersion: 1}")
            return None
        return str(raw["value"])
    r.report("claimsMatchingExpression", "must be a string or {value: '<expression>', languageVersion: 1}")
    return None


def _secret(ctx: Context, data: object, where: Where) -> SecretSpec | None:
    inline = ("secretText",) if ctx.inline_secrets else ()
    refused = dict.fromkeys((k for k in _LITERAL_SECRET_KEYS if k not in inline), LITERAL_SECRET)
    r = Reader(ctx, data, where, "passwordCredential", name_key="displayName", refused=refused, also=inline)
    if not r.valid:
        return None
    if any(key in r.data for key in refused):
        return None  # reported by the reader: secrets come from env or file
    if inline and r.has("secretText"):
        return _inline_secret(r, where)
    # Only an exported entry (hint, no valueFrom) may keep an unnamed secret as it is.
    name = r.text("displayName", required=True, empty_ok=not r.has("valueFrom"))
    hint = r.text("hint", empty_ok=True)
    value: str | None = None
    if r.has("valueFrom"):
        value = _secret_value(r)
        if value is None:
            return None
    elif hint is None:
        r.report(None, "needs valueFrom: {env: NAME} or {file: PATH} (or an exported hint: to keep it as is)")
        return None
    if name is None:
        return None
    return SecretSpec(display_name=name, value=value, hint=hint, where=where)


def _inline_secret(r: Reader, where: Where) -> SecretSpec | None:
    """``{displayName, secretText}`` of a resolved document: the value itself, nothing else."""
    text = r.raw("secretText")
    if not isinstance(text, str) or not text:
        r.ctx.problem(where, "secretText must be a non-empty string")
        return None
    if r.has("hint") or r.has("valueFrom"):
        r.ctx.problem(where, "give secretText alone (not with hint or valueFrom)")
        return None
    name = r.text("displayName", required=True, empty_ok=True)
    return None if name is None else SecretSpec(display_name=name, value=text, where=where)


def _secret_value(r: Reader) -> str | None:
    raw = r.raw("valueFrom")
    if not isinstance(raw, dict):
        r.report("valueFrom", f"valueFrom must be {{env: NAME}} or {{file: PATH}}; {LITERAL_SECRET}")
        return None
    source = Reader(r.ctx, raw, r.at("valueFrom"), "valueFrom")
    source.label = f"{r.label} valueFrom"
    given = [k for k in ("env", "file") if source.has(k)]
    if len(given) != 1:
        source.report(None, "give exactly one of env: NAME or file: PATH")
        return None
    reference = source.text(given[0], required=True)
    if reference is None:
        return None
    if r.ctx.base_dir is None:
        source.report(given[0], f"{given[0]} references are not accepted here (they would read the server's)")
        return None
    if given[0] == "env":
        value = os.environ.get(reference)
        if value is None:
            source.report("env", f"environment variable {reference} is not set")
        elif not value:
            source.report("env", f"environment variable {reference} is empty")
        return value or None
    return _read_reference(source, "file", reference, binary=False)


def _read_reference(r: Reader, key: str, reference: str, *, binary: bool) -> str | None:
    path = Path(reference).expanduser()
    if not path.is_absolute() and r.ctx.base_dir is not None:
        path = r.ctx.base_dir / path
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        r.report(key, f"file {str(path)!r} does not exist")
        return None
    except OSError as exc:
        r.report(key, f"cannot read {str(path)!r}: {exc.strerror}")
        return None
    if binary:
        return base64.b64encode(data).decode("ascii")
    text = data.decode("utf-8", errors="replace").rstrip("\r\n")
    if not text:
        r.report(key, f"file {str(path)!r} is empty")
        return None
    return text


def _certificate(ctx: Context, data: object, where: Where) -> CertificateSpec | None:
    r = Reader(ctx, data, where, "keyCredential", name_key="displayName")
    if not r.valid:
        return None
    display_name = r.text("displayName")
    given = [k for k in ("certificateFile", "certificate") if r.has(k)]
    if len(given) != 1:
        r.report(None, "give exactly one of certificateFile: PATH or certificate: PEM")
        return None
    key = given[0]
    text = r.text(key, required=True)
    if text is None:
        return None
    if key == "certificateFile":
        if ctx.base_dir is None:
            r.report(
                key,
                "certificateFile is not accepted here (it would read the server's files); use certificate",
            )
            return None
        text = _read_reference(r, key, text, binary=True)
        if text is None:
            return None
    der = _certificate_der(r, key, text)
    if der is None:
        return None
    return CertificateSpec(cert_der=der, thumbprint=x5t_sha1(der), display_name=display_name)


def _certificate_der(r: Reader, key: str, text: str) -> bytes | None:
    """PEM text, or base64 of DER (or of a PEM file, as some Graph clients send)."""
    raw: bytes = text.encode("utf-8")
    if not text.lstrip().startswith("-----BEGIN"):
        try:
            raw = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            r.report(key, "not a PEM certificate nor base64 of a DER one")
            return None
    try:
        return load_certificate(raw).public_bytes(Encoding.DER)
    except ValueError as exc:
        r.report(key, f"not a PEM or DER certificate: {exc}")
        return None


def _assignment(ctx: Context, data: object, where: Where) -> RoleAssignmentSpec | None:
    r = Reader(ctx, data, where, "appRoleAssignment", name_key="appRole")
    if not r.valid:
        return None
    resource = r.text("resource", required=True)
    role = r.text("appRole", required=True)
    if resource is None or role is None or not r.valid:
        return None
    return RoleAssignmentSpec(resource=resource, app_role=role, where=where)


# -- checks across objects -----------------------------------------------------------------------


def _resolve_assignments(ctx: Context, apps: list[ApplicationSpec]) -> list[ApplicationSpec]:
    """Point every role assignment at an application of the same tenant and one of its roles."""
    by_app_id = {a.app_id: a for a in apps}
    by_name: dict[str, list[ApplicationSpec]] = {}
    for app in apps:
        by_name.setdefault(app.display_name, []).append(app)
    resolved: list[ApplicationSpec] = []
    for app in apps:
        done: list[RoleAssignmentSpec] = []
        for ra in app.role_assignments:
            target = _resolve_resource(ctx, app, ra, by_app_id, by_name)
            role = _resolve_role(ctx, app, ra, target) if target else None
            if target is None or role is None:
                continue
            spec = dataclasses.replace(ra, resource_app_id=target.app_id, role_value=role.value)
            if any((d.resource_app_id, d.role_value) == (target.app_id, role.value) for d in done):
                ctx.problem(
                    ra.where,
                    f"application {app.display_name!r}: role {role.value!r} of "
                    f"{target.display_name!r} is assigned twice",
                )
                continue
            done.append(spec)
        resolved.append(dataclasses.replace(app, role_assignments=tuple(done)))
    return resolved


def _resolve_resource(
    ctx: Context,
    app: ApplicationSpec,
    ra: RoleAssignmentSpec,
    by_app_id: dict[str, ApplicationSpec],
    by_name: dict[str, list[ApplicationSpec]],
) -> ApplicationSpec | None:
    prefix = f"application {app.display_name!r}: appRoleAssignment"
    target = by_app_id.get(ra.resource.lower())
    if target is not None:
        return target
    named = by_name.get(ra.resource, [])
    if len(named) == 1:
        return named[0]
    if named:
        ctx.problem(
            ra.where, f"{prefix}: resource {ra.resource!r} names {len(named)} applications; use its appId"
        )
    else:
        hint = suggest(ra.resource, list(by_name))
        ctx.problem(
            ra.where,
            f"{prefix}: resource {ra.resource!r} is not an application of this tenant in the file{hint}",
        )
    return None


def _resolve_role(
    ctx: Context, app: ApplicationSpec, ra: RoleAssignmentSpec, target: ApplicationSpec
) -> AppRoleSpec | None:
    prefix = f"application {app.display_name!r}: appRoleAssignment"
    role = next((x for x in target.app_roles if ra.app_role in (x.value, x.id)), None)
    if role is None:
        hint = suggest(ra.app_role, [x.value for x in target.app_roles])
        ctx.problem(ra.where, f"{prefix}: {target.display_name!r} has no app role {ra.app_role!r}{hint}")
        return None
    if "Application" not in role.allowed_member_types:
        ctx.problem(ra.where, f"{prefix}: app role {role.value!r} does not allow Application members")
        return None
    return role


def _check_identifier_uris(ctx: Context, apps: list[ApplicationSpec]) -> None:
    owners: dict[str, ApplicationSpec] = {}
    for app in apps:
        for uri in dict.fromkeys(app.identifier_uris):
            owner = owners.setdefault(rules.identifier_uri_key(uri), app)
            if owner.app_id != app.app_id:
                message = f"identifier URI {uri!r} is already used by {owner.display_name!r}"
                ctx.problem(app.where, f"application {app.display_name!r}: {message}")


def _check_document(ctx: Context, tenants: list[TenantSpec]) -> None:
    """Tenant ids, domains and appIds are unique across the whole document."""
    tenant_ids: dict[str, TenantSpec] = {}
    domains: dict[str, TenantSpec] = {}
    app_ids: dict[str, ApplicationSpec] = {}
    for tenant in tenants:
        label = f"tenant {tenant.display_name!r}"
        first = tenant_ids.setdefault(tenant.id, tenant)
        if first is not tenant:
            ctx.problem(tenant.where, f"{label}: id {tenant.id} is also tenant {first.display_name!r}")
        for domain in dict.fromkeys(tenant.domains):
            owner = domains.setdefault(domain, tenant)
            if owner is not tenant:
                ctx.problem(
                    tenant.where, f"{label}: domain {domain!r} is also tenant {owner.display_name!r}'s"
                )
        for app in tenant.applications:
            other = app_ids.setdefault(app.app_id, app)
            if other is not app and app.app_id:
                message = f"appId {app.app_id} is also application {other.display_name!r}"
                ctx.problem(app.where, f"application {app.display_name!r}: {message}")
