"""The emulator's issuer: RS256 keys with rotation, Google-shaped ID tokens, opaque access tokens,
and the cache that reuses both until they are close to expiry (as the real metadata server does).

Key ids are the 40-hex SHA-1 of each key's certificate, like Google's. A rotated-out key stays
published (JWKS and PEM map) until the last token it signed has expired, plus five minutes for
verifiers' clock skew. Rotation empties the token caches, so every token served afterwards is
signed by the new key. Everything here is thread-safe.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization

from keyless.jose import KeySet, Signer, encode_jwt, load_certificate
from keyless.metadata._config import GOOGLE_ISSUER, MetadataConfig, ServiceAccount

__all__ = ["AccessToken", "IdentityFormat", "KeyRing", "MetadataIssuer", "SigningKey"]

IdentityFormat = Literal["standard", "full"]
Clock = Callable[[], float]

VERIFIER_SKEW = 300  # seconds a retired key outlives its last token, for verifiers' clock skew
_CACHE_PRUNE_AT = 4096


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One RS256 key of the ring; ``retire_at`` is when it leaves the published set (None: current)."""

    signer: Signer
    kid: str
    created: float
    retire_at: float | None = None

    def jwk(self) -> dict[str, Any]:
        return replace(self.signer.public_key(), kid=self.kid, alg="RS256").to_jwk()

    def certificate_pem(self) -> str:
        return load_certificate(self.signer.cert_der).public_bytes(serialization.Encoding.PEM).decode("ascii")


def _new_key(now: float) -> SigningKey:
    signer = Signer.generate("RS256", common_name="keyless metadata emulator")
    kid = hashlib.sha1(signer.cert_der, usedforsecurity=False).hexdigest()
    return SigningKey(signer, kid, now)


class KeyRing:
    """The current signing key plus retired keys still published; thread-safe."""

    def __init__(self, *, publish_retired_for: float, clock: Clock = time.time) -> None:
        self._clock = clock
        self._publish_retired_for = publish_retired_for
        self._lock = threading.Lock()
        self._current = _new_key(clock())
        self._retired: list[SigningKey] = []

    @property
    def current(self) -> SigningKey:
        return self._current

    def rotate(self, now: float | None = None) -> SigningKey:
        """Switch to a fresh key; the old one stays published until its tokens have expired."""
        at = self._clock() if now is None else now
        fresh = _new_key(at)
        with self._lock:
            old = replace(self._current, retire_at=at + self._publish_retired_for)
            self._retired = [old, *self._retired]
            self._current = fresh
        return fresh

    def published(self, now: float | None = None) -> list[SigningKey]:
        """The current key first, then retired keys whose tokens may still be alive."""
        at = self._clock() if now is None else now
        with self._lock:
            self._retired = [k for k in self._retired if k.retire_at is None or k.retire_at >= at]
            return [self._current, *self._retired]

    def jwks(self, now: float | None = None) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in self.published(now)]}

    def key_set(self, now: float | None = None) -> KeySet:
        """The published keys as a :class:`keyless.jose.KeySet` (for verifying locally)."""
        return KeySet.from_jwks(self.jwks(now))

    def pem_certificates(self, now: float | None = None) -> dict[str, str]:
        """The ``{kid: PEM certificate}`` map Google serves at ``/oauth2/v1/certs``."""
        return {key.kid: key.certificate_pem() for key in self.published(now)}


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An opaque access token handed out by ``/token``; nobody can verify it, as with Google's."""

    token: str
    email: str
    scopes: tuple[str, ...]
    expires_at: float

    def expires_in(self, now: float) -> int:
        return max(0, int(self.expires_at - now))


_IdentityKey = tuple[str, str, str, bool]


class MetadataIssuer:
    """Mints the tokens the metadata endpoints serve and publishes the keys that verify them."""

    def __init__(
        self,
        config: MetadataConfig,
        *,
        base_url: str,
        clock: Clock = time.time,
        keys: KeyRing | None = None,
    ) -> None:
        self.config = config
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.keys = keys or KeyRing(publish_retired_for=config.token_lifetime + VERIFIER_SKEW, clock=clock)
        self._lock = threading.Lock()
        self._identity: dict[_IdentityKey, tuple[str, float]] = {}
        self._access: dict[tuple[str, tuple[str, ...]], AccessToken] = {}
        self._access_by_token: dict[str, AccessToken] = {}

    # -- issuer metadata -------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """The ``iss`` of minted tokens: this emulator's URL, or Google's in ``google`` mode."""
        return GOOGLE_ISSUER if self.config.issuer == "google" else self.base_url

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/.well-known/openid-configuration"

    @property
    def jwks_uri(self) -> str:
        return f"{self.base_url}/oauth2/v3/certs"

    @property
    def pem_certs_url(self) -> str:
        return f"{self.base_url}/oauth2/v1/certs"

    def discovery_document(self) -> dict[str, Any]:
        """OIDC discovery; in ``google`` mode ``issuer`` is Google's while ``jwks_uri`` stays local."""
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email"],
            "claims_supported": ["aud", "azp", "email", "email_verified", "exp", "iat", "iss", "sub"],
        }

    def jwks(self) -> dict[str, Any]:
        self._maybe_rotate()
        return self.keys.jwks(self.clock())

    def pem_certificates(self) -> dict[str, str]:
        self._maybe_rotate()
        return self.keys.pem_certificates(self.clock())

    def rotate_keys(self) -> str:
        """Start signing with a new key (the old one stays published); returns the new ``kid``."""
        fresh = self.keys.rotate(self.clock())
        with self._lock:
            self._identity.clear()
        return fresh.kid

    def _maybe_rotate(self) -> None:
        interval = self.config.key_rotation_interval
        if interval is not None and self.clock() - self.keys.current.created >= interval:
            self.rotate_keys()

    # -- ID tokens -------------------------------------------------------------------------------

    def identity_claims(
        self,
        account: ServiceAccount,
        audience: str,
        *,
        format: IdentityFormat = "standard",
        licenses: bool = False,
        now: float | None = None,
    ) -> dict[str, Any]:
        """The claims of a Google Compute Engine identity token; ``full`` adds
        ``google.compute_engine`` (licenses on request)."""
        iat = int(self.clock() if now is None else now)
        claims: dict[str, Any] = {
            "aud": audience,
            "azp": account.unique_id,
            "email": account.email,
            "email_verified": True,
            "exp": iat + self.config.token_lifetime,
            "iat": iat,
            "iss": self.issuer,
            "sub": account.unique_id,
        }
        if format == "full":
            config = self.config
            engine: dict[str, Any] = {
                "instance_creation_timestamp": config.instance_creation_timestamp,
                "instance_id": config.instance_id,
                "instance_name": config.instance_name,
                "project_id": config.project_id,
                "project_number": config.numeric_project_id,
                "zone": config.zone,
            }
            if licenses:
                engine["license_id"] = list(config.license_ids)
            claims["google"] = {"compute_engine": engine}
        return claims

    def mint_identity_token(
        self,
        account: ServiceAccount,
        audience: str,
        *,
        format: IdentityFormat = "standard",
        licenses: bool = False,
        now: float | None = None,
    ) -> str:
        """A freshly signed ID token (never cached); ``now`` backdates it, e.g. to test expiry."""
        self._maybe_rotate()
        claims = self.identity_claims(account, audience, format=format, licenses=licenses, now=now)
        key = self.keys.current
        return encode_jwt(claims, key.signer, headers={"kid": key.kid})

    def identity_token(
        self,
        account: ServiceAccount,
        audience: str,
        *,
        format: IdentityFormat = "standard",
        licenses: bool = False,
    ) -> str:
        """The ID token for these parameters, reused until fewer than ``reuse_margin`` s remain."""
        licenses = licenses and format == "full"
        cache_key = (account.email, audience, format, licenses)
        now = self.clock()
        margin = self.config.reuse_margin
        with self._lock:
            cached = self._identity.get(cache_key)
        if cached is not None and cached[1] - now > margin:
            return cached[0]
        token = self.mint_identity_token(account, audience, format=format, licenses=licenses, now=now)
        expires = int(now) + self.config.token_lifetime
        if self.config.token_lifetime > margin:
            with self._lock:
                if len(self._identity) >= _CACHE_PRUNE_AT:
                    self._identity = {k: v for k, v in self._identity.items() if v[1] - now > margin}
                self._identity[cache_key] = (token, expires)
        return token

    # -- access tokens ---------------------------------------------------------------------------

    def access_token(self, account: ServiceAccount, scopes: Sequence[str] | None = None) -> AccessToken:
        """An opaque ``ya29.`` token for the account (its own scopes unless ``scopes`` are asked for)."""
        wanted = tuple(scopes) if scopes else account.scopes
        cache_key = (account.email, tuple(sorted(wanted)))
        now = self.clock()
        margin = self.config.reuse_margin
        with self._lock:
            cached = self._access.get(cache_key)
            if cached is not None and cached.expires_at - now > margin:
                return cached
            token = AccessToken(
                "ya29." + secrets.token_urlsafe(96), account.email, wanted, now + self.config.token_lifetime
            )
            if len(self._access_by_token) >= _CACHE_PRUNE_AT:
                self._prune_access(now)
            self._access[cache_key] = token
            self._access_by_token[token.token] = token
        return token

    def access_token_info(self, token: str) -> AccessToken | None:
        """What an access token handed out here stands for (None if unknown or expired)."""
        with self._lock:
            found = self._access_by_token.get(token)
        if found is None or found.expires_at <= self.clock():
            return None
        return found

    def _prune_access(self, now: float) -> None:
        self._access_by_token = {t: a for t, a in self._access_by_token.items() if a.expires_at > now}
        self._access = {k: a for k, a in self._access.items() if a.expires_at > now}
