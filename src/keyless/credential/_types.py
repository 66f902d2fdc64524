"""The token types of azure-core's ``TokenCredential`` protocol, without requiring azure-core.

When azure-core is importable its own ``AccessToken``, ``AccessTokenInfo`` and
``TokenRequestOptions`` are used, so a keyless credential is indistinguishable from an
azure-identity one to every Azure SDK client. Otherwise look-alikes with the same fields (and the
same constructor) stand in for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, TypedDict

__all__ = ["AZURE_CORE", "AccessToken", "AccessTokenInfo", "TokenRequestOptions"]


class _AccessToken(NamedTuple):
    """An access token and its expiry (Unix seconds); azure-core's ``AccessToken`` shape."""

    token: str
    expires_on: int


class _AccessTokenInfo:
    """An access token with its expiry, type and proactive-refresh time; azure-core's shape."""

    __slots__ = ("expires_on", "refresh_on", "token", "token_type")

    def __init__(
        self, token: str, expires_on: int, *, token_type: str = "Bearer", refresh_on: int | None = None
    ) -> None:
        self.token = token
        self.expires_on = expires_on
        self.token_type = token_type
        self.refresh_on = refresh_on

    def __repr__(self) -> str:
        return (
            f"AccessTokenInfo(token=<{len(self.token)} chars>, expires_on={self.expires_on}, "
            f"token_type='{self.token_type}', refresh_on={self.refresh_on})"
        )


class _TokenRequestOptions(TypedDict, total=False):
    claims: str
    tenant_id: str
    enable_cae: bool


if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

    AZURE_CORE: bool
else:
    try:
        from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

        AZURE_CORE = True
    except ImportError:
        AccessToken, AccessTokenInfo, TokenRequestOptions = (
            _AccessToken,
            _AccessTokenInfo,
            _TokenRequestOptions,
        )
        AZURE_CORE = False
