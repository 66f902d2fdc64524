"""``keyless plan``, ``keyless apply`` and ``keyless export``: trust as code against a running authority.

The trust file is read and validated here, where it lives (problems as ``file:line``), its
``valueFrom`` secrets and ``certificateFile`` certificates resolved here too, and the result sent
over the admin API (``POST /admin/v1.0/trust/resolved/plan|apply``), which plans or applies it
exactly as ``keyless serve --trust FILE`` does. See docs/trust-file.md.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import typer
import yaml

from keyless.authority import load_trust_file, localize_problems, to_wire
from keyless.cli._admin_client import ServerProblems
from keyless.cli._common import (
    ADMIN_KEY,
    DATA_DIR,
    ERROR_EXIT_META,
    JSON,
    URL,
    Target,
    err,
    escape,
    out,
    print_json,
    progress,
)
from keyless.errors import ConfigurationError

__all__ = ["apply_command", "export_command", "plan_command"]

FILE = typer.Option(..., "--file", "-f", help="The trust file (YAML).")
PRUNE = typer.Option(
    False, "--prune", help="Also delete what the file does not name, inside the tenants it names."
)
PLAN_HAS_CHANGES = 2  # --detailed-exitcode, as `terraform plan -detailed-exitcode`
WAIT = typer.Option(0.0, "--wait", help="Seconds to wait for the authority to come up first.")
_STYLE = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red")}
# An apply is one transaction the server bounds itself (its wait for another apply's lock, each
# statement's timeout): the CLI waits for its answer however long it takes, because giving up
# would not stop it (a retry would only queue behind it). Connecting and sending stay bounded.
APPLY_TIMEOUT = httpx.Timeout(30.0, read=None)


def _send(
    file: Path, action: str, prune: bool, target: Target, wait: float
) -> tuple[str, list[dict[str, Any]]]:
    doc = load_trust_file(file)
    body = to_wire(doc)
    with target.session() as session:
        if wait:
            session.wait(wait)
        try:
            with progress(f"{action} {file} ({len(body['tenants'])} tenant(s)) ..."):
                result = session.call(
                    "POST",
                    f"/trust/resolved/{action}",
                    params={"prune": prune},
                    json=body,
                    timeout=APPLY_TIMEOUT,
                )
        except ServerProblems as exc:
            raise ConfigurationError(localize_problems(exc.located, doc)) from None
        for warning in result.get("warnings", []):
            err().print(f"[yellow]warning:[/] {escape(str(warning))}")
        return session.client.base_url, list(result["value"])


def _print_changes(changes: list[dict[str, Any]]) -> None:
    console = out()
    for change in changes:
        symbol, colour = _STYLE[change["action"]]
        detail = f": {change['detail']}" if change["detail"] else ""
        console.print(f"  [{colour}]{symbol} {change['kind']} {escape(change['name'])}[/]{escape(detail)}")


def _counts(changes: list[dict[str, Any]]) -> str:
    found = Counter(c["action"] for c in changes)
    return f"{found['create']} to create, {found['update']} to update, {found['delete']} to delete"


def plan_command(
    ctx: typer.Context,
    file: Path = FILE,
    prune: bool = PRUNE,
    wait: float = WAIT,
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
    detailed_exitcode: bool = typer.Option(
        False,
        "--detailed-exitcode",
        help="Exit 0 with nothing to change, 2 with changes (1 on errors), as Terraform does.",
    ),
) -> None:
    """Show what `keyless apply` would change (create + / update ~ / delete -), changing nothing.

    Examples:

    \b
      keyless plan -f trust.yaml
      keyless plan -f trust.yaml --prune --json
      keyless plan -f trust.yaml --detailed-exitcode || echo "changes pending"
    """
    if detailed_exitcode:  # every error is then 1, as Terraform's (2 means "changes")
        ctx.meta[ERROR_EXIT_META] = 1
    try:
        base, changes = _send(file, "plan", prune, Target(url, admin_key, data_dir), wait)
    except typer.Exit as exc:
        if detailed_exitcode and exc.exit_code:
            raise typer.Exit(1) from None
        raise
    if as_json:
        print_json({"authority": base, "changes": changes})
    elif not changes:
        out().print(f"[green]No changes.[/] {escape(base)} already matches {escape(str(file))}.")
    else:
        console = out()
        console.print(f"keyless plan: {escape(str(file))} against {escape(base)}")
        _print_changes(changes)
        console.print(f"Plan: {_counts(changes)}. Run `keyless apply -f {escape(str(file))}` to make it so.")
    if detailed_exitcode and changes:
        raise typer.Exit(PLAN_HAS_CHANGES)


def apply_command(
    file: Path = FILE,
    prune: bool = PRUNE,
    wait: float = WAIT,
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Make the authority match the trust file (idempotent: a second apply changes nothing).

    Secrets come from valueFrom (env or file) on this machine; a changed value replaces the stored
    secret, an unchanged one is left alone.

    Examples:

    \b
      keyless apply -f trust.yaml
      keyless apply -f trust.yaml --prune \\
          --url https://keyless.internal:8443 --admin-key "$KEY"
    """
    base, changes = _send(file, "apply", prune, Target(url, admin_key, data_dir), wait)
    if as_json:
        print_json({"authority": base, "changes": changes})
        return
    console = out()
    if not changes:
        console.print(f"[green]No changes.[/] {escape(base)} already matches {escape(str(file))}.")
        return
    _print_changes(changes)
    console.print(f"[green]Applied[/] to {escape(base)}: {_counts(changes).replace('to ', '')}.")


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (certificates), so exported files stay readable."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str)


def export_yaml(document: dict[str, Any], source: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    header = (
        f"# keyless trust file exported from {source} at {stamp}\n"
        "# Secrets appear only as hint (kept as stored); give valueFrom: {env: NAME} to set one.\n"
    )
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)
    return header + body


class ExportFormat(enum.StrEnum):
    YAML = "yaml"
    DOT = "dot"
    MERMAID = "mermaid"


def export_command(
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file (default: stdout)."),
    tenants: list[str] | None = typer.Option(None, "--tenant", help="Only this tenant; repeat for more."),
    export_format: ExportFormat = typer.Option(
        ExportFormat.YAML,
        "--format",
        help="yaml (a trust file), or the trust graph as dot (Graphviz) or mermaid.",
    ),
    wait: float = WAIT,
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Write the authority's current state as a trust file (plan on it shows no changes).

    With --format dot or mermaid: who trusts whom instead (applications, federated credentials,
    issuers, app roles held), for documents.

    Examples:

    \b
      keyless export -o trust.yaml
      keyless export --tenant contoso.example --json
      keyless export --format dot | dot -Tsvg > trust.svg
      keyless export --format mermaid --tenant contoso.example
    """
    with Target(url, admin_key, data_dir).session() as session:
        if wait:
            session.wait(wait)
        if export_format != ExportFormat.YAML:
            text = _graphs(session, tenants, export_format.value)
            document: dict[str, Any] = {"tenants": []}
        else:
            with progress("exporting ..."):
                document = session.call("GET", "/trust/export", params={"tenant": tenants or []})
            base = session.client.base_url
            text = _json_text(document) if as_json else export_yaml(document, base)
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot write {output}: {exc.strerror}") from None
    if export_format != ExportFormat.YAML:
        out().print(f"wrote {escape(str(output))}: the trust graph as {export_format.value}")
        return
    count = sum(len(t.get("applications", [])) for t in document["tenants"])
    out().print(f"wrote {escape(str(output))}: {len(document['tenants'])} tenant(s), {count} application(s)")


def _graphs(session: Any, tenants: list[str] | None, export_format: str) -> str:
    """Each tenant's trust graph as text (every tenant's when none is named)."""
    refs = tenants or [t["id"] for t in session.call("GET", "/tenants")["value"]]
    texts = [
        str(
            session.call(
                "GET", f"/tenants/{quote(ref, safe='')}/trustGraph", params={"format": export_format}
            )
        )
        for ref in refs
    ]
    return "\n".join(texts)


def _json_text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"
