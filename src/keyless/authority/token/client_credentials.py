"""The client_credentials grant: every check of the token endpoint, in order, top to bottom.

0. tenant (GUID or domain; not /common)            -> 900023, 90002, 9001023 (``tenants``, by the route)
1. grant_type                                       -> 900144, 70003
2. target present (v2 ``scope``, v1 ``resource``)   -> 900144 (read once, resolved in step 5)
3. client credentials presented (``client_auth``)   -> 9002313: client_id differs from Basic's,
                                                       a secret twice, or more than one method
4. client_id and the app                            -> 900144, 700016
5. client authentication                            -> see ``client_auth`` and ``federated``
6. target resource                                  -> 1002012, 700022, 500011
7. roles (assignment required?)                     -> 501051
8. mint the token for the resource's token version
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from keyless.authority.directory.snapshot import AppView, TenantView
from keyless.authority.token.aadsts import refuse
from keyless.authority.token.client_auth import ClientAuthenticator, MatchedCredential, presented_credentials
from keyless.authority.token.minting import mint_access_token, token_response

__all__ = ["GRANT_TYPE", "Target", "TokenRequest", "TokenService", "read_target"]

GRANT_TYPE = "client_credentials"  # the one grant the token endpoint serves

RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})


@dataclass(frozen=True, slots=True)
class TokenRequest:
    tenant: TenantView  # resolved once, by the route (``tenants.resolve_tenant``)
    endpoint_version: Literal[1, 2]
    form: Mapping[str, str]
    basic: tuple[str, str] | None  # (client_id, secret) from an Authorization: Basic header


@dataclass(frozen=True, slots=True)
class TokenResult:
    body: dict[str, Any]
    tenant_id: str
    client_id: str
    claims: Mapping[str, Any]
    credential: MatchedCredential  # which credential proved the client (for the audit event)


class TokenService:
    def __init__(
        self,
        *,
        authenticator: ClientAuthenticator,
        base_url: str,
        lifetime: tuple[int, int],
        clock: Callable[[], float],
    ) -> None:
        self._auth = authenticator
        self._base_url = base_url
        self._origins = frozenset({base_url})
        self._lifetime = lifetime
        self._clock = clock

    async def issue(self, request: TokenRequest) -> TokenResult:
        tenant = request.tenant
        form = request.form
        _require_grant(form)
        target = read_target(form, request.endpoint_version)
        # Certificate assertions name this server's configured public URL, never the Host the
        # request happened to carry: an assertion made for another authority (Entra's own token
        # endpoint) must not be redeemable here by sending its host name.
        presented = presented_credentials(form, request.basic, self._origins)
        client = _client(tenant, presented.client_id)
        credential = await self._auth.authenticate(tenant, client, presented)
        resource, requested = _resolve_target(tenant, target)
        roles = tenant.roles(client.app.service_principal_id, resource.app.service_principal_id)
        if resource.app.app_role_assignment_required and not roles:
            raise refuse(
                501051,
                client_id=client.app.app_id,
                client_name=client.app.display_name,
                resource=resource.app.app_id,
                resource_name=resource.app.display_name,
            )
        return self._mint(tenant, client, resource, requested, roles, credential, request.endpoint_version)

    def _mint(
        self,
        tenant: TenantView,
        client: AppView,
        resource: AppView,
        requested: str,
        roles: tuple[str, ...],
        credential: MatchedCredential,
        endpoint_version: Literal[1, 2],
    ) -> TokenResult:
        moment = self._clock()
        now = int(moment)
        signer = tenant.signer(moment)
        if signer is None:  # a tenant always gets a key at creation; this is a broken store
            raise RuntimeError(f"tenant {tenant.id} has no signing key")
        low, high = self._lifetime
        issued = mint_access_token(
            signer=signer,
            base_url=self._base_url,
            tenant_id=tenant.id,
            client=client.app,
            resource=resource.app,
            requested_resource=requested,
            roles=roles,
            client_auth=credential.client_auth,
            now=now,
            lifetime=random.randint(low, high),  # noqa: S311 - lifetime jitter, not a secret
        )
        body = token_response(issued, endpoint_version=endpoint_version, now=now)
        return TokenResult(body, tenant.id, client.app.app_id, issued.claims, credential)


def _require_grant(form: Mapping[str, str]) -> None:
    grant_type = form.get("grant_type")
    if not grant_type:
        raise refuse(900144, parameter="grant_type")
    if grant_type != GRANT_TYPE:
        raise refuse(70003, grant_type=grant_type)


@dataclass(frozen=True, slots=True)
class Target:
    """What the client asked a token for: v1's ``resource`` or a ``scope`` (``.../.default``)."""

    resource: str | None
    scope: str | None


def read_target(form: Mapping[str, str], version: Literal[1, 2]) -> Target:
    """The target parameter, which must be present before anything is authenticated (as Entra
    checks it); what it names is resolved after authentication."""
    if version == 1 and "scope" not in form:
        resource = form.get("resource")
        if not resource:
            raise refuse(900144, parameter="resource")
        return Target(resource=resource, scope=None)
    scope = form.get("scope")
    if not scope:
        raise refuse(900144, parameter="scope")
    return Target(resource=None, scope=scope)


def _client(tenant: TenantView, client_id: str | None) -> AppView:
    if not client_id:
        raise refuse(900144, parameter="client_id")
    client = tenant.application(client_id)
    if client is None:
        raise refuse(700016, client_id=client_id, tenant=tenant.id)
    return client


def _resolve_target(tenant: TenantView, target: Target) -> tuple[AppView, str]:
    """The resource app and the identifier the client used for it (a v1 token's ``aud``)."""
    if target.resource is not None:
        return _resource(tenant, target.resource), target.resource
    scope = target.scope or ""
    resources = set()
    for item in scope.split():
        if item in RESERVED_SCOPES:
            continue
        if not item.endswith("/.default"):
            raise refuse(1002012, scope=scope)
        resources.add(item[: -len("/.default")])
    if len(resources) != 1:
        raise refuse(700022 if resources else 1002012, scope=scope)
    resource_ref = resources.pop()
    return _resource(tenant, resource_ref), resource_ref


def _resource(tenant: TenantView, ref: str) -> AppView:
    resource = tenant.resource(ref)
    if resource is None:
        raise refuse(500011, resource=ref, tenant=tenant.id)
    return resource
