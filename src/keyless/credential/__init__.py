"""The keyless client SDK: access tokens from Entra ID or a keyless authority, authenticated with a
federated assertion (workload identity federation), for any Azure SDK client or plain httpx.

Needs only httpx (no server packages, no azure-core; azure-core's types and exceptions are used
when it is installed). Async twins live in :mod:`keyless.credential.aio`. See docs/credential.md::

    from keyless.credential import WorkloadIdentityCredential

    credential = WorkloadIdentityCredential()      # AZURE_TENANT_ID, AZURE_CLIENT_ID, source detected
    token = credential.get_token("api://blob-api/.default")
"""

from keyless.credential._config import SOURCE_NAMES
from keyless.credential._credential import ClientAssertionCredential, WorkloadIdentityCredential
from keyless.credential._errors import (
    AssertionSourceError,
    ClientAuthenticationError,
    CredentialUnavailableError,
)
from keyless.credential._httpx_auth import KeylessAuth
from keyless.credential._jwt import decode_unverified
from keyless.credential._retry import RetryPolicy
from keyless.credential._sources import (
    DEFAULT_AUDIENCE,
    AssertionSource,
    CallableAssertion,
    EnvironmentAssertion,
    GitHubActionsAssertion,
    MetadataServerAssertion,
    TokenFileAssertion,
)
from keyless.credential._token_client import DEFAULT_AUTHORITY
from keyless.credential._types import AccessToken, AccessTokenInfo, TokenRequestOptions

__all__ = [
    "DEFAULT_AUDIENCE",
    "DEFAULT_AUTHORITY",
    "SOURCE_NAMES",
    "AccessToken",
    "AccessTokenInfo",
    "AssertionSource",
    "AssertionSourceError",
    "CallableAssertion",
    "ClientAssertionCredential",
    "ClientAuthenticationError",
    "CredentialUnavailableError",
    "EnvironmentAssertion",
    "GitHubActionsAssertion",
    "KeylessAuth",
    "MetadataServerAssertion",
    "RetryPolicy",
    "TokenFileAssertion",
    "TokenRequestOptions",
    "WorkloadIdentityCredential",
    "decode_unverified",
]
