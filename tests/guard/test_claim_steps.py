"""The verifier's ordered claim checks and ``explain`` run one tuple of named steps."""

from __future__ import annotations

import pytest
from tests._support.oidc_issuer import TestIssuer
from tests.guard.conftest import AUDIENCE, guard_config

from keyless.errors import ClaimError
from keyless.guard import Verifier, _claim_steps, explain
from keyless.guard._claim_steps import CLAIM_STEPS, ClaimInput, ClaimStep
from keyless.jose import parse_compact


def test_the_steps_are_named_in_the_documented_order() -> None:
    assert [s.name for s in CLAIM_STEPS] == [
        "key issuer",
        "expiry",
        "not before",
        "audience",
        "tenant",
        "subject",
        "required claims",
    ]


async def test_a_step_added_to_the_tuple_is_run_by_the_verifier_and_by_explain(
    issuer: TestIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_interns(c: ClaimInput) -> None:
        if c.payload.get("sub") == "intern":
            raise ClaimError("sub", "interns may not call this service")

    extra = ClaimStep("no interns", lambda c: True, no_interns)
    monkeypatch.setattr(_claim_steps, "CLAIM_STEPS", (*CLAIM_STEPS, extra))
    token = issuer.mint(aud=AUDIENCE, sub="intern")
    async with Verifier(guard_config(issuer)) as verifier:
        payload = parse_compact(token).payload
        trusted = verifier.issuers.resolve(payload)
        keys = await verifier.keys_for(trusted, parse_compact(token).kid)
        with pytest.raises(ClaimError, match="interns may not"):
            verifier.check_claims_in_order(payload, trusted, next(iter(keys)), verifier.now())
        explained = await explain(token, verifier)
    failing = [s.name for s in explained.steps if s.status == "fail"]
    assert failing == ["no interns"]
