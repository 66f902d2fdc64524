"""What the commands share: connection options for the admin API, output (rich on a terminal, JSON
for scripts), progress, reading a token argument, and the exit codes.

Exit codes: 0 ok; 1 refused, not found, or the operation failed; 2 a usage or configuration
problem (bad flags, a bad file, a refused admin key); 3 the authority could not be reached.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from keyless.cli._admin_client import AdminClient, Unreachable, call, connect
from keyless.errors import ConfigurationError

__all__ = [
    "ADMIN_KEY",
    "DATA_DIR",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "JSON",
    "URL",
    "Session",
    "Target",
    "err",
    "escape",
    "new_table",
    "out",
    "print_json",
    "progress",
    "read_token",
    "show_fields",
    "table",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

URL = typer.Option(
    None,
    "--url",
    help="Authority base URL (env KEYLESS_URL; default: the local one, from the data directory).",
)
ADMIN_KEY = typer.Option(
    None, "--admin-key", help="Admin key (env KEYLESS_ADMIN_KEY; default: DATA_DIR/admin.key)."
)
DATA_DIR = typer.Option(
    None,
    "--data-dir",
    help="Data directory of the local authority (env KEYLESS_DATA_DIR; default ./.keyless).",
)
JSON = typer.Option(False, "--json", help="Print JSON for scripts.")
# A command may set this in the click context's meta: the exit code for any keyless error it raises
# (``plan --detailed-exitcode`` makes every error 1, since 2 means "changes" there).
ERROR_EXIT_META = "keyless.error_exit_code"


def _width() -> int | None:
    """The terminal's width on a terminal; in a pipe, wide enough that nothing is cut."""
    return None if sys.stdout.isatty() else 1000


def out() -> Console:
    """Standard output: colour and tables on a terminal, plain and wide in a pipe."""
    return Console(width=_width(), highlight=False, soft_wrap=True)


def err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def new_table(columns: Sequence[str], *, title: str | None = None, show_header: bool = True) -> Table:
    """A table whose cells wrap rather than being cut short (ids and URLs must stay whole)."""
    grid = Table(title=title, title_justify="left", show_header=show_header)
    for column in columns:
        grid.add_column(column, overflow="fold")
    return grid


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def table(columns: Sequence[str], rows: Sequence[Sequence[object]], *, title: str | None = None) -> None:
    """Rows as a table; on a terminal too narrow for it (the table would fold its ids and URLs),
    as records: one ``column: value`` line each, a blank line between rows."""
    cells = [["" if v is None else v if isinstance(v, str) else json.dumps(v) for v in row] for row in rows]
    grid = new_table(columns, title=title)
    for row in cells:
        grid.add_row(*(escape(v) for v in row))
    console = out()
    if console.measure(grid, options=console.options.update_width(100_000)).maximum <= console.width:
        console.print(grid)
        return
    if title:
        console.print(f"[bold]{escape(title)}[/]")
    label = max(len(c) for c in columns) + 1
    for index, row in enumerate(cells):
        if index:
            console.print()
        for column, value in zip(columns, row, strict=False):
            console.print(f"{escape(column + ':'):<{label}} {escape(value)}", soft_wrap=True)


def show_fields(item: dict[str, Any], *, title: str | None = None, as_json: bool = False) -> None:
    """One object as a two-column table (nested values as JSON), or as JSON for scripts."""
    if as_json:
        print_json(item)
        return
    grid = new_table(("property", "value"), title=title, show_header=False)
    for key, value in item.items():
        text = "" if value is None else value if isinstance(value, str) else json.dumps(value)
        grid.add_row(escape(key), escape(text))
    out().print(grid)


@contextlib.contextmanager
def progress(message: str) -> Iterator[None]:
    """A spinner on stderr while something slow runs (only on a terminal)."""
    console = err()
    if not console.is_terminal:
        yield
        return
    with console.status(message):
        yield


def read_token(value: str) -> str:
    """A token given inline, as ``-`` (standard input) or as the path of a file holding it."""
    if value == "-":
        text = sys.stdin.read().strip()
        if not text:
            raise ConfigurationError("no token on standard input")
        return text
    path = Path(value).expanduser()
    try:
        is_file = path.is_file()
    except (OSError, ValueError):  # a long token is not a file name
        is_file = False
    if is_file:
        try:
            return path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"cannot read the token file {value}: {exc}") from None
    token = value.strip()
    # A JWT is base64url: never a '/', and never starting with '.' or '~'. Such an argument is meant
    # as a file name, and a missing file is said to be one.
    if os.sep in token or token.startswith(("~", ".")):
        raise ConfigurationError(f"no such token file: {value}")
    if token.count(".") >= 2:
        return token
    shown = value if len(value) < 60 else value[:57] + "..."
    raise ConfigurationError(f"{shown!r} is neither a JWT (three dot-separated parts) nor a readable file")


@dataclass(frozen=True, slots=True)
class Target:
    """Where the admin API is: the local authority (found through the data directory) or --url."""

    url: str | None = None
    admin_key: str | None = None
    data_dir: Path | None = None

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        client = connect(self.url, self.admin_key, self.data_dir)
        try:
            yield Session(client)
        finally:
            client.http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request in its own session."""
        with self.session() as session:
            return session.call(method, path, **kwargs)


@dataclass(frozen=True, slots=True)
class Session:
    client: AdminClient

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return call(self.client, method, path, **kwargs)

    def wait(self, seconds: float) -> None:
        """Wait (with a spinner) until the authority answers /healthz; Unreachable after ``seconds``."""
        deadline = time.monotonic() + seconds
        url = f"{self.client.base_url}/healthz"
        with progress(f"waiting for the authority at {self.client.base_url} ..."):
            while True:
                try:
                    if self.client.http.get(url, timeout=2).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise Unreachable(
                        f"the authority at {self.client.base_url} did not answer within {seconds:g} s"
                    )
                time.sleep(0.25)
