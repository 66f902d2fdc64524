"""``explain``: every check reported, failures not hiding later checks; and the ``keyless guard``
commands (explain's exit codes and JSON, check, run's refusals) through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests._support.oidc_issuer import TestIssuer
from tests.guard.conftest import AUDIENCE, guard_config
from typer.testing import CliRunner

from keyless.cli._guard import app
from keyless.guard import Explanation, Verifier, explain
from keyless.jose import b64url

runner = CliRunner()
POLICY = {"anonymous": ["/healthz"], "rules": [{"path": "/blobs/**", "any_of": ["Blob.Read"]}]}


def statuses(explanation: Explanation) -> dict[str, str]:
    return {step.name: step.status for step in explanation.steps}


async def test_a_good_token_passes_every_step(issuer: TestIssuer) -> None:
    async with Verifier(guard_config(issuer, policy=POLICY)) as verifier:
        result = await explain(issuer.mint(aud=AUDIENCE, roles=["Blob.Read"]), verifier, path="/blobs/a")
    assert result.passed
    assert result.identity is not None and result.identity.roles == ("Blob.Read",)
    assert set(statuses(result).values()) == {"pass"}
    names = [step.name for step in result.steps]
    assert names[:6] == ["size", "structure", "algorithm", "issuer", "keys", "signature"]
    assert names[-1] == "policy"


async def test_every_failing_claim_is_reported_not_only_the_first(issuer: TestIssuer) -> None:
    token = issuer.mint(aud="api://other", now=1_000_000, lifetime=60)
    async with Verifier(guard_config(issuer, required_claims=["oid"])) as verifier:
        result = await explain(token, verifier)
    found = statuses(result)
    assert not result.passed
    assert (found["signature"], found["expiry"], found["audience"], found["required claims"]) == (
        "pass",
        "fail",
        "fail",
        "fail",
    )
    codes = {step.name: step.code for step in result.failures}
    assert codes == {"expiry": "expired", "audience": "claim_invalid", "required claims": "claim_invalid"}


async def test_untrusted_issuer_skips_the_signature_but_still_checks_claims(verifier: Verifier) -> None:
    with TestIssuer() as stranger:
        result = await explain(stranger.mint(aud=AUDIENCE), verifier)
    found = statuses(result)
    assert (found["issuer"], found["keys"], found["signature"], found["audience"]) == (
        "fail",
        "skip",
        "skip",
        "pass",
    )
    audience = next(step for step in result.steps if step.name == "audience")
    assert "unverified" in audience.detail


async def test_a_malformed_token_is_still_read_as_far_as_possible(
    verifier: Verifier, issuer: TestIssuer
) -> None:
    header = b64url(json.dumps({"alg": "none"}).encode())
    payload = b64url(json.dumps({"iss": issuer.url, "sub": "x", "aud": AUDIENCE, "exp": 1}).encode())
    result = await explain(f"{header}.{payload}.", verifier)
    found = statuses(result)
    assert found["structure"] == "fail"
    assert found["algorithm"] == "fail"
    assert found["expiry"] == "fail"
    assert result.claims is not None and result.claims["sub"] == "x"


async def test_the_policy_step_says_what_the_token_would_be_allowed(issuer: TestIssuer) -> None:
    async with Verifier(guard_config(issuer, policy=POLICY)) as verifier:
        result = await explain(issuer.mint(aud=AUDIENCE, roles=["Other"]), verifier, path="/blobs/a")
    policy = result.steps[-1]
    assert (policy.name, policy.status, policy.code) == ("policy", "fail", "forbidden")
    assert "needs one of [Blob.Read]" in policy.detail


async def test_the_policy_step_refuses_a_path_the_gate_would_refuse(issuer: TestIssuer) -> None:
    async with Verifier(guard_config(issuer, policy=POLICY)) as verifier:
        token = issuer.mint(aud=AUDIENCE, roles=["Blob.Read"])
        result = await explain(token, verifier, path="/public/..;/blobs/a")
    policy = result.steps[-1]
    assert (policy.name, policy.status, policy.code) == ("policy", "fail", "bad_path")
    assert "refused before the policy" in policy.detail


# -- the commands ----------------------------------------------------------------------------------


def write_config(tmp_path: Path, issuer: TestIssuer, **extra: Any) -> Path:
    data = {
        "issuers": [{"kind": "oidc", "issuer": issuer.url}],
        "audiences": [AUDIENCE],
        "allow_http_loopback_issuers": True,
        "policy": POLICY,
        **extra,
    }
    path = tmp_path / "guard.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    return path


def test_explain_exits_0_for_an_accepted_token(tmp_path: Path, issuer: TestIssuer) -> None:
    config = write_config(tmp_path, issuer)
    token = issuer.mint(aud=AUDIENCE, roles=["Blob.Read"])
    result = runner.invoke(app, ["explain", token, "--config", str(config), "--path", "/blobs/a"])
    assert result.exit_code == 0, result.output
    assert "✓ signature" in result.output
    assert "accepted" in result.output


def test_explain_exits_1_and_names_the_failing_check(tmp_path: Path, issuer: TestIssuer) -> None:
    config = write_config(tmp_path, issuer)
    result = runner.invoke(app, ["explain", issuer.mint(aud="api://else"), "--config", str(config)])
    assert result.exit_code == 1
    assert "✗ audience" in result.output
    assert "refused" in result.output
    assert "claim_invalid" in result.output


def test_explain_reads_the_token_from_stdin_or_a_file_and_prints_json(
    tmp_path: Path, issuer: TestIssuer
) -> None:
    config = write_config(tmp_path, issuer)
    token = issuer.mint(aud=AUDIENCE)
    from_stdin = runner.invoke(app, ["explain", "-", "--config", str(config), "--json"], input=token + "\n")
    assert from_stdin.exit_code == 0, from_stdin.output
    document = json.loads(from_stdin.output)
    assert document["passed"] is True
    assert {step["name"] for step in document["steps"]} >= {"signature", "expiry", "audience"}
    (tmp_path / "token.txt").write_text(token)
    from_file = runner.invoke(app, ["explain", str(tmp_path / "token.txt"), "--config", str(config)])
    assert from_file.exit_code == 0, from_file.output


def test_explain_exits_2_for_configuration_problems(tmp_path: Path) -> None:
    config = tmp_path / "guard.yaml"
    config.write_text("issuers: []\nleeway: soon\n")
    result = runner.invoke(app, ["explain", "x.y.z", "--config", str(config)])
    assert result.exit_code == 2
    assert "leeway: expected a number" in result.output


def test_check_lists_what_the_configuration_trusts(tmp_path: Path, issuer: TestIssuer) -> None:
    result = runner.invoke(app, ["check", "--config", str(write_config(tmp_path, issuer))])
    assert result.exit_code == 0, result.output
    assert issuer.url in result.output
    assert "2 rule(s), default deny" in result.output


def test_check_prints_json_for_scripts(tmp_path: Path, issuer: TestIssuer) -> None:
    result = runner.invoke(app, ["check", "--config", str(write_config(tmp_path, issuer)), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["valid"] is True and shown["issuers"] == [issuer.url]
    assert shown["policy"]["default"] == "deny" and len(shown["policy"]["rules"]) == 2


def test_run_refuses_to_start_without_an_upstream(tmp_path: Path, issuer: TestIssuer) -> None:
    result = runner.invoke(app, ["run", "--config", str(write_config(tmp_path, issuer))])
    assert result.exit_code == 2
    assert "upstream" in result.output


@pytest.mark.parametrize("args", [[], ["--port", "1"]])
def test_without_a_config_the_default_command_shows_help(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "explain" in result.output


def test_explain_exits_3_when_the_issuers_keys_cannot_be_fetched(tmp_path: Path, issuer: TestIssuer) -> None:
    config = write_config(tmp_path, issuer, keys={"timeout": 1})
    token = issuer.mint(aud=AUDIENCE)
    issuer.down()
    result = runner.invoke(app, ["explain", token, "--config", str(config)])
    assert result.exit_code == 3
    assert "issuer_unavailable" in result.output
