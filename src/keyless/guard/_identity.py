"""The verified caller: who it is, for which tenant, with which roles and scopes."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = ["Identity", "identity_from_claims"]


class Identity(NamedTuple):
    """A caller whose token passed every check (a tuple: immutable and cheap to build).

    ``app_id`` is Entra's ``appid`` (v1) or ``azp`` (v2, and Google's ``azp``); ``scopes`` is the
    ``scp`` claim split on spaces; ``claims`` is the whole (read-only) payload; ``expires`` is ``exp``.
    """

    subject: str
    issuer: str
    object_id: str | None
    app_id: str | None
    tenant_id: str | None
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    email: str | None
    expires: float
    claims: Mapping[str, Any]
    issuer_kind: str

    @property
    def principals(self) -> frozenset[str]:
        """The names a policy's ``principals`` may use for this caller: sub, oid, appid/azp, email."""
        found = {self.subject, self.object_id, self.app_id, self.email}
        found.discard(None)
        return frozenset(v for v in found if v)

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


_new_tuple = tuple.__new__
_is_text = str.__instancecheck__  # JSON gives exact str; filter() keeps the loop in C


def identity_from_claims(payload: Mapping[str, Any], *, kind: str, expires: float) -> Identity:
    """Build the identity from a checked payload (``sub`` and ``iss`` were checked to be text).

    On every uncached request: written for speed (no helper calls, the tuple built directly).
    """
    get = payload.get
    oid = get("oid")
    app_id = get("appid") or get("azp")
    tid = get("tid")
    email = get("email")
    roles = get("roles")
    scp = get("scp")
    values = (
        payload["sub"],
        payload["iss"],
        oid if type(oid) is str and oid else None,
        app_id if type(app_id) is str and app_id else None,
        tid if type(tid) is str and tid else None,
        tuple(filter(_is_text, roles)) if type(roles) is list else (),
        tuple(scp.split()) if type(scp) is str else (),
        email if type(email) is str and email else None,
        expires,
        MappingProxyType(payload),
        kind,
    )
    identity: Identity = _new_tuple(Identity, values)
    return identity
