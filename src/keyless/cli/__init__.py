"""The ``keyless`` command line: thin commands over the library (typer + rich)."""

from keyless.cli._main import app, main

__all__ = ["app", "main"]
