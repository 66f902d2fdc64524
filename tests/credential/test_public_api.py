"""keyless.credential's public surface is pinned, it imports with only the light dependencies, and
its types and errors are azure-core's when azure-core is installed."""

from __future__ import annotations

import subprocess
import sys

import azure.core.credentials
import azure.core.exceptions

import keyless.credential
import keyless.credential.aio
from keyless.credential import (
    AccessToken,
    AccessTokenInfo,
    AssertionSourceError,
    ClientAuthenticationError,
    CredentialUnavailableError,
)
from keyless.errors import KeylessError

BLOCKED = ["starlette", "fastapi", "uvicorn", "sqlalchemy", "pydantic_settings", "typer", "azure"]


def test_the_public_names_are_pinned() -> None:
    assert set(keyless.credential.__all__) == {
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
    }
    assert set(keyless.credential.aio.__all__) == {"ClientAssertionCredential", "WorkloadIdentityCredential"}
    for module in (keyless.credential, keyless.credential.aio):
        for name in module.__all__:
            assert hasattr(module, name)


def test_the_sdk_imports_without_server_packages_or_azure_core() -> None:
    code = (
        "import sys\n"
        f"for name in {BLOCKED!r}: sys.modules[name] = None\n"
        "import keyless.credential, keyless.credential.aio\n"
        "from keyless.credential import AccessToken, AccessTokenInfo, ClientAuthenticationError\n"
        "from keyless.errors import KeylessError\n"
        "assert AccessToken.__module__ == 'keyless.credential._types', AccessToken.__module__\n"
        "assert AccessToken('t', 5).expires_on == 5\n"
        "info = AccessTokenInfo('t', 5, refresh_on=3)\n"
        "assert (info.token_type, info.refresh_on) == ('Bearer', 3)\n"
        "assert ClientAuthenticationError.__mro__[1:] == (KeylessError, Exception, BaseException, object)\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules if sys.modules[m] is not None})\n"
        "assert not {'starlette', 'uvicorn', 'sqlalchemy', 'typer', 'azure', 'pydantic'} & set(loaded), loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_azure_core_types_are_used_when_it_is_installed() -> None:
    assert AccessToken is azure.core.credentials.AccessToken
    assert AccessTokenInfo is azure.core.credentials.AccessTokenInfo
    assert keyless.credential.TokenRequestOptions is azure.core.credentials.TokenRequestOptions


def test_errors_are_both_keyless_and_azure_core_errors_with_distinct_codes() -> None:
    classes = [ClientAuthenticationError, CredentialUnavailableError, AssertionSourceError]
    for cls in classes:
        assert issubclass(cls, KeylessError)
        assert issubclass(cls, azure.core.exceptions.ClientAuthenticationError)
    assert len({cls.code for cls in classes}) == len(classes)
    error = ClientAuthenticationError("refused", error="invalid_client", aadsts=700213, status=401)
    assert str(error) == "refused"
    assert (error.error, error.aadsts, error.status, error.status_code) == (
        "invalid_client",
        700213,
        401,
        401,
    )
    assert error.response is None
