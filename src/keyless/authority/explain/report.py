"""What a dry run reports: each step's verdict, each credential field compared with the token,
the fixes, and the answer the token endpoint would give."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from keyless.errors import OAuthError

__all__ = ["Comparison", "Explanation", "Fix", "Step", "Verdict"]


@dataclass(frozen=True, slots=True)
class Fix:
    summary: str
    trust_file: str | None = None  # YAML lines for the application's entry in a trust file
    az: str | None = None  # the Azure CLI command for a real Entra application
    keyless: str | None = None  # the keyless CLI command for this authority

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary, "trustFile": self.trust_file, "az": self.az, "keyless": self.keyless}


Verdict = Literal["match", "near miss", "differs"]
Field = str  # "issuer", "subject", "audience", "claims['<name>']" (an expression's clause), "condition"


@dataclass(frozen=True, slots=True)
class Step:
    """One check: ``ok`` True (passes), False (fails) or None (not checked, or for information)."""

    name: str
    ok: bool | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Comparison:
    """One field of one credential against the token: exact match, near miss (and why), or not."""

    credential: str
    field: Field  # a clause's field is "claims['<name>']"
    configured: str
    presented: str
    verdict: Verdict
    why: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "credential": self.credential,
            "field": self.field,
            "configured": self.configured,
            "presented": self.presented,
            "verdict": self.verdict,
            "why": self.why,
        }


@dataclass(frozen=True)
class Explanation:
    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    steps: tuple[Step, ...]
    comparisons: tuple[Comparison, ...] = ()
    matched: str | None = None  # the credential that matches issuer, subject and audience
    refusal: OAuthError | None = None  # what the token endpoint would answer (None: accepted)
    signature_checked: bool = False
    fixes: tuple[Fix, ...] = field(default=())
    checks: tuple[str, ...] = field(default=(), compare=False)  # the endpoint's steps that ran

    @property
    def accepted(self) -> bool:
        return self.refusal is None

    @property
    def aadsts(self) -> int | None:
        return self.refusal.aadsts if self.refusal else None

    def to_json(self) -> dict[str, Any]:
        refusal = self.refusal
        return {
            "accepted": self.accepted,
            "aadsts": self.aadsts,
            "error": refusal.error if refusal else None,
            "error_description": refusal.error_description if refusal else None,
            "detail": refusal.detail if refusal else None,
            "signatureChecked": self.signature_checked,
            "matched": self.matched,
            "header": dict(self.header),
            "claims": dict(self.claims),
            "steps": [s.to_json() for s in self.steps],
            "comparisons": [c.to_json() for c in self.comparisons],
            "fixes": [f.to_json() for f in self.fixes],
        }
