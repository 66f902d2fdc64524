"""The guard's verifier: a token in, an :class:`Identity` out, or a refusal with a code and a reason.

Two steps, as ``keyless.jose`` verifies: signature, then claims. First the signature: the
``alg`` must be on the allow-list and the ``iss`` trusted *before* any key is fetched; the key set
comes from the shared :class:`~keyless.trust.IssuerKeyCache` (max age, one refetch per cooldown on
an unknown ``kid``, single flight, last good set while the issuer is down). Then the claims
(``CLAIM_STEPS``, shared with ``explain``), against a clock passed in (``now=``). A token that
passed is remembered (by its SHA-256, until its ``exp``) so that the next request with it costs a
hash and a dict lookup.

Imports nothing from the server packages: usable from any asyncio program.
"""

from __future__ import annotations

import hashlib
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from keyless.errors import MalformedToken, TransportError, VerificationError
from keyless.guard import _claim_steps
from keyless.guard._cache import TokenCache
from keyless.guard._checks import check_algorithm, check_size
from keyless.guard._claim_steps import ClaimInput, ClaimRun, ClaimStep, key_names_issuer
from keyless.guard._config import GuardConfig, load_config
from keyless.guard._identity import Identity, identity_from_claims
from keyless.guard._issuers import IssuerRegistry, KeySource, TrustedIssuer
from keyless.jose import KeySet, PublicKey, parse_compact, verify_signature
from keyless.trust import IssuerKeyCache, RemoteKeySet

__all__ = ["IssuerUnavailable", "Verifier", "http_client_for"]


_INF = float("inf")
_monotonic = time.monotonic
_sha256 = hashlib.sha256
# How long a key set is used without asking the key cache again (its max age and refetch-on-
# unknown-kid still apply: an unknown kid always asks). Saves the cache's awaits on every request.
KEYS_RECHECK = 1.0


class IssuerUnavailable(VerificationError):
    """The issuer's keys cannot be fetched and none were fetched before: not the caller's fault (503)."""

    code = "issuer_unavailable"


def ssl_context_for(ca_bundle: Path | None) -> ssl.SSLContext | bool:
    """The usual trust store, plus ``ca_bundle`` (a local authority's CA) when given."""
    if ca_bundle is None:
        return True
    try:
        import certifi

        context = ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpx
        context = ssl.create_default_context()
    context.load_verify_locations(cafile=str(ca_bundle))
    return context


def http_client_for(config: GuardConfig) -> httpx.AsyncClient:
    """The client the guard fetches discovery documents and key sets with."""
    return httpx.AsyncClient(
        verify=ssl_context_for(config.ca_bundle),
        follow_redirects=False,
        timeout=config.keys_timeout,
        trust_env=False,
    )


class Verifier:
    """Verifies bearer tokens against a :class:`GuardConfig`; an async context manager.

    ``key_cache`` shares an :class:`IssuerKeyCache` (the verifier then leaves it open); by default
    the verifier makes its own from the configuration. ``clock`` gives wall-clock seconds.
    """

    def __init__(
        self,
        config: GuardConfig,
        *,
        key_cache: IssuerKeyCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.issuers = IssuerRegistry(config)
        self._clock = clock
        self.algorithms = frozenset(config.algorithms)
        self._leeway = config.leeway
        self._max_size = config.max_token_size
        self._required = config.required_claims
        self._client: httpx.AsyncClient | None = None
        if key_cache is None:
            self._client = http_client_for(config)
            key_cache = IssuerKeyCache(
                client=self._client,
                max_age=config.keys_max_age,
                min_refresh_interval=config.keys_refresh_cooldown,
                timeout=config.keys_timeout,
                allow_http_loopback=config.allow_http_loopback_issuers,
            )
        self.key_cache = key_cache
        self._remotes: dict[KeySource, RemoteKeySet] = {}
        # The key set last served per source, and until when to use it without asking the cache.
        self._fresh: dict[KeySource, tuple[KeySet, float]] = {}
        self.token_cache = TokenCache(config.token_cache_size) if config.token_cache_size > 0 else None
        # The claim steps that apply, per (issuer has a tenant, key names its issuer).
        self._applicable: dict[tuple[bool, bool], tuple[tuple[ClaimStep, ...], tuple[ClaimRun, ...]]] = {}

    def now(self) -> float:
        """The verifier's clock (wall-clock seconds)."""
        return self._clock()

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Verifier:
        return cls(load_config(path), **kwargs)

    # -- the whole check ---------------------------------------------------------------------------

    async def verify(self, token: str, *, now: float | None = None) -> Identity:
        """The identity ``token`` proves; otherwise a ``VerificationError`` (``code``, ``reason``).

        ``IssuerUnavailable`` means the issuer could not be reached and no keys were cached.
        """
        if now is None:
            now = self._clock()
        if type(token) is not str or len(token) > self._max_size:
            check_size(token, self._max_size)
        cache = self.token_cache
        if cache is not None:
            try:
                digest = _sha256(token.encode()).digest()
            except UnicodeEncodeError:
                raise MalformedToken("token is not valid text") from None
            # TokenCache.lookup, inline: a hit is then one hash and one dict lookup, no call.
            entry = cache.entries.get(digest)
            if entry is not None and entry[0] <= now < entry[1]:
                cache.entries.move_to_end(digest)
                cache.hits += 1
                return entry[2]
            cache.lookup(digest, now)  # the miss: drops an expired entry, counts it
        parsed = parse_compact(token, max_size=self._max_size)
        alg = parsed.alg
        if alg not in self.algorithms:
            check_algorithm(alg, self.algorithms)
        payload = parsed.payload
        trusted = self.issuers.resolve(payload)
        kid = parsed.kid
        fresh = self._fresh.get(trusted.keys)
        if fresh is not None and (kid is None or fresh[0].has_kid(kid)) and _monotonic() < fresh[1]:
            keys = fresh[0]
        else:
            keys = await self.keys_for(trusted, kid)
        key = verify_signature(parsed, keys, algorithms=self.algorithms)
        identity = self.check_claims(payload, trusted, key, now)
        if cache is not None:
            not_before = payload.get("nbf")
            valid_from = -_INF
            if type(not_before) is int or type(not_before) is float:
                valid_from = not_before - self._leeway
            cache.store(digest, identity, valid_from)
        return identity

    async def keys_for(self, trusted: TrustedIssuer, kid: str | None) -> KeySet:
        """The trusted issuer's key set (refetched once per cooldown if ``kid`` is not in it)."""
        source = trusted.keys
        remote = self._remotes.get(source)
        if remote is None:
            remote = self.key_cache.remote(source.issuer, discovery_url=source.discovery_url)
            self._remotes[source] = remote
        try:
            keys = await remote.get_for_kid(kid)
        except TransportError as exc:
            raise IssuerUnavailable(f"the keys of {trusted.issuer} cannot be fetched: {exc}") from None
        self._fresh[source] = (keys, _monotonic() + KEYS_RECHECK)
        return keys

    def check_claims(self, payload: Any, trusted: TrustedIssuer, key: PublicKey, now: float) -> Identity:
        """Step two, after the signature: the claims, in the order of ``_checks``.

        The common case is decided inline: ``exp`` (and ``nbf``, if any) numbers inside the window,
        one text ``aud`` of this service, a text ``sub``, and no tenant, key-issuer or required-claim
        rule to apply. Anything else, and so every refusal, goes through the checks one by one, so
        that a refusal names the first check that fails. (A test pins that both agree.)
        """
        get = payload.get
        expires = get("exp")
        not_before = get("nbf")
        aud = get("aud")
        sub = get("sub")
        leeway = self._leeway
        if (
            (type(expires) is int or type(expires) is float)
            and now <= expires + leeway
            and (
                not_before is None
                or ((type(not_before) is int or type(not_before) is float) and now + leeway >= not_before)
            )
            and type(aud) is str
            and aud in trusted.audiences
            and type(sub) is str
            and sub
            and trusted.tenant_id is None
            and not key.extra
            and not self._required
        ):
            return identity_from_claims(payload, kind=trusted.kind, expires=expires)
        return self.check_claims_in_order(payload, trusted, key, now)

    def check_claims_in_order(
        self, payload: Any, trusted: TrustedIssuer, key: PublicKey, now: float
    ) -> Identity:
        """Every claim check, one after another in the order of ``CLAIM_STEPS``.

        Which steps apply depends only on the issuer, the key and the configuration, so that is
        decided once per kind of (issuer, key), and again if ``CLAIM_STEPS`` is replaced."""
        checked = ClaimInput(payload, trusted, key, now, self._leeway, trusted.audiences, self._required)
        steps = _claim_steps.CLAIM_STEPS
        kind = (trusted.tenant_id is not None, key_names_issuer(key))
        cached = self._applicable.get(kind)
        if cached is None or cached[0] is not steps:
            cached = (steps, tuple(s.run for s in steps if s.applies(checked)))
            self._applicable[kind] = cached
        for run in cached[1]:
            run(checked)
        return identity_from_claims(payload, kind=trusted.kind, expires=checked.expires)

    # -- life cycle --------------------------------------------------------------------------------

    async def warm(self) -> dict[str, str | None]:
        """Fetch the keys of every exactly-configured issuer now; issuer -> problem (``None``: fine)."""
        results: dict[str, str | None] = {}
        for name in self.issuers.trusted():
            try:
                trusted = self.issuers.resolve({"iss": name})
            except VerificationError:
                continue  # templated (multi-tenant) issuers are fetched on first use
            try:
                await self.keys_for(trusted, None)
                results[name] = None
            except IssuerUnavailable as exc:
                results[name] = exc.reason
        return results

    async def aclose(self) -> None:
        if self._client is not None:
            await self.key_cache.aclose()
            await self._client.aclose()

    async def __aenter__(self) -> Verifier:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
