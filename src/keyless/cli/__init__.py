"""The ``keyless`` command line: thin commands over the library (typer + rich).

``main`` is the console script. It imports the command line only when run, so an install without
the ``cli`` extra gets one line naming the extra instead of an ImportError traceback.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["app", "main"]


def main() -> None:
    try:
        from keyless.cli._main import main as run
    except ModuleNotFoundError as exc:
        from keyless._extras import missing_extra_message

        message = missing_extra_message(exc)
        if message is None:
            raise
        sys.stderr.write(f"keyless: {message}\n")
        raise SystemExit(2) from None
    run()


def __getattr__(name: str) -> Any:
    if name == "app":
        from keyless.cli._main import app

        return app
    raise AttributeError(name)
