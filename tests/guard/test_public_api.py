"""keyless.guard's public surface is pinned, and its verifier imports without the server packages."""

from __future__ import annotations

import subprocess
import sys

import keyless.guard


def test_the_public_names_are_pinned() -> None:
    assert sorted(keyless.guard.__all__) == [
        "Decision",
        "Explanation",
        "ForwardAuth",
        "Gate",
        "GuardConfig",
        "GuardMiddleware",
        "GuardProxy",
        "IDENTITY_HEADERS",
        "Identity",
        "IssuerConfig",
        "IssuerUnavailable",
        "Outcome",
        "Policy",
        "Rule",
        "SNIPPET_KINDS",
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
    for name in keyless.guard.__all__:
        assert getattr(keyless.guard, name) is not None


def test_the_verifier_imports_and_runs_without_server_packages() -> None:
    blocked = [
        "starlette", "fastapi", "uvicorn", "httptools", "uvloop", "sqlalchemy", "alembic", "pydantic", "typer", "rich",
    ]  # fmt: skip
    code = (
        "import sys, asyncio\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "from keyless.guard import Verifier, GuardConfig, IssuerConfig, GuardMiddleware, GuardProxy, explain\n"
        "config = GuardConfig(issuers=(IssuerConfig('google'),), audiences=('https://svc.run.app',))\n"
        "verifier = Verifier(config)\n"
        "try:\n"
        "    asyncio.run(verifier.verify('not.a.token'))\n"
        "except Exception as exc:\n"
        "    assert exc.code == 'malformed', exc\n"
        "asyncio.run(verifier.aclose())\n"
        "try:\n"
        "    from keyless.guard import require_roles\n"
        "except ImportError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('the FastAPI dependencies need starlette')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_refusal_code_of_the_guard_is_distinct() -> None:
    from keyless.errors import VerificationError

    def tree(cls: type[VerificationError]) -> list[type[VerificationError]]:
        return [cls, *(found for sub in cls.__subclasses__() for found in tree(sub))]

    codes = [cls.code for cls in tree(VerificationError)]
    assert keyless.guard.IssuerUnavailable.code == "issuer_unavailable"
    assert "issuer_unavailable" in codes
    assert len(codes) == len(set(codes))
