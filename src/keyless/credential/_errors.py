"""The credential's exceptions: keyless errors that are also azure-core's when it is installed.

::

    KeylessError (keyless.errors)          azure.core.exceptions.ClientAuthenticationError
      +-- ClientAuthenticationError  <------+   (when azure-core is importable)
            code "client_authentication"    the token endpoint refused or could not be reached
            +-- CredentialUnavailableError  code "credential_unavailable": not configured here
            +-- AssertionSourceError        code "assertion_source": no usable assertion

Every instance carries what Entra ID (or keyless) said, parsed: ``error``, ``error_description``,
``aadsts`` (the AADSTS number or ``None``), ``error_codes``, ``trace_id``, ``correlation_id``,
``timestamp``, ``status`` (HTTP, or ``None`` when no response came back), plus ``retryable``
and ``retry_after`` (seconds, from ``Retry-After``), and ``source`` (what produced the assertion,
for source errors). Messages never contain a token or an assertion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from keyless.errors import KeylessError

__all__ = ["AssertionSourceError", "ClientAuthenticationError", "CredentialUnavailableError"]

if TYPE_CHECKING:
    from azure.core.exceptions import ClientAuthenticationError as _AuthBase
else:
    try:
        from azure.core.exceptions import ClientAuthenticationError as _AuthBase
    except ImportError:
        _AuthBase = Exception


class ClientAuthenticationError(KeylessError, _AuthBase):
    """Getting an access token failed. An ``azure.core.exceptions.ClientAuthenticationError`` too
    when azure-core is installed, so Azure SDK clients and their callers handle it as usual."""

    code = "client_authentication"
    # azure-core's HttpResponseError types ``error`` as its parsed OData body; here it is the OAuth code.
    error: str | None  # type: ignore[assignment]

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        error_description: str | None = None,
        aadsts: int | None = None,
        error_codes: Sequence[int] = (),
        trace_id: str | None = None,
        correlation_id: str | None = None,
        timestamp: str | None = None,
        error_uri: str | None = None,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        source: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error = error
        self.error_description = error_description
        self.aadsts = aadsts
        self.error_codes = list(error_codes)
        self.trace_id = trace_id
        self.correlation_id = correlation_id
        self.timestamp = timestamp
        self.error_uri = error_uri
        self.status = status
        self.status_code = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.source = source


class CredentialUnavailableError(ClientAuthenticationError):
    """The credential cannot work in this environment: a setting or variable is missing."""

    code = "credential_unavailable"


class AssertionSourceError(ClientAuthenticationError):
    """The assertion source gave nothing usable: a bad token file, a metadata-server or GitHub
    error, an expired token. ``source`` names the file, variable or endpoint."""

    code = "assertion_source"
