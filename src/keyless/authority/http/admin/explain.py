"""Admin routes that say why a client was (or would be) refused: the ``explain`` dry run of a
federated assertion against a live application, and the recent refusals of a tenant."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from keyless.authority._service import Authority
from keyless.authority.explain.dry_run import Explanation, explain_assertion, issuer_to_fetch
from keyless.authority.http.admin.common import (
    APP,
    TENANT,
    Admin,
    Json,
    app_or_404,
    authority_of,
    require_admin,
    tenant_or_404,
    value_list,
)
from keyless.authority.http.admin.schemas import RESPONSES
from keyless.authority.model import Application
from keyless.errors import MalformedToken, TransportError
from keyless.jose import DEFAULT_MAX_TOKEN, KeySet, decode_unverified

__all__ = ["explain_live", "router"]

router = APIRouter(prefix="/v1.0", dependencies=[Depends(require_admin)])


class ExplainIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    assertion: Annotated[
        str, Field(min_length=1, max_length=DEFAULT_MAX_TOKEN, description="The client assertion (a JWT)")
    ]


async def explain_live(authority: Authority, found: Application, tenant: str, assertion: str) -> Explanation:
    """The dry run against ``found``'s stored credentials, fetching the issuer's keys through the
    token endpoint's cache only when a credential names the issuer: one implementation behind the
    admin API, ``keyless explain`` and the console."""
    settings = authority.settings
    fics = await anyio.to_thread.run_sync(authority.admin.list_fics, found)
    keys: KeySet | None = None
    key_error: str | None = None
    issuer = issuer_to_fetch(assertion, fics)
    if issuer is not None:
        try:
            kid = decode_unverified(assertion)[0].get("kid")
            keys = await authority.issuer_keys.get(
                issuer,
                kid if isinstance(kid, str) else None,
                discovery_url=settings.issuer_overrides.get(issuer),
            )
        except TransportError as exc:
            key_error = str(exc)
        except MalformedToken:
            pass
    return explain_assertion(
        assertion,
        fics,
        now=authority.clock(),
        keys=keys,
        key_error=key_error,
        leeway=settings.assertion_leeway,
        algorithms=frozenset(settings.assertion_algorithms),
        own_issuer_prefix=settings.base_url + "/",
        app=found.app_id,
        tenant=tenant,
    )


@router.post(APP + "/explain", tags=["explain"], response_model=None, responses=RESPONSES["explain"])
async def explain(request: Request, tenant: str, app: str, body: ExplainIn) -> Json:
    """Dry-run the token endpoint's federated-assertion check against this application, step by step,
    with the AADSTS code it would answer and the fix. Nothing is recorded or consumed. The issuer's
    keys are fetched (through the same cache as the token endpoint) only when a credential of the
    application names the assertion's issuer."""
    authority = authority_of(request)
    found = await anyio.to_thread.run_sync(app_or_404, authority.admin, tenant, app)
    explanation = await explain_live(authority, found, tenant, body.assertion)
    return {
        "application": {"appId": found.app_id, "displayName": found.display_name},
        **explanation.to_json(),
    }


@router.get(TENANT + "/refusals", tags=["explain"], response_model=None, responses=RESPONSES["refusals"])
def refusals(
    request: Request,
    admin: Admin,
    tenant: str,
    top: Annotated[int, Query(ge=1, le=1000, alias="$top", description="How many, newest first")] = 100,
) -> Json:
    """The tenant's recent token-endpoint refusals with their full reason, from every server process
    and node sharing the store (the newest 10,000; the audit log ``keyless.audit`` is the durable
    record)."""
    found = tenant_or_404(admin, tenant)
    refs = [found.id, *found.domains]
    found_refusals = authority_of(request).refusals.recent(refs, limit=top)
    return value_list([r.to_json() for r in found_refusals])
