"""The guard: verify bearer tokens from trusted issuers and decide who may call what.

* :class:`Verifier` (``verify(token) -> Identity``), :class:`GuardConfig` / :func:`load_config`,
  :class:`Policy` / :func:`load_policy`, :func:`explain`: no server packages needed;
* :class:`GuardMiddleware` (pure ASGI) and :class:`GuardProxy` (``keyless guard``; needs httptools);
* :func:`require_roles`, :func:`require_scopes`, :func:`current_identity`: FastAPI dependencies,
  imported on first use (they need Starlette).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keyless.guard._authz import ForwardAuth, forward_auth_from_file
from keyless.guard._cache import TokenCache
from keyless.guard._config import GuardConfig, IssuerConfig, config_from_mapping, load_config
from keyless.guard._explain import Explanation, Step, explain
from keyless.guard._gate import Gate, Outcome, bearer_token
from keyless.guard._identity import Identity
from keyless.guard._middleware import GuardMiddleware
from keyless.guard._policy import Decision, Policy, Rule, load_policy, policy_from_mapping
from keyless.guard._proxy import IDENTITY_HEADERS, GuardProxy, identity_headers, proxy_from_file
from keyless.guard._snippets import KINDS as SNIPPET_KINDS
from keyless.guard._snippets import snippet
from keyless.guard._verifier import IssuerUnavailable, Verifier

if TYPE_CHECKING:
    from keyless.guard._dependencies import (
        current_identity,
        optional_identity,
        require_roles,
        require_scopes,
    )

__all__ = [
    "IDENTITY_HEADERS",
    "SNIPPET_KINDS",
    "Decision",
    "Explanation",
    "ForwardAuth",
    "Gate",
    "GuardConfig",
    "GuardMiddleware",
    "GuardProxy",
    "Identity",
    "IssuerConfig",
    "IssuerUnavailable",
    "Outcome",
    "Policy",
    "Rule",
    "Step",
    "TokenCache",
    "Verifier",
    "bearer_token",
    "config_from_mapping",
    "current_identity",
    "explain",
    "forward_auth_from_file",
    "identity_headers",
    "load_config",
    "load_policy",
    "optional_identity",
    "policy_from_mapping",
    "proxy_from_file",
    "require_roles",
    "require_scopes",
    "snippet",
]

_DEPENDENCIES = ("current_identity", "optional_identity", "require_roles", "require_scopes")


def __getattr__(name: str) -> Any:
    if name in _DEPENDENCIES:
        from keyless.guard import _dependencies

        return getattr(_dependencies, name)
    raise AttributeError(f"module 'keyless.guard' has no attribute {name!r}")
