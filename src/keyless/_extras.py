"""Which extra brings a missing module, for one clear line instead of an ImportError traceback."""

from __future__ import annotations

__all__ = ["missing_extra_message"]

_EXTRA_OF = {
    "typer": "cli",
    "rich": "cli",
    "click": "cli",
    "pydantic": "cli",
    "pydantic_settings": "cli",
    "yaml": "cli",
    "starlette": "guard",
    "uvicorn": "guard",
    "httptools": "guard",
    "h11": "guard",
    "anyio": "guard",
    "fastapi": "server",
    "sqlalchemy": "server",
    "alembic": "server",
    "psycopg": "postgres",
    "redis": "redis",
}


def missing_extra_message(exc: ModuleNotFoundError) -> str | None:
    """``pip install 'keyless[EXTRA]'`` advice when ``exc`` is about a module an extra provides."""
    top = (exc.name or "").split(".", 1)[0]
    extra = _EXTRA_OF.get(top)
    if extra is None:
        return None
    install = f"pip install 'keyless[{extra}]'"
    return f"this needs the {top!r} module, which the {extra!r} extra installs: {install}"
