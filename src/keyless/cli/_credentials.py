"""``keyless fic``, ``keyless secret`` and ``keyless cert``: an application's credentials."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import quote

import typer

from keyless.authority import FIC_AUDIENCE_DEFAULT
from keyless.cli._common import (
    ADMIN_KEY,
    DATA_DIR,
    JSON,
    URL,
    Session,
    Target,
    err,
    escape,
    out,
    print_json,
    show_fields,
    table,
)
from keyless.cli._directory import APP, TENANT, app_path
from keyless.errors import ConfigurationError, NotFound

__all__ = ["cert_app", "fic_app", "secret_app"]

fic_app = typer.Typer(
    help="Federated identity credentials (workload identity federation).", no_args_is_help=True
)
secret_app = typer.Typer(help="Client secrets (password credentials).", no_args_is_help=True)
cert_app = typer.Typer(help="Certificates (key credentials).", no_args_is_help=True)

FIC = typer.Argument(..., help="Credential name (or id).")


def _fics(tenant: str, app: str) -> str:
    return app_path(tenant, app) + "/federatedIdentityCredentials"


# -- federated identity credentials -------------------------------------------------------------------


@fic_app.command("list")
def fic_list(
    tenant: str = TENANT,
    app: str = APP,
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """List an application's federated identity credentials.

    \b
    Example: keyless fic list contoso.example cloud-run-caller
    """
    fics = Target(url, admin_key, data_dir).call("GET", _fics(tenant, app))["value"]
    if as_json:
        print_json(fics)
        return
    rows = [(f["name"], f["issuer"], _rule(f), ", ".join(f["audiences"])) for f in fics]
    table(("name", "issuer", "subject or expression", "audiences"), rows)


def _rule(fic: dict[str, Any]) -> str:
    """What a credential matches: its subject, or its expression (and condition)."""
    expression = fic.get("claimsMatchingExpression")
    shown = str(fic["subject"]) if expression is None else str(expression["value"])
    return shown + (f" if {fic['condition']}" if fic.get("condition") else "")


@fic_app.command("show")
def fic_show(
    tenant: str = TENANT,
    app: str = APP,
    name: str = FIC,
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Show one federated identity credential.

    \b
    Example:
      keyless fic show contoso.example cloud-run-caller cloud-run-default-sa
    """
    found = Target(url, admin_key, data_dir).call("GET", f"{_fics(tenant, app)}/{quote(name, safe='')}")
    show_fields(found, title=f"federated identity credential {found['name']}", as_json=as_json)


@fic_app.command("create")
def fic_create(
    tenant: str = TENANT,
    app: str = APP,
    name: str = typer.Option(..., "--name", help="3-120 letters, digits, '-' and '_'."),
    issuer: str = typer.Option(..., "--issuer", help="Must equal the token's iss exactly."),
    subject: str | None = typer.Option(None, "--subject", help="Must equal the token's sub exactly."),
    expression: str | None = typer.Option(
        None,
        "--expression",
        help="Instead of --subject: claims['NAME'] eq|matches 'VALUE' [and ...] (docs/trust-rules.md).",
    ),
    condition: str | None = typer.Option(
        None, "--condition", help="A CEL expression over claims that must also be true."
    ),
    allow_broad: bool = typer.Option(
        False, "--allow-broad-match", help="Allow an expression that pins no owner (see the docs first)."
    ),
    audience: str = typer.Option(FIC_AUDIENCE_DEFAULT, "--audience", help="Must be in the token's aud."),
    description: str | None = typer.Option(None, "--description"),
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Trust tokens of ISSUER with SUBJECT, or whose claims satisfy an EXPRESSION (and AUDIENCE,
    and a CEL CONDITION if given), as this application.

    \b
    Examples:
      keyless fic create contoso.example cloud-run-caller --name gh-main \\
          --issuer https://token.actions.githubusercontent.com \\
          --subject repo:contoso/app:ref:refs/heads/main
      keyless fic create contoso.example deployer --name gh-releases \\
          --issuer https://token.actions.githubusercontent.com \\
          --expression "claims['sub'] matches 'repo:contoso/*:ref:*'" \\
          --condition "claims.repository_visibility == 'private'"
    """
    if (subject is None) == (expression is None):
        raise ConfigurationError("give exactly one of --subject and --expression")
    body: dict[str, Any] = {
        "name": name,
        "issuer": issuer,
        "subject": subject,
        "audiences": [audience],
        "description": description,
    }
    if expression is not None:
        body["claimsMatchingExpression"] = {"value": expression, "languageVersion": 1}
    if condition is not None:
        body["condition"] = condition
    if allow_broad:
        body["allowBroadMatch"] = True
    created = Target(url, admin_key, data_dir).call("POST", _fics(tenant, app), json=body)
    if as_json:
        print_json(created)
        return
    out().print(f"[green]created[/] federated identity credential {escape(created['name'])}")


@fic_app.command("update")
def fic_update(
    tenant: str = TENANT,
    app: str = APP,
    name: str = FIC,
    issuer: str | None = typer.Option(None, "--issuer"),
    subject: str | None = typer.Option(None, "--subject", help="Replaces the expression, if any."),
    expression: str | None = typer.Option(None, "--expression", help="Replaces the subject, if any."),
    condition: str | None = typer.Option(None, "--condition", help="A CEL condition; '' removes it."),
    allow_broad: bool | None = typer.Option(
        None, "--allow-broad-match/--no-allow-broad-match", help="Allow an expression that pins no owner."
    ),
    audience: str | None = typer.Option(None, "--audience"),
    description: str | None = typer.Option(None, "--description"),
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Change a credential's issuer, subject, audience or description (the name is immutable).

    \b
    Example:
      keyless fic update contoso.example my-app gh-main \\
          --subject repo:contoso/app:environment:prod
    """
    body: dict[str, Any] = {
        k: v
        for k, v in (("issuer", issuer), ("subject", subject), ("description", description))
        if v is not None
    }
    if audience is not None:
        body["audiences"] = [audience]
    if subject is not None and expression is not None:
        raise ConfigurationError("give at most one of --subject and --expression")
    if expression is not None:
        body["claimsMatchingExpression"] = {"value": expression, "languageVersion": 1}
    if condition is not None:
        body["condition"] = condition or None
    if allow_broad is not None:
        body["allowBroadMatch"] = allow_broad
    if not body:
        raise ConfigurationError(
            "nothing to change: give --issuer, --subject, --expression, --condition, --audience "
            "or --description"
        )
    path = f"{_fics(tenant, app)}/{quote(name, safe='')}"
    with Target(url, admin_key, data_dir).session() as session:
        session.call("PATCH", path, json=body)
        updated = session.call("GET", path)
    if as_json:
        print_json(updated)
        return
    out().print(f"[green]updated[/] federated identity credential {escape(updated['name'])}")


@fic_app.command("delete")
def fic_delete(
    tenant: str = TENANT,
    app: str = APP,
    name: str = FIC,
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Delete a federated identity credential.

    \b
    Example: keyless fic delete contoso.example cloud-run-caller gh-main
    """
    Target(url, admin_key, data_dir).call("DELETE", f"{_fics(tenant, app)}/{quote(name, safe='')}")
    if as_json:
        print_json({"deleted": name})
        return
    out().print(f"[green]deleted[/] federated identity credential {escape(name)}")


# -- client secrets -----------------------------------------------------------------------------------


def _find(items: list[dict[str, Any]], ref: str, what: str, key: str = "keyId") -> dict[str, Any]:
    """An item by id, or by display name when that is unique."""
    for item in items:
        if item[key].lower() == ref.lower():
            return item
    named = [i for i in items if i.get("displayName") == ref]
    if len(named) == 1:
        return named[0]
    if named:
        raise ConfigurationError(f"{len(named)} {what}s are named {ref!r}: give the keyId")
    raise NotFound(f"no {what} {ref!r}")


def _secrets(session: Session, tenant: str, app: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = session.call("GET", app_path(tenant, app) + "/passwordCredentials")["value"]
    return items


@secret_app.command("list")
def secret_list(
    tenant: str = TENANT,
    app: str = APP,
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """List an application's client secrets (hints only: values are never shown again).

    \b
    Example: keyless secret list contoso.example cloud-run-caller
    """
    with Target(url, admin_key, data_dir).session() as session:
        secrets = _secrets(session, tenant, app)
    if as_json:
        print_json(secrets)
        return
    rows = [(s["keyId"], s["displayName"], s["hint"], s["startDateTime"], s["endDateTime"]) for s in secrets]
    table(("keyId", "displayName", "hint", "starts", "expires"), rows)


@secret_app.command("show")
def secret_show(
    tenant: str = TENANT,
    app: str = APP,
    secret: str = typer.Argument(..., help="keyId or display name."),
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Show one client secret's metadata.

    \b
    Example: keyless secret show contoso.example cloud-run-caller ci
    """
    with Target(url, admin_key, data_dir).session() as session:
        found = _find(_secrets(session, tenant, app), secret, "client secret")
    show_fields(found, title="client secret", as_json=as_json)


@secret_app.command("create")
def secret_create(
    tenant: str = TENANT,
    app: str = APP,
    name: str = typer.Option("", "--name", help="Display name."),
    days: int | None = typer.Option(None, "--days", min=1, help="Lifetime in days (default: two years)."),
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Create a client secret and print its value ONCE (it cannot be shown again).

    Prefer workload identity federation (keyless fic create): no secret to leak.

    \b
    Example:
      keyless secret create contoso.example legacy-caller --name ci --days 30
    """
    credential: dict[str, Any] = {"displayName": name}
    if days is not None:
        end = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
        credential["endDateTime"] = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    created = Target(url, admin_key, data_dir).call(
        "POST", app_path(tenant, app) + "/addPassword", json={"passwordCredential": credential}
    )
    if as_json:
        print_json(created)
        return
    out().print(
        f"[green]created[/] client secret {escape(created['keyId'])} (expires {created['endDateTime']})"
    )
    err().print("[yellow]the value is shown once; store it now:[/]")
    typer.echo(created["secretText"])


@secret_app.command("delete")
def secret_delete(
    tenant: str = TENANT,
    app: str = APP,
    secret: str = typer.Argument(..., help="keyId or display name."),
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Delete a client secret.

    \b
    Example: keyless secret delete contoso.example cloud-run-caller ci
    """
    with Target(url, admin_key, data_dir).session() as session:
        found = _find(_secrets(session, tenant, app), secret, "client secret")
        session.call("POST", app_path(tenant, app) + "/removePassword", json={"keyId": found["keyId"]})
    if as_json:
        print_json({"deleted": found["keyId"]})
        return
    out().print(f"[green]deleted[/] client secret {escape(found['keyId'])}")


# -- certificates -------------------------------------------------------------------------------------


def _certs(session: Session, tenant: str, app: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = session.call("GET", app_path(tenant, app) + "/keyCredentials")["value"]
    return items


@cert_app.command("list")
def cert_list(
    tenant: str = TENANT,
    app: str = APP,
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """List an application's certificates.

    \b
    Example: keyless cert list contoso.example legacy-caller
    """
    with Target(url, admin_key, data_dir).session() as session:
        certs = _certs(session, tenant, app)
    if as_json:
        print_json(certs)
        return
    rows = [(c["keyId"], c["displayName"], c["customKeyIdentifier"], c["endDateTime"]) for c in certs]
    table(("keyId", "displayName", "thumbprint (SHA-1)", "expires"), rows)


@cert_app.command("show")
def cert_show(
    tenant: str = TENANT,
    app: str = APP,
    cert: str = typer.Argument(..., help="keyId, display name or SHA-1 thumbprint (hex)."),
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Show one certificate's metadata.

    \b
    Example: keyless cert show contoso.example legacy-caller 0B4C...9F
    """
    with Target(url, admin_key, data_dir).session() as session:
        certs = _certs(session, tenant, app)
    by_thumbprint = [c for c in certs if c["customKeyIdentifier"].lower() == cert.lower()]
    found = by_thumbprint[0] if by_thumbprint else _find(certs, cert, "certificate")
    show_fields(found, title="certificate", as_json=as_json)


@cert_app.command("create")
def cert_create(
    tenant: str = TENANT,
    app: str = APP,
    file: Path = typer.Option(..., "--file", "-f", help="The certificate, PEM or DER (public part only)."),
    name: str = typer.Option("", "--name", help="Display name (default: the certificate's subject)."),
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Add a certificate the application signs client assertions with.

    \b
    Example: keyless cert create contoso.example legacy-caller --file client.pem
    """
    import base64

    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {file}: {exc.strerror}") from None
    key = raw.decode("ascii") if raw.lstrip().startswith(b"-----BEGIN") else base64.b64encode(raw).decode()
    body = {"displayName": name, "key": key, "type": "AsymmetricX509Cert", "usage": "Verify"}
    created = Target(url, admin_key, data_dir).call(
        "POST", app_path(tenant, app) + "/keyCredentials", json=body
    )
    if as_json:
        print_json(created)
        return
    out().print(
        f"[green]added[/] certificate {escape(created['displayName'])} ({created['customKeyIdentifier']})"
    )


@cert_app.command("delete")
def cert_delete(
    tenant: str = TENANT,
    app: str = APP,
    cert: str = typer.Argument(..., help="keyId or display name."),
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Remove a certificate.

    \b
    Example: keyless cert delete contoso.example legacy-caller 5b1f...
    """
    with Target(url, admin_key, data_dir).session() as session:
        found = _find(_certs(session, tenant, app), cert, "certificate")
        session.call("DELETE", f"{app_path(tenant, app)}/keyCredentials/{found['keyId']}")
    if as_json:
        print_json({"deleted": found["keyId"]})
        return
    out().print(f"[green]deleted[/] certificate {escape(found['keyId'])}")
