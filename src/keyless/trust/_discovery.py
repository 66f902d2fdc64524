"""OpenID Connect Discovery: fetch an issuer's provider metadata and check it belongs to that issuer.

The document lives at ``{issuer without trailing slash}/.well-known/openid-configuration``
(OIDC Discovery 1.0 §4). Its ``issuer`` must equal the issuer we asked about *exactly*, trailing
slash included (§4.3), and its ``jwks_uri`` must pass the same URL policy as every other fetch.
A ``discovery_url`` override changes only where the document is fetched from, never which issuer
it must name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keyless.errors import TransportError
from keyless.trust._fetch import JsonFetcher

__all__ = ["WELL_KNOWN_PATH", "ProviderMetadata", "discover", "discovery_url_for"]

WELL_KNOWN_PATH = "/.well-known/openid-configuration"


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of an issuer's discovery document keyless uses, plus the whole document."""

    issuer: str
    jwks_uri: str
    raw: Mapping[str, Any]


def discovery_url_for(issuer: str) -> str:
    """Where an issuer publishes its discovery document."""
    return issuer.rstrip("/") + WELL_KNOWN_PATH


def _check_issuer(document: Mapping[str, Any], expected: str, url: str) -> None:
    found = document.get("issuer")
    if not isinstance(found, str):
        raise TransportError(f"discovery document at {url} has no 'issuer'", retryable=False)
    if found != expected:
        raise TransportError(
            f"discovery document at {url} names issuer {found!r}, expected exactly {expected!r}",
            retryable=False,
        )


def _jwks_uri(document: Mapping[str, Any], url: str, fetcher: JsonFetcher) -> str:
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri:
        raise TransportError(f"discovery document at {url} has no 'jwks_uri'", retryable=False)
    fetcher.check_url(jwks_uri)
    return jwks_uri


async def discover(
    issuer: str, fetcher: JsonFetcher, *, discovery_url: str | None = None
) -> ProviderMetadata:
    """Fetch and check ``issuer``'s provider metadata; problems raise ``TransportError``."""
    url = discovery_url or discovery_url_for(issuer)
    document = await fetcher.get(url)
    _check_issuer(document, issuer, url)
    jwks_uri = _jwks_uri(document, url, fetcher)
    return ProviderMetadata(issuer=issuer, jwks_uri=jwks_uri, raw=document)
