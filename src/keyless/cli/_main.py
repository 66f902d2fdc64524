"""Entry point: one ``keyless`` command with sub-commands; failures print the cause and the next
step, never a traceback (unless ``--debug``)."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

from keyless import __version__
from keyless._logging import configure_logging
from keyless.cli import _keys, _serve
from keyless.errors import ConfigurationError, KeylessError

__all__ = ["app", "main"]

app = typer.Typer(
    name="keyless",
    help="Secretless service-to-service identity: an Entra-compatible token service with workload identity "
    "federation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)
_state = {"debug": False}


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on failure.")) -> None:
    _state["debug"] = debug


@app.command()
def version() -> None:
    """Print the keyless version."""
    typer.echo(__version__)


app.command("serve", help=_serve.HELP)(_serve.serve)
app.add_typer(_keys.app, name="keys")


def main() -> None:
    configure_logging(os.environ.get("KEYLESS_LOG_LEVEL", "info"))
    try:
        app()
    except ConfigurationError as exc:
        if _state["debug"]:
            raise
        err.print("[bold red]configuration problem[/]" + ("s" if len(exc.problems) > 1 else "") + ":")
        for problem in exc.problems:
            err.print(f"  - {problem}", markup=False, highlight=False)
        sys.exit(2)
    except KeylessError as exc:
        if _state["debug"]:
            raise
        err.print(f"[bold red]error[/] ({exc.code}): {exc}", highlight=False)
        sys.exit(1)
