"""Admin routes for resolved trust documents: what ``keyless plan -f`` and ``keyless apply -f`` send.

The CLI reads the trust file where it lives (``valueFrom`` and ``certificateFile`` resolved there)
and sends secrets as ``secretText`` and certificates inline (see ``_trustwire``); these routes plan
or apply it exactly as ``keyless serve --trust`` does. ``POST /trust/plan`` and ``/trust/apply``
(in ``_admin_federation``) take unresolved documents without secret values.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request

from keyless.authority.http.admin.common import Admin, Json, authority_of, require_admin
from keyless.authority.http.admin.schemas import RESPONSES
from keyless.authority.trustfile import reconcile as trust
from keyless.authority.trustfile.wire import from_wire

__all__ = ["router"]

router = APIRouter(prefix="/v1.0", dependencies=[Depends(require_admin)])

ResolvedBody = Annotated[
    dict[str, Any],
    Body(
        description="A trust document whose passwordCredentials carry secretText or hint, certificates inline"
    ),
]


@router.post(
    "/trust/resolved/plan", tags=["trust"], response_model=None, responses=RESPONSES["plan_resolved"]
)
def plan_resolved(admin: Admin, document: ResolvedBody, prune: bool = False) -> Json:
    """The changes ``apply`` would make; secret values are compared, never returned."""
    return trust.plan(admin, from_wire(document), prune=prune).to_json()


@router.post(
    "/trust/resolved/apply", tags=["trust"], response_model=None, responses=RESPONSES["apply_resolved"]
)
def apply_resolved(admin: Admin, request: Request, document: ResolvedBody, prune: bool = False) -> Json:
    """Make the directory match the document (idempotent, one transaction); returns the changes made.

    A second apply waits for the first (on any node) up to ``KEYLESS_APPLY_LOCK_TIMEOUT``, then 409.
    """
    lock_timeout = authority_of(request).settings.apply_lock_timeout
    return trust.apply(admin, from_wire(document), prune=prune, lock_timeout=lock_timeout).to_json()
