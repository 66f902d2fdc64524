"""Which issuers the guard trusts: map a token's ``iss`` to a trusted issuer and where its keys are.

* ``oidc`` and ``google``: the ``iss`` must equal the configured issuer exactly (Google's legacy
  ``accounts.google.com`` too); keys through OIDC discovery.
* ``entra`` and ``keyless``: each configured tenant has a v1 issuer (``{v1_instance}/{tid}/``) and
  a v2 issuer (``{instance}/{tid}/v2.0``), each with its own key set. An issuer of the same shape
  naming another tenant is refused as ``ClaimError("tid")``.
* ``entra`` with ``multi_tenant``: keys come from ``/common``, whose discovery document names the
  templated issuer ``{instance}/{tenantid}/v2.0``; the tenant in ``iss`` must be on the allow-list
  (``tenants``), and a key's own templated ``issuer`` member must match after substituting it.

The registry is called before any key is fetched, so an untrusted issuer never causes traffic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keyless.errors import ClaimError, ConfigurationError
from keyless.guard._checks import show as _show
from keyless.guard._config import GOOGLE_ISSUER, GuardConfig, IssuerConfig
from keyless.jose import PublicKey

__all__ = [
    "IssuerRegistry",
    "KeySource",
    "TrustedIssuer",
    "audience_set",
    "check_key_issuer",
    "check_tenant",
]

TEMPLATE = "{tenantid}"
_GUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
LEGACY_GOOGLE_ISSUER = "accounts.google.com"


@dataclass(frozen=True, slots=True, eq=False)  # compared by identity: a cheap dict key per request
class KeySource:
    """Where a key set comes from: the issuer it is registered under (maybe templated) and discovery."""

    issuer: str
    discovery_url: str | None = None


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """A trusted ``iss`` value with everything needed to check tokens that carry it."""

    config: IssuerConfig
    issuer: str
    keys: KeySource
    audiences: frozenset[str]
    tenant_id: str | None = None
    version: int | None = None
    # Values a signing key's own ``issuer`` member may take (after ``{tenantid}`` is substituted).
    key_issuers: frozenset[str] = frozenset()
    kind: str = field(init=False, compare=False)  # config.kind, kept at hand for every request

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", self.config.kind)


def audience_set(audiences: Iterable[str]) -> frozenset[str]:
    """The accepted ``aud`` values: URLs are accepted with and without one trailing slash."""
    found: set[str] = set()
    for audience in audiences:
        found.add(audience)
        if "://" in audience:
            found.add(audience.rstrip("/"))
            found.add(audience.rstrip("/") + "/")
    return frozenset(found)


def _bases(config: IssuerConfig) -> tuple[str, str]:
    """The v1 and v2 issuer prefixes of an Entra-shaped family."""
    if config.kind == "keyless":
        return config.url or "", config.url or ""
    return config.v1_instance, config.instance


def _tenant_issuers(config: IssuerConfig, tid: str) -> dict[int, str]:
    v1_base, base = _bases(config)
    return {1: f"{v1_base}/{tid}/", 2: f"{base}/{tid}/v2.0"}


def _shapes(config: IssuerConfig) -> list[tuple[int, re.Pattern[str]]]:
    """Regular expressions for this family's v1 and v2 issuers, capturing the tenant."""
    v1_base, base = (re.escape(b) for b in _bases(config))
    shapes = {1: re.compile(f"{v1_base}/({_GUID})/"), 2: re.compile(f"{base}/({_GUID})/v2\\.0")}
    return [(v, shapes[v]) for v in config.versions]


class IssuerRegistry:
    """Resolves a token's ``iss`` (and ``tid``) to a :class:`TrustedIssuer`, or refuses it."""

    def __init__(self, config: GuardConfig) -> None:
        self._exact: dict[str, TrustedIssuer] = {}
        self._families: list[tuple[IssuerConfig, int, re.Pattern[str], frozenset[str]]] = []
        self._multi: dict[tuple[int, int, str], TrustedIssuer] = {}
        problems: list[str] = []
        for config_issuer in config.issuers:
            audiences = audience_set(
                config_issuer.audiences if config_issuer.audiences is not None else config.audiences
            )
            for trusted in self._expand(config_issuer, audiences):
                if trusted.issuer in self._exact:
                    problems.append(f"issuer {trusted.issuer} is configured more than once")
                self._exact[trusted.issuer] = trusted
            if config_issuer.kind in ("entra", "keyless"):
                for version, shape in _shapes(config_issuer):
                    self._families.append((config_issuer, version, shape, audiences))
        if problems:
            raise ConfigurationError(problems)

    @staticmethod
    def _expand(config: IssuerConfig, audiences: frozenset[str]) -> list[TrustedIssuer]:
        if config.kind in ("oidc", "google"):
            issuer = config.issuer or GOOGLE_ISSUER
            source = KeySource(issuer, config.discovery_url)
            found = [TrustedIssuer(config, issuer, source, audiences, key_issuers=frozenset({issuer}))]
            if config.kind == "google" and issuer == GOOGLE_ISSUER:
                found.append(TrustedIssuer(config, LEGACY_GOOGLE_ISSUER, source, audiences))
            return found
        if config.multi_tenant:
            return []  # resolved per token: see _resolve_family
        found = []
        for tid in config.tenants:
            issuers = _tenant_issuers(config, tid)
            for version in config.versions:
                issuer = issuers[version]
                discovery = None
                if config.kind == "entra" and version == 1:  # the v1 document lives on the v2 host
                    discovery = f"{config.instance}/{tid}/.well-known/openid-configuration"
                found.append(
                    TrustedIssuer(
                        config,
                        issuer,
                        KeySource(issuer, discovery),
                        audiences,
                        tenant_id=tid,
                        version=version,
                        key_issuers=frozenset(issuers.values()),
                    )
                )
        return found

    def resolve(self, payload: Mapping[str, Any]) -> TrustedIssuer:
        """The trusted issuer named by ``payload['iss']``; ``ClaimError('iss'|'tid')`` otherwise."""
        iss = payload.get("iss")
        found = self._exact.get(iss) if type(iss) is str else None
        if found is not None:
            return found
        if not isinstance(iss, str) or not iss:
            raise ClaimError("iss", "the token has no 'iss' claim")
        return self._resolve_family(iss)

    def _resolve_family(self, iss: str) -> TrustedIssuer:
        for config, version, shape, audiences in self._families:
            match = shape.fullmatch(iss)
            if match is None:
                continue
            tid = match.group(1).lower()
            if tid not in config.tenants:
                raise ClaimError("tid", f"tenant {tid} is not trusted here (issuer {_show(iss)})")
            if not config.multi_tenant:  # a trusted tenant, but not its exact issuer (say, upper case)
                continue
            return self._multi_tenant(config, version, tid, iss, audiences)
        raise ClaimError("iss", f"issuer {_show(iss)} is not trusted here")

    def _multi_tenant(
        self, config: IssuerConfig, version: int, tid: str, iss: str, audiences: frozenset[str]
    ) -> TrustedIssuer:
        key = (id(config), version, tid)
        found = self._multi.get(key)
        if found is None:
            template = _tenant_issuers(config, TEMPLATE)[version]
            common = (
                f"{config.instance}/common{'/v2.0' if version == 2 else ''}/.well-known/openid-configuration"
            )
            found = TrustedIssuer(
                config,
                iss,
                KeySource(template, common),
                audiences,
                tenant_id=tid,
                version=version,
                key_issuers=frozenset(_tenant_issuers(config, tid).values()),
            )
            self._multi[key] = found  # bounded by the allow-list
        return found

    def trusted(self) -> list[str]:
        """Every accepted issuer, templated ones with ``{tenantid}`` (for humans)."""
        names = list(self._exact)
        for config, version, _, _ in self._families:
            if config.multi_tenant:
                names.append(
                    _tenant_issuers(config, TEMPLATE)[version] + f" (tenants: {', '.join(config.tenants)})"
                )
        return names


def check_key_issuer(trusted: TrustedIssuer, key: PublicKey, payload: Mapping[str, Any]) -> None:
    """A key that names its issuer (Entra's JWKS does, templated) must belong to this token's issuer."""
    published = key.extra.get("issuer") if key.extra else None
    if not isinstance(published, str):
        return
    if TEMPLATE in published:
        published = published.replace(TEMPLATE, trusted.tenant_id or str(payload.get("tid", "")))
    if published != trusted.issuer and published not in trusted.key_issuers:
        raise ClaimError(
            "iss", f"the signing key belongs to issuer {_show(published)}, not {_show(trusted.issuer)}"
        )


def check_tenant(trusted: TrustedIssuer, payload: Mapping[str, Any]) -> None:
    """Entra-shaped tokens: ``tid`` must name the tenant their issuer belongs to."""
    if trusted.tenant_id is None:
        return
    tid = payload.get("tid")
    if not isinstance(tid, str):
        raise ClaimError("tid", "the token has no 'tid' claim")
    if tid.lower() != trusted.tenant_id:
        raise ClaimError("tid", f"'tid' {_show(tid)} does not match the issuer's tenant {trusted.tenant_id}")
