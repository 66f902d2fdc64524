"""The Google metadata-server emulator and its issuer.

An HTTP server that unmodified google-auth (and other Google clients) take for the GCE / Cloud
Run metadata server, minting ID tokens for configured service accounts with keys it publishes
through OIDC discovery, so a keyless authority can trust them like Google's. See docs/metadata.md.
"""

from keyless.metadata._app import COMMON_HEADERS, create_app
from keyless.metadata._config import (
    DEFAULT_ACCOUNT_EMAIL,
    DEFAULT_UNIQUE_ID,
    GOOGLE_ISSUER,
    IssuerMode,
    MetadataConfig,
    ServiceAccount,
    load_metadata_config,
)
from keyless.metadata._issuer import AccessToken, IdentityFormat, KeyRing, MetadataIssuer, SigningKey
from keyless.metadata._server import MetadataServer, google_mode_warning

__all__ = [
    "COMMON_HEADERS",
    "DEFAULT_ACCOUNT_EMAIL",
    "DEFAULT_UNIQUE_ID",
    "GOOGLE_ISSUER",
    "AccessToken",
    "IdentityFormat",
    "IssuerMode",
    "KeyRing",
    "MetadataConfig",
    "MetadataIssuer",
    "MetadataServer",
    "ServiceAccount",
    "SigningKey",
    "create_app",
    "google_mode_warning",
    "load_metadata_config",
]
