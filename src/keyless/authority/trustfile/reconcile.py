"""Trust as code: make the store match a trust document, show the plan first, export it back.

``plan`` compares a document (see ``_trustparse``) with the store and lists the changes in a
deterministic order; ``apply`` makes them, idempotently: applying the same document twice gives an
empty second plan. Matching keys: tenants by ``id``, applications by ``appId``, federated
credentials by ``name``, secrets by ``displayName`` (a value that no longer matches the stored hash,
or an expired secret, is replaced), certificates by thumbprint, role assignments by (client,
resource, role). ``prune`` also deletes what the file does not name, inside the tenants it names;
tenants that are not in the file are never touched. ``export`` writes a document that loads back
into an empty plan (secrets only as ``hint``: their values cannot be exported).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from keyless.authority.directory import breadth, rules
from keyless.authority.directory.admin import DirectoryAdmin
from keyless.authority.directory.secrets import secret_matches
from keyless.authority.model import (
    Application,
    AppRole,
    AppRoleAssignment,
    Certificate,
    ClientSecret,
    FederatedIdentityCredential,
    Tenant,
    new_id,
)
from keyless.authority.token.expressions import parse_expression
from keyless.authority.trustfile.read import load_trust_file, parse_trust_document
from keyless.authority.trustfile.schema import (
    APPLICATION_PROPERTIES,
    ApplicationSpec,
    AppRoleSpec,
    FicSpec,
    Problem,
    SecretSpec,
    TenantSpec,
    TrustDocument,
    TrustFileError,
)
from keyless.authority.trustfile.write import export
from keyless.errors import NotFound

__all__ = [
    "Change",
    "Plan",
    "TrustDocument",
    "apply",
    "apply_trust_file",
    "export",
    "load_trust_file",
    "parse_trust_document",
    "plan",
]

Action = Literal["create", "update", "delete"]
Kind = Literal["tenant", "application", "fic", "secret", "certificate", "roleAssignment"]
_SYMBOL = {"create": "+", "update": "~", "delete": "-"}


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    kind: Kind
    name: str  # tenant/application/credential, by display names
    detail: str = ""

    def __str__(self) -> str:
        return f"{_SYMBOL[self.action]} {self.kind} {self.name}" + (f": {self.detail}" if self.detail else "")

    def to_json(self) -> dict[str, str]:
        return {"action": self.action, "kind": self.kind, "name": self.name, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Plan:
    changes: tuple[Change, ...] = ()
    warnings: tuple[str, ...] = ()  # e.g. a flexible credential broader than one repository

    def __len__(self) -> int:
        return len(self.changes)

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __str__(self) -> str:
        lines = [str(c) for c in self.changes] or ["no changes"]
        return "\n".join(lines + [f"warning: {w}" for w in self.warnings])

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"value": [c.to_json() for c in self.changes]}
        if self.warnings:
            found["warnings"] = list(self.warnings)
        return found


def plan(admin: DirectoryAdmin, doc: TrustDocument, *, prune: bool = False) -> Plan:
    """What ``apply`` would change; ConfigurationError if the store makes the document impossible."""
    return _Reconciler(admin, prune=prune, execute=False).run(doc)


def apply(
    admin: DirectoryAdmin, doc: TrustDocument, *, prune: bool = False, lock_timeout: float = 60.0
) -> Plan:
    """Make the store match ``doc`` and return what was changed (checked by a dry run first).

    One transaction: every change (deletions with ``prune`` included) lands, or none does, even if
    the process dies half-way. Applies are serialized across nodes; one that waits more than
    ``lock_timeout`` seconds for another raises ``Locked``. The dry run runs under the same lock,
    so it sees what the apply will change.
    """
    with admin.batch(lock_timeout=lock_timeout):
        plan(admin, doc, prune=prune)
        return _Reconciler(admin, prune=prune, execute=True).run(doc)


def apply_trust_file(
    admin: DirectoryAdmin, path: str | Path, *, prune: bool = False, lock_timeout: float = 60.0
) -> Plan:
    """Load and apply a YAML trust file: the start-up seeding step."""
    return apply(admin, load_trust_file(path), prune=prune, lock_timeout=lock_timeout)


# -- reconciliation ---------------------------------------------------------------------------------


def _shown(value: object) -> object:
    """Tuples shown as lists, as they are written in the file."""
    return list(value) if isinstance(value, tuple) else value


def _diff(pairs: Sequence[tuple[str, object, object]]) -> str:
    return ", ".join(f"{field}: {old!r} -> {new!r}" for field, old, new in pairs if old != new)


def _resolve_roles(specs: Sequence[AppRoleSpec], stored: Sequence[AppRole]) -> tuple[AppRole, ...]:
    """Roles without an id keep the id of the stored role with the same value (or get a new one)."""
    by_value = {r.value: r.id for r in stored}
    return tuple(
        AppRole(
            id=spec.id or by_value.get(spec.value) or new_id(),
            value=spec.value,
            display_name=spec.display_name,
            description=spec.description,
            allowed_member_types=spec.allowed_member_types,
            is_enabled=spec.is_enabled,
        )
        for spec in specs
    )


def _roles_diff(old: Sequence[AppRole], new: Sequence[AppRole]) -> str:
    before = {r.value: r for r in old}
    after = {r.value: r for r in new}
    parts = [f"+{v}" for v in after if v not in before] + [f"-{v}" for v in before if v not in after]
    parts += [f"~{v}" for v, r in after.items() if v in before and before[v] != r]
    if not parts and [r.value for r in old] != [r.value for r in new]:
        parts.append("order")
    return f"appRoles: {' '.join(parts)}" if parts else ""


class _Reconciler:
    """Walks the document in order, recording (and with ``execute``, making) every change."""

    def __init__(self, admin: DirectoryAdmin, *, prune: bool, execute: bool) -> None:
        self.admin = admin
        self.prune = prune
        self.execute = execute
        self.now = time.time()  # secrets that expired by now are renewed
        self.changes: list[Change] = []
        self.problems: list[Problem] = []
        self.warnings: list[str] = []
        self.tenant_apps: dict[str, Application] = {}  # the current tenant's, by object id, as written

    def run(self, doc: TrustDocument) -> Plan:
        for tenant in doc.tenants:
            self._tenant(tenant)
        if self.problems:
            raise TrustFileError(self.problems)
        return Plan(tuple(self.changes), tuple(dict.fromkeys(self.warnings)))

    def _record(self, action: Action, kind: Kind, name: str, detail: str = "") -> bool:
        """Note a change; True when it should be made now."""
        self.changes.append(Change(action, kind, name, detail))
        return self.execute

    # -- tenants and applications -----------------------------------------------------------------
    def _tenant(self, spec: TenantSpec) -> None:
        try:
            stored: Tenant | None = self.admin.get_tenant(spec.id)
        except NotFound:
            stored = None
        if stored is not None and stored.id != spec.id:  # the id is another tenant's domain: impossible
            stored = None
        if stored is None:
            if self._record("create", "tenant", spec.display_name, f"id {spec.id}"):
                self.admin.create_tenant(
                    spec.display_name,
                    tenant_id=spec.id,
                    domains=spec.domains,
                    signing_alg=spec.signing_alg,
                    detailed_errors=spec.detailed_errors,
                    max_fics_per_app=spec.max_fics_per_app,
                )
        else:
            detail = _diff(
                [
                    ("displayName", stored.display_name, spec.display_name),
                    ("domains", sorted(set(stored.domains)), sorted(set(spec.domains))),
                    ("signingAlgorithm", stored.signing_alg, spec.signing_alg),
                    ("detailedErrors", stored.detailed_errors, spec.detailed_errors),
                    ("maxFederatedIdentityCredentialsPerApp", stored.max_fics_per_app, spec.max_fics_per_app),
                ]
            )
            if detail and self._record("update", "tenant", spec.display_name, detail):
                self.admin.update_tenant(
                    dataclasses.replace(
                        stored,
                        display_name=spec.display_name,
                        domains=spec.domains,
                        signing_alg=spec.signing_alg,
                        detailed_errors=spec.detailed_errors,
                        max_fics_per_app=spec.max_fics_per_app,
                    )
                )
        stored_apps = {a.app_id: a for a in self.admin.list_applications(spec.id)}
        named = {a.app_id for a in spec.applications}
        self.tenant_apps = {a.object_id: a for a in stored_apps.values()}
        if self.prune:
            extra = sorted((a for a in stored_apps.values() if a.app_id not in named), key=_app_order)
            for app in extra:
                if self._record(
                    "delete", "application", f"{spec.display_name}/{app.display_name}", app.app_id
                ):
                    self.admin.delete_application(app.object_id)
                    del self.tenant_apps[app.object_id]
        self._check_identifier_uris(spec, stored_apps)
        apps = {a.app_id: self._application(spec, a, stored_apps.get(a.app_id)) for a in spec.applications}
        self._assignments(spec, apps)

    def _check_identifier_uris(self, tenant: TenantSpec, stored: dict[str, Application]) -> None:
        """The document's applications against the stored ones it leaves as they are (the ones it
        names are checked against each other when the document is read)."""
        named = {a.app_id for a in tenant.applications}
        untouched = [] if self.prune else [a for a in stored.values() if a.app_id not in named]
        for spec in tenant.applications:
            current = stored.get(spec.app_id)
            draft = Application(
                object_id=current.object_id if current else "",
                app_id=spec.app_id,
                tenant_id=tenant.id,
                display_name=spec.display_name,
                identifier_uris=spec.identifier_uris,
            )
            clashes = rules.identifier_uri_clashes(draft, untouched)
            self.problems += [Problem(spec.where, str(clash)) for clash in clashes]

    def _application(
        self, tenant: TenantSpec, spec: ApplicationSpec, stored: Application | None
    ) -> Application:
        name = f"{tenant.display_name}/{spec.display_name}"
        roles = _resolve_roles(spec.app_roles, stored.app_roles if stored else ())
        properties = {attr: getattr(spec, attr) for _, attr in APPLICATION_PROPERTIES}
        if stored is None:
            app = Application(
                object_id=new_id(), app_id=spec.app_id, tenant_id=tenant.id, app_roles=roles, **properties
            )
            if self._record("create", "application", name, f"appId {spec.app_id}"):
                others = list(self.tenant_apps.values())
                app = self.admin.create_application(
                    tenant.id, app_id=spec.app_id, app_roles=roles, others=others, **properties
                )
                self.tenant_apps[app.object_id] = app
        else:
            app = dataclasses.replace(stored, app_roles=roles, **properties)
            details = [
                _diff(
                    [
                        (key, _shown(getattr(stored, attr)), _shown(getattr(app, attr)))
                        for key, attr in APPLICATION_PROPERTIES
                    ]
                ),
                _roles_diff(stored.app_roles, app.app_roles),
            ]
            detail = "; ".join(d for d in details if d)
            if detail and self._record("update", "application", name, detail):
                app = self.admin.update_application(app, list(self.tenant_apps.values()))
                self.tenant_apps[app.object_id] = app
        new = stored is None  # an application not stored yet has no credentials to read
        self._fics(tenant, spec, app, name, new)
        self._secrets(spec, app, name, new)
        self._certificates(spec, app, name, new)
        return app

    # -- credentials ----------------------------------------------------------------------------------
    def _fics(
        self, tenant: TenantSpec, spec: ApplicationSpec, app: Application, name: str, new: bool
    ) -> None:
        stored = {} if new else {f.name: f for f in self.admin.list_fics(app)}
        named = {f.name for f in spec.fics}
        kept = dict(stored)
        for fic in sorted((f for f in stored.values() if f.name not in named), key=lambda f: f.name):
            if self.prune:
                del kept[fic.name]
                if self._record("delete", "fic", f"{name}/{fic.name}"):
                    self.admin.delete_fic(app, fic.id)
        self._check_fic_room(tenant, spec, kept, name)
        for want in spec.fics:
            if want.expression is not None:
                broad = breadth.breadth_warning(want.issuer, parse_expression(want.expression))
                if broad is not None:
                    self.warnings.append(f"{name}/{want.name}: {broad}")
            current = kept.get(want.name)
            if current is None:
                if self._record("create", "fic", f"{name}/{want.name}", f"{want.issuer} {want.rule}"):
                    kept[want.name] = self.admin.create_fic(
                        app,
                        name=want.name,
                        issuer=want.issuer,
                        subject=want.subject,
                        audiences=want.audiences,
                        description=want.description,
                        claims_matching_expression=want.expression,
                        condition=want.condition,
                        allow_broad_match=want.allow_broad_match,
                        others=list(kept.values()),
                    )
                continue
            detail = _fic_diff(current, want)
            if detail and self._record("update", "fic", f"{name}/{want.name}", detail):
                self.admin.update_fic(
                    dataclasses.replace(
                        current,
                        issuer=want.issuer,
                        subject=want.subject,
                        audiences=want.audiences,
                        description=want.description,
                        claims_matching_expression=want.expression,
                        condition=want.condition,
                        allow_broad_match=want.allow_broad_match,
                    )
                )

    def _check_fic_room(
        self,
        tenant: TenantSpec,
        spec: ApplicationSpec,
        kept: dict[str, FederatedIdentityCredential],
        name: str,
    ) -> None:
        """Problems the store would raise half-way through: the per-app limit, clashing issuer+subject."""
        total = len(kept) + sum(1 for f in spec.fics if f.name not in kept)
        if total > tenant.max_fics_per_app:
            self.problems.append(
                Problem(
                    spec.where,
                    f"application {spec.display_name!r} would have {total} federated identity credentials, "
                    f"more than the limit of {tenant.max_fics_per_app} (apply with prune to drop the ones "
                    "the file does not name)",
                )
            )
        named = {f.name for f in spec.fics}
        for want in spec.fics:
            for other in kept.values():
                if other.name not in named and (other.issuer, other.rule) == (want.issuer, want.rule):
                    self.problems.append(
                        Problem(
                            spec.where,
                            f"{name}: federated credential {want.name!r} has the issuer and subject (or "
                            "expression) of the "
                            f"stored {other.name!r} (rename it in the file or apply with prune)",
                        )
                    )

    def _secrets(self, spec: ApplicationSpec, app: Application, name: str, new: bool) -> None:
        stored = [] if new else self.admin.list_secrets(app)
        named = {s.display_name for s in spec.secrets}
        if self.prune:
            for secret in sorted((s for s in stored if s.display_name not in named), key=_secret_order):
                label = f"{name}/{secret.display_name or secret.key_id}"
                if self._record("delete", "secret", label, f"hint {secret.hint}"):
                    self.admin.remove_secret(app, secret.key_id)
        for want in spec.secrets:
            same = [s for s in stored if s.display_name == want.display_name]
            label = f"{name}/{want.display_name}"
            if want.value is None:
                if not same:
                    self.problems.append(
                        Problem(
                            want.where,
                            f"{label}: no stored secret of that name, and the file gives no valueFrom to "
                            "create it from",
                        )
                    )
                continue
            detail = self._secret_state(same, want)
            if not detail:
                continue
            if self._record("create" if not same else "update", "secret", label, detail):
                for old in same:
                    self.admin.remove_secret(app, old.key_id)
                self.admin.add_secret(app, want.display_name, value=want.value)

    def _secret_state(self, same: list[ClientSecret], want: SecretSpec) -> str:
        """Why the stored secret(s) of this name must be replaced; empty when one still matches."""
        if not same or want.value is None:
            return "new" if not same else ""
        matching = [s for s in same if secret_matches(want.value, s.secret_hash, s.salt)]
        if not matching:
            return "the value changed"
        if all(s.end <= self.now for s in matching):
            return "the stored secret expired"
        return ""

    def _certificates(self, spec: ApplicationSpec, app: Application, name: str, new: bool) -> None:
        stored = [] if new else self.admin.list_certificates(app)
        wanted = {c.thumbprint for c in spec.certificates}
        if self.prune:
            for cert in sorted((c for c in stored if c.thumbprint_sha1 not in wanted), key=_cert_order):
                if self._record("delete", "certificate", f"{name}/{cert.display_name}", cert.thumbprint_sha1):
                    self.admin.remove_certificate(app, cert.key_id)
        for want in spec.certificates:
            same = [c for c in stored if c.thumbprint_sha1 == want.thumbprint]
            label = f"{name}/{want.display_name or want.thumbprint}"
            if not same:
                action: Action = "create"
            elif want.display_name is not None and all(c.display_name != want.display_name for c in same):
                action = "update"
            else:
                continue
            if self._record(action, "certificate", label, f"thumbprint {want.thumbprint}"):
                for old in same:
                    self.admin.remove_certificate(app, old.key_id)
                self.admin.add_certificate(app, want.cert_der, want.display_name or "")

    # -- role assignments -------------------------------------------------------------------------------
    def _assignments(self, tenant: TenantSpec, apps: dict[str, Application]) -> None:
        """Assignments among the file's applications; others vanish with their pruned application."""
        by_sp = {a.service_principal_id: a for a in apps.values()}
        existing = {
            (a.principal_id, a.resource_id, a.app_role_id): a
            for a in self.admin.list_role_assignments(tenant.id)
            if a.principal_id in by_sp and a.resource_id in by_sp
        }
        wanted: dict[tuple[str, str, str], tuple[Application, Application, AppRole]] = {}
        for spec in tenant.applications:
            client = apps[spec.app_id]
            for ra in spec.role_assignments:
                resource = apps[ra.resource_app_id]
                role = next(r for r in resource.app_roles if r.value == ra.role_value)
                wanted[(client.service_principal_id, resource.service_principal_id, role.id)] = (
                    client,
                    resource,
                    role,
                )
        if self.prune:
            extra = [a for key, a in existing.items() if key not in wanted]
            labelled = sorted((_assignment_name(tenant, by_sp, a), a.id) for a in extra)
            for label, assignment_id in labelled:
                if self._record("delete", "roleAssignment", label):
                    self.admin.unassign_role(assignment_id)
        held = list(existing.values())  # all that can match: the wanted ones are distinct
        for key, (client, resource, role) in wanted.items():
            if key not in existing:
                label = f"{tenant.display_name}/{client.display_name} -> {resource.display_name}/{role.value}"
                if self._record("create", "roleAssignment", label):
                    self.admin.assign_role(client, resource, role.id, existing=held)


def _fic_diff(current: FederatedIdentityCredential, want: FicSpec) -> str:
    return _diff(
        [
            ("issuer", current.issuer, want.issuer),
            ("subject", current.subject, want.subject),
            ("claimsMatchingExpression", current.claims_matching_expression, want.expression),
            ("condition", current.condition, want.condition),
            ("allowBroadMatch", current.allow_broad_match, want.allow_broad_match),
            ("audiences", list(current.audiences), list(want.audiences)),
            ("description", current.description, want.description),
        ]
    )


def _assignment_name(tenant: TenantSpec, by_sp: dict[str, Application], assignment: AppRoleAssignment) -> str:
    client = by_sp[assignment.principal_id]
    target = by_sp[assignment.resource_id]
    role = next((r.value for r in target.app_roles if r.id == assignment.app_role_id), assignment.app_role_id)
    return f"{tenant.display_name}/{client.display_name} -> {target.display_name}/{role}"


def _app_order(app: Application) -> tuple[str, str]:
    return (app.display_name, app.app_id)


def _secret_order(secret: ClientSecret) -> tuple[str, str]:
    return (secret.display_name, secret.key_id)


def _cert_order(cert: Certificate) -> tuple[str, str]:
    return (cert.display_name, cert.thumbprint_sha1)
