"""``keyless dev``: the whole system in one command (what ``make run`` runs)."""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from keyless._logging import configure_logging

if TYPE_CHECKING:  # the whole stack is imported when `dev` runs, not for every CLI command
    from keyless.dev import DevStack

HELP = """Run the authority, the metadata emulator (playing Cloud Run) and a demo API behind the guard,
play the seed scenario (a workload gets a token with no secret and calls the protected API; one
refused call, explained), then keep serving.

Examples:

\b
  keyless dev               # serve until Ctrl-C; clients: . .keyless/dev.env
  keyless dev --once        # play the scenario and exit with its status (CI)
  keyless dev --authority-port 9443 --metadata-port 9080 --api-port 9444
"""

console = Console()


def _seed_trust() -> Path:
    return Path(str(resources.files("keyless.dev") / "seed-trust.yaml"))


def _announce(dev: DevStack) -> None:
    console.rule("[bold green]keyless dev is serving")
    console.print(f"  authority        {dev.authority_url}   (admin API: {dev.authority_url}/admin/docs)")
    from keyless.authority import ADMIN_KEY_FILE

    key_file = dev.data_dir.resolve() / ADMIN_KEY_FILE
    console.print(f"  console          {dev.authority_url}/console   (sign in with the key in {key_file})")
    console.print(f"  metadata server  http://{dev.metadata_host}   (plays Cloud Run's)")
    console.print(f"  blob-api         {dev.api_url}   (behind the guard)")
    console.print(f"  tenant {dev.tenant_id}, caller {dev.client_id}, scope {dev.scope}", highlight=False)
    console.print(
        f"\nClients, in another shell: [bold]. {dev.env_file.resolve()}[/]  (puts keyless on PATH)\n"
        "  then e.g. python examples/seed_keyless_credential.py"
    )
    console.print("Ctrl-C stops everything.")


def dev(
    data_dir: Path = typer.Option(
        Path(".keyless"), "--data-dir", help="Data directory (database, keys, TLS)."
    ),
    trust: Path = typer.Option(
        None, "--trust", "-t", help="Trust file to apply [default: the seed scenario's]."
    ),
    authority_port: int = typer.Option(
        8443, "--authority-port", min=0, max=65535, help="HTTPS port of the authority."
    ),
    metadata_port: int = typer.Option(
        8080, "--metadata-port", min=0, max=65535, help="HTTP port of the metadata emulator."
    ),
    api_port: int = typer.Option(
        8444, "--api-port", min=0, max=65535, help="HTTPS port of the guarded demo API."
    ),
    once: bool = typer.Option(False, "--once", help="Play the scenario, then exit with its status."),
    reseed: bool = typer.Option(
        False,
        "--reseed",
        help="Apply the trust file even to a data directory that already has a directory (reverting edits).",
    ),
) -> None:
    from keyless.dev import DevPorts, play, run_stack

    configure_logging("warning")
    ports = DevPorts(authority=authority_port, metadata=metadata_port, api=api_port)
    with run_stack(data_dir, trust or _seed_trust(), ports, reseed=reseed) as stack:
        console.print(stack.seeded, highlight=False, markup=False)
        passed = play(stack, console)
        console.rule("[bold green]scenario passed" if passed else "[bold red]scenario failed")
        if once:
            raise typer.Exit(0 if passed else 1)
        _announce(stack)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            console.print("\nstopping…")
