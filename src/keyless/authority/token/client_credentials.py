"""The client_credentials grant: every check of the token endpoint, in order, top to bottom.

1. tenant (GUID or domain; not /common)          -> 900023, 90002, 9001023
2. grant_type                                     -> 900144, 70003
3. client_id (form or HTTP Basic) and the app     -> 900144, 9002313, 700016
4. client authentication                          -> see _client_auth
5. target resource (v2 ``scope``, v1 ``resource``) -> 900144, 1002012, 700022, 500011
6. roles (assignment required?)                    -> 501051
7. mint the token for the resource's token version
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from keyless.authority.directory.snapshot import AppView, Directory, TenantView
from keyless.authority.token.aadsts import refuse
from keyless.authority.token.client_auth import ClientAuthenticator, Presented
from keyless.authority.token.minting import mint_access_token, token_response

__all__ = ["TokenRequest", "TokenService", "resolve_tenant"]

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
MULTI_TENANT = frozenset({"common", "organizations", "consumers"})
RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})


@dataclass(frozen=True, slots=True)
class TokenRequest:
    tenant: str
    endpoint_version: Literal[1, 2]
    form: Mapping[str, str]
    basic: tuple[str, str] | None  # (client_id, secret) from an Authorization: Basic header
    origins: frozenset[str]  # scheme://host:port the server is reachable by, for assertion audiences


@dataclass(frozen=True, slots=True)
class TokenResult:
    body: dict[str, Any]
    tenant_id: str
    client_id: str
    claims: Mapping[str, Any]


def is_tenant_ref(ref: str) -> bool:
    return bool(_GUID.match(ref) or _DOMAIN.match(ref)) or ref.lower() in MULTI_TENANT


def resolve_tenant(directory: Directory, ref: str) -> TenantView:
    """The tenant a URL names, by GUID or domain (case-insensitive)."""
    if not is_tenant_ref(ref):
        raise refuse(900023, tenant=ref)
    if ref.lower() in MULTI_TENANT:
        raise refuse(9001023)
    tenant = directory.tenant(ref)
    if tenant is None:
        raise refuse(90002, tenant=ref)
    return tenant


class TokenService:
    def __init__(
        self,
        *,
        directory: Callable[[], Directory],
        authenticator: ClientAuthenticator,
        base_url: str,
        lifetime: tuple[int, int],
        clock: Callable[[], float],
    ) -> None:
        self._directory = directory
        self._auth = authenticator
        self._base_url = base_url
        self._lifetime = lifetime
        self._clock = clock

    async def issue(self, request: TokenRequest) -> TokenResult:
        tenant = resolve_tenant(self._directory(), request.tenant)
        form = request.form
        _require_grant(form)
        _require_target(form, request.endpoint_version)
        client = _client(tenant, form, request.basic)
        presented = Presented(
            client_secret=request.basic[1] if request.basic else form.get("client_secret"),
            client_assertion=form.get("client_assertion"),
            client_assertion_type=form.get("client_assertion_type"),
            origins=request.origins | {self._base_url},
        )
        if request.basic and form.get("client_secret") is not None:
            raise refuse(9002313, detail="The client secret was sent both in the body and in the header.")
        client_auth = await self._auth.authenticate(tenant, client, presented)
        resource, requested = _target(tenant, form, request.endpoint_version)
        roles = tenant.roles(client.app.service_principal_id, resource.app.service_principal_id)
        if resource.app.app_role_assignment_required and not roles:
            raise refuse(
                501051,
                client_id=client.app.app_id,
                client_name=client.app.display_name,
                resource=resource.app.app_id,
                resource_name=resource.app.display_name,
            )
        return self._mint(tenant, client, resource, requested, roles, client_auth, request.endpoint_version)

    def _mint(
        self,
        tenant: TenantView,
        client: AppView,
        resource: AppView,
        requested: str,
        roles: tuple[str, ...],
        client_auth: Literal["1", "2"],
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
            client_auth=client_auth,
            now=now,
            lifetime=random.randint(low, high),  # noqa: S311 - lifetime jitter, not a secret
        )
        body = token_response(issued, endpoint_version=endpoint_version, now=now)
        return TokenResult(body, tenant.id, client.app.app_id, issued.claims)


def _require_grant(form: Mapping[str, str]) -> None:
    grant_type = form.get("grant_type")
    if not grant_type:
        raise refuse(900144, parameter="grant_type")
    if grant_type != "client_credentials":
        raise refuse(70003, grant_type=grant_type)


def _require_target(form: Mapping[str, str], version: Literal[1, 2]) -> None:
    """The target parameter must be present before anything is authenticated (as Entra checks it)."""
    if version == 1 and "scope" not in form:
        if not form.get("resource"):
            raise refuse(900144, parameter="resource")
    elif not form.get("scope"):
        raise refuse(900144, parameter="scope")


def _client(tenant: TenantView, form: Mapping[str, str], basic: tuple[str, str] | None) -> AppView:
    client_id = form.get("client_id")
    if basic is not None:
        if client_id is not None and client_id != basic[0]:
            raise refuse(9002313, detail="client_id in the body differs from the one in the header.")
        client_id = basic[0]
    if not client_id:
        raise refuse(900144, parameter="client_id")
    client = tenant.application(client_id)
    if client is None:
        raise refuse(700016, client_id=client_id, tenant=tenant.id)
    return client


def _target(tenant: TenantView, form: Mapping[str, str], version: Literal[1, 2]) -> tuple[AppView, str]:
    """The resource app and the identifier the client used for it (a v1 token's ``aud``)."""
    if version == 1 and "scope" not in form:
        resource_ref = form.get("resource")
        if not resource_ref:
            raise refuse(900144, parameter="resource")
        return _resource(tenant, resource_ref), resource_ref
    scope = form.get("scope")
    if not scope:
        raise refuse(900144, parameter="scope")
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
