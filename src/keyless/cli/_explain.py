"""``keyless explain``: why would (or did) the token endpoint refuse this assertion, and what fixes it.

Three targets: a live application (``--app``, through the admin API's explain route, which uses the
running authority's settings and key cache), the federated credentials of a real Entra application
as ``az ad app federated-credential list`` prints them (``--fic``), or an application of a trust
file (``--trust`` with ``--app``). The dry run itself is ``keyless.authority.explain.dry_run``.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import typer

from keyless.authority import (
    FederatedIdentityCredential,
    Step,
    compile_condition,
    explain_assertion,
    issuer_to_fetch,
    load_trust_file,
    parse_expression,
)
from keyless.cli._common import (
    ADMIN_KEY,
    DATA_DIR,
    JSON,
    URL,
    Session,
    Target,
    escape,
    new_table,
    out,
    print_json,
    progress,
    read_token,
)
from keyless.cli._directory import app_path, tenant_path
from keyless.cli._jwt import fetch_keys, print_steps, print_token
from keyless.errors import ConfigurationError, NotFound, TransportError

__all__ = ["explain_command", "load_fic_export", "refusals_command"]

_VERDICT = {
    "match": "[green]✓ match[/]",
    "near miss": "[yellow]≈ near miss[/]",
    "differs": "[red]✗ differs[/]",
}


# -- the three targets ------------------------------------------------------------------------------


def load_fic_export(path: Path) -> list[FederatedIdentityCredential]:
    """Credentials from ``az ad app federated-credential list`` (a JSON list), a Graph response
    (``{"value": [...]}``) or one credential object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigurationError(f"{path}: not valid JSON: {exc}") from None
    items = data.get("value", [data]) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ConfigurationError(f"{path}: expected a list of federated identity credentials")
    found, problems = [], []
    for i, item in enumerate(items):
        where = f"{path}: credential [{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: not an object")
            continue
        missing = [k for k in ("name", "issuer", "audiences") if not item.get(k)]
        expression = item.get("claimsMatchingExpression")
        if not item.get("subject") and not (isinstance(expression, dict) and expression.get("value")):
            missing.append("subject (or claimsMatchingExpression)")
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
            continue
        audiences = item["audiences"]
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            problems.append(f"{where}: audiences must be a list of strings")
            continue
        try:
            if isinstance(expression, dict):
                parse_expression(str(expression["value"]))
            if item.get("condition"):
                compile_condition(str(item["condition"]))
        except ValueError as exc:  # ExpressionError, ConditionError: with the column
            problems.append(f"{where}: {exc}")
            continue
        found.append(
            FederatedIdentityCredential(
                id=str(item.get("id") or ""),
                application_id="",
                name=str(item["name"]),
                issuer=str(item["issuer"]),
                subject=str(item["subject"]) if item.get("subject") else None,
                audiences=tuple(audiences),
                description=item.get("description"),
                claims_matching_expression=str(expression["value"]) if isinstance(expression, dict) else None,
                condition=str(item["condition"]) if item.get("condition") else None,
            )
        )
    if problems:
        raise ConfigurationError(problems)
    return found


def _trust_credentials(
    path: Path, app: str, tenant: str | None
) -> tuple[list[FederatedIdentityCredential], str, str]:
    doc = load_trust_file(path)
    matches = []
    for spec in doc.tenants:
        if tenant is not None and tenant.lower() not in (spec.id, *spec.domains, spec.display_name.lower()):
            continue
        matches += [(spec, a) for a in spec.applications if app.lower() == a.app_id or app == a.display_name]
    if not matches:
        raise NotFound(f"{path}: no application {app!r}" + (f" in tenant {tenant!r}" if tenant else ""))
    if len(matches) > 1:
        raise ConfigurationError(
            f"{path}: {len(matches)} applications are named {app!r}: give its appId or --tenant"
        )
    spec, found = matches[0]
    fics = [f.credential(found.app_id) for f in found.fics]
    return fics, found.app_id, (spec.domains[0] if spec.domains else spec.id)


def _offline(
    assertion: str,
    fics: list[FederatedIdentityCredential],
    *,
    app: str,
    tenant: str,
    fetch: bool,
    leeway: float,
) -> dict[str, Any]:
    issuer = issuer_to_fetch(assertion, fics) if fetch else None
    keys, key_error = None, None
    if issuer is not None:
        try:
            with progress(f"fetching the keys of {issuer} ..."):
                keys, _ = asyncio.run(fetch_keys(issuer, None, timeout=10))
        except TransportError as exc:
            key_error = f"{exc} (fetched from this machine)"
    explanation = explain_assertion(
        assertion,
        fics,
        now=time.time(),
        keys=keys,
        key_error=key_error,
        leeway=leeway,
        app=app,
        tenant=tenant,
    )
    return explanation.to_json()


def _find_tenant(session: Session, app: str) -> str:
    """The tenant holding application ``app`` (by appId, object id or display name)."""
    for tenant in session.call("GET", "/tenants")["value"]:
        try:
            session.call("GET", app_path(tenant["id"], app))
        except NotFound:
            continue
        return str(tenant["id"])
    raise NotFound(f"no tenant has an application {app!r}; check the appId or pass --tenant")


def _live(assertion: str, app: str, tenant: str | None, target: Target) -> dict[str, Any]:
    with target.session() as session:
        if tenant is None:
            tenant = _find_tenant(session, app)
        else:
            session.call("GET", tenant_path(tenant))
        with progress("asking the authority ..."):
            result: dict[str, Any] = session.call(
                "POST",
                f"{tenant_path(tenant)}/applications/{quote(app, safe='')}/explain",
                json={"assertion": assertion},
            )
        return result


# -- presentation -----------------------------------------------------------------------------------


def _print(result: dict[str, Any]) -> None:
    console = out()
    now = time.time()
    application = result.get("application")
    if application:
        console.print(f"[bold]application[/] {escape(application['displayName'])} ({application['appId']})")
    print_token(result["header"], result["claims"], now)
    console.print("[bold]checks[/] (in the token endpoint's order)")
    print_steps([Step(s["name"], s["ok"], s["detail"]) for s in result["steps"]])
    comparisons = result["comparisons"]
    if comparisons:
        rows = [
            (c["credential"], c["field"], c["configured"], _VERDICT[c["verdict"]], c["why"] or "")
            for c in comparisons
        ]
        _table_markup(("credential", "field", "configured", "verdict", "why"), rows)
    if result["accepted"]:
        verified = "" if result["signatureChecked"] else " [yellow](signature not checked)[/]"
        console.print(
            f"[bold green]accepted[/]: credential {escape(result['matched'] or '?')} matches{verified}"
        )
        return
    first_line = (result["error_description"] or "").split("\r\n", 1)[0]
    console.print(f"[bold red]refused[/]: {escape(first_line)} ({result['error']})")
    if result.get("detail"):
        console.print(f"  [dim]exact reason:[/] {escape(result['detail'])}")
    for n, fix in enumerate(result["fixes"], 1):
        console.print(f"[bold]fix {n}[/]: {escape(fix['summary'])}")
        if fix.get("trustFile"):
            console.print("  trust file (under the application):")
            for line in fix["trustFile"].splitlines():
                console.print(f"    {escape(line)}")
        if fix.get("az"):
            console.print(f"  az:      {escape(fix['az'])}", soft_wrap=True)
        if fix.get("keyless"):
            console.print(f"  keyless: {escape(fix['keyless'])}", soft_wrap=True)


def _table_markup(columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Like ``table`` but the verdict column keeps its colour markup."""
    grid = new_table(columns)
    for row in rows:
        grid.add_row(escape(row[0]), escape(row[1]), escape(row[2]), row[3], escape(row[4]))
    out().print(grid)


def explain_command(
    assertion: str = typer.Argument(..., help="The client assertion: a JWT, '-' for stdin, or a file."),
    app: str | None = typer.Option(
        None, "--app", help="Application: appId (live or trust file) or display name."
    ),
    tenant: str | None = typer.Option(None, "--tenant", help="Tenant GUID or domain (default: the app's)."),
    fic: Path | None = typer.Option(
        None, "--fic", help="JSON as `az ad app federated-credential list --id APP` prints it (offline)."
    ),
    trust: Path | None = typer.Option(
        None, "--trust", help="A trust file; --app names the application (offline)."
    ),
    offline: bool = typer.Option(
        False, "--no-fetch", help="With --fic/--trust: do not fetch the issuer's keys."
    ),
    leeway: float = typer.Option(300, "--leeway", help="With --fic/--trust: clock skew allowed, in seconds."),
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Explain, step by step, whether the token endpoint accepts ASSERTION for an application, which
    AADSTS code it (and Entra) would answer, and the exact fix.

    Exit status: 0 accepted, 1 refused, 2 bad input, 3 authority unreachable.

    Examples:

    \b
      keyless explain "$TOKEN" --app 3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f
      keyless explain token.jwt \\
          --fic <(az ad app federated-credential list --id "$APP_ID")
      gh-oidc-token | keyless explain - --trust trust.yaml \\
          --app cloud-run-caller --json
    """
    if fic is not None and trust is not None:
        raise ConfigurationError("give --fic or --trust, not both")
    if (fic is None) and app is None:
        raise ConfigurationError("give --app APP (live, or with --trust FILE), or --fic FILE.json")
    text = read_token(assertion)
    if fic is not None:
        result = _offline(
            text,
            load_fic_export(fic),
            app=app or "<APP_ID>",
            tenant=tenant or "",
            fetch=not offline,
            leeway=leeway,
        )
    elif trust is not None:
        assert app is not None
        fics, app_id, tenant_ref = _trust_credentials(trust, app, tenant)
        result = _offline(
            text, fics, app=app_id, tenant=tenant or tenant_ref, fetch=not offline, leeway=leeway
        )
    else:
        assert app is not None
        result = _live(text, app, tenant, Target(url, admin_key, data_dir))
    if as_json:
        print_json(result)
    else:
        _print(result)
    if not result["accepted"]:
        raise typer.Exit(1)


def refusals_command(
    tenant: str = typer.Argument(..., help="Tenant GUID or domain."),
    top: int = typer.Option(20, "--top", min=1, max=1000, help="How many, newest first."),
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """The tenant's recent token refusals with their exact reason, whatever the caller was told.

    Every worker and node writes its refusals to the shared store about once a second (the newest
    10,000 are kept); the keyless.audit log is the durable record.

    \b
    Example: keyless refusals contoso.example --top 5
    """
    items = Target(url, admin_key, data_dir).call(
        "GET", f"{tenant_path(tenant)}/refusals", params={"$top": top}
    )["value"]
    if as_json:
        print_json(items)
        return
    if not items:
        out().print(f"no refusals recorded for {escape(tenant)}")
        return
    grid = new_table(("time", "AADSTS", "client", "reason", "trace id"))
    for item in items:
        stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(item["time"]))
        grid.add_row(
            stamp,
            str(item["aadsts"]),
            escape(item["clientId"] or ""),
            escape(item["reason"]),
            item["traceId"],
        )
    out().print(grid)
