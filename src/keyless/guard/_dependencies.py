"""FastAPI dependencies over :class:`GuardMiddleware`'s identity: per-endpoint role and scope checks.

::

    @app.get("/blobs/{name}")
    async def read(name: str, caller: Identity = Depends(require_roles("Blob.Read"))) -> ...

A request without a verified identity is refused with 401, one lacking the roles with 403
``insufficient_scope``; both carry an RFC 6750 challenge. Imports Starlette (FastAPI's base).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from keyless.guard._identity import Identity

__all__ = ["current_identity", "optional_identity", "require_roles", "require_scopes"]

Dependency = Callable[[HTTPConnection], Identity]


def _challenge(error: str | None = None, description: str = "", scope: tuple[str, ...] = ()) -> str:
    value = 'Bearer realm="keyless"'
    if error:
        value += f', error="{error}", error_description="{description}"'
        if scope:
            value += f', scope="{" ".join(scope)}"'
    return value


def optional_identity(request: HTTPConnection) -> Identity | None:
    """The verified caller, or ``None`` (an anonymous path, or no middleware)."""
    identity = getattr(request.state, "identity", None)
    return identity if isinstance(identity, Identity) else None


def current_identity(request: HTTPConnection) -> Identity:
    """The verified caller; 401 when there is none."""
    identity = optional_identity(request)
    if identity is None:
        raise HTTPException(
            401, "a verified bearer token is required", headers={"WWW-Authenticate": _challenge()}
        )
    return identity


def _require(kind: str, values: tuple[str, ...], all_of: bool) -> Dependency:
    if not values:
        raise ValueError(f"require_{kind}s needs at least one {kind}")
    wanted = set(values)

    def dependency(request: HTTPConnection) -> Identity:
        identity = current_identity(request)
        held = set(identity.roles if kind == "role" else identity.scopes)
        if (wanted <= held) if all_of else bool(wanted & held):
            return identity
        how = "all" if all_of else "one"
        description = f"this endpoint needs {how} of the {kind}s {', '.join(values)}"
        raise HTTPException(
            403,
            description,
            headers={"WWW-Authenticate": _challenge("insufficient_scope", description, values)},
        )

    dependency.__name__ = f"require_{kind}s_{'_'.join(values)}"
    return dependency


def require_roles(*roles: str, all_of: bool = False) -> Dependency:
    """A dependency returning the caller's identity if it holds any (or, ``all_of``, all) of ``roles``."""
    return _require("role", roles, all_of)


def require_scopes(*scopes: str, all_of: bool = False) -> Dependency:
    """Like :func:`require_roles`, for delegated scopes (the ``scp`` claim)."""
    return _require("scope", scopes, all_of)
