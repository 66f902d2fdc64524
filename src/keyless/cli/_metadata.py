"""``keyless metadata``: the Google metadata-server emulator on plain HTTP, with the environment
clients need printed at start."""

from __future__ import annotations

import enum
import json
import shlex
from pathlib import Path

import typer
from rich.console import Console

from keyless.metadata import GOOGLE_ISSUER, MetadataServer, google_mode_warning, load_metadata_config

__all__ = ["HELP", "client_instructions", "metadata"]

HELP = """Run the Google metadata-server emulator (GCE / Cloud Run) that google-auth uses unmodified.

Examples:

\b
  keyless metadata                  # http://127.0.0.1:8080, keyless-local
  keyless metadata --config metadata.yaml --port 8081
  keyless metadata --issuer google  # iss accounts.google.com (dev only)
"""

console = Console(stderr=True)


class IssuerChoice(enum.StrEnum):
    self = "self"
    google = "google"


def client_instructions(url: str, host_port: str, issuer_mode: str) -> list[str]:
    """The shell lines a client (and, in google mode, the authority) needs to use this emulator."""
    lines = [
        f"export GCE_METADATA_HOST={host_port}",
        f"export GCE_METADATA_IP={host_port}",
        "unset GOOGLE_APPLICATION_CREDENTIALS",
    ]
    if issuer_mode == "google":
        overrides = json.dumps({GOOGLE_ISSUER: f"{url}/.well-known/openid-configuration"})
        lines.append(
            "KEYLESS_DEV_MODE=true KEYLESS_ALLOW_HTTP_LOOPBACK_ISSUERS=true "
            f"KEYLESS_ISSUER_OVERRIDES={shlex.quote(overrides)} keyless serve"
        )
    return lines


def metadata(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, min=0, max=65535, help="Port to listen on (0: any free port)."),
    config: Path = typer.Option(None, "--config", "-c", help="YAML file: project, instance, accounts."),
    issuer: IssuerChoice = typer.Option(
        None, "--issuer", help="'self' (iss = this server's URL, default) or 'google' (dev only)."
    ),
    account: str = typer.Option(None, "--account", help="Email of the default service account."),
    unique_id: str = typer.Option(
        None, "--unique-id", help="21-digit unique id of the default account (its tokens' sub)."
    ),
    project: str = typer.Option(None, "--project", help="Project id [default keyless-local]."),
    project_number: int = typer.Option(None, "--project-number", help="Project number."),
    zone: str = typer.Option(None, "--zone", help="Zone [default us-central1-a]."),
    public_url: str = typer.Option(None, "--public-url", help="Base URL clients and verifiers use."),
) -> None:
    settings = load_metadata_config(
        config,
        issuer=issuer.value if issuer is not None else None,
        account_email=account,
        unique_id=unique_id,
        project_id=project,
        numeric_project_id=project_number,
        zone=zone,
        public_url=public_url,
    )
    server = MetadataServer(settings, host=host, port=port, log_level="info", access_log=True)
    _announce(server)
    server.serve_forever()


def _announce(server: MetadataServer) -> None:
    config, url = server.config, server.url
    account = config.default_account
    console.print(f"[bold green]keyless metadata emulator[/] at {url}", highlight=False, soft_wrap=True)
    console.print(
        f"  project:           {config.project_id} ({config.numeric_project_id})",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"  default account:   {account.email}  unique id (sub) {account.unique_id}", highlight=False
    )
    console.print(f"  token issuer:      {server.issuer.issuer}", highlight=False, soft_wrap=True)
    console.print(f"  OIDC discovery:    {server.discovery_url}", highlight=False, soft_wrap=True)
    console.print(f"  JWKS:              {server.jwks_uri}", highlight=False, soft_wrap=True)
    if config.issuer == "google":
        console.print(f"[bold red]{google_mode_warning(url)}[/]", highlight=False, soft_wrap=True)
    console.print("Client environment (set before google-auth is imported):", soft_wrap=True)
    lines = client_instructions(url, server.host_port, config.issuer)
    for line in lines[:3]:
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    if config.issuer == "google":
        console.print("Authority (development only):")
        console.print(f"  {lines[3]}", markup=False, highlight=False, soft_wrap=True)
