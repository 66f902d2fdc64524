"""``keyless jwt decode`` (says it verified nothing) and ``keyless jwt verify`` (discovery, keys,
signature, issuer, audience, time window; exit 0 valid, 1 invalid, 3 issuer unreachable)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tests._support.oidc_issuer import TestIssuer
from tests.cli.conftest import Cli


def test_decode_shows_header_claims_and_human_times_and_says_nothing_was_verified(
    cli: Cli, issuer: TestIssuer
) -> None:
    token = issuer.mint(sub="repo:o/r:ref:refs/heads/main", now=time.time() - 120, lifetime=600)
    result = cli("jwt", "decode", token)
    assert result.exit_code == 0
    assert "NOT verified" in result.stdout
    assert "sub: repo:o/r:ref:refs/heads/main" in result.stdout
    assert re.search(r"\(2m( \d+s)? ago\)", result.stdout)
    assert re.search(r"\((7m \d+s|8m) from now\)", result.stdout)


def test_decode_reads_stdin_and_files_and_prints_json(cli: Cli, issuer: TestIssuer, tmp_path: Path) -> None:
    token = issuer.mint(sub="sa-1")
    from_stdin = json.loads(cli("jwt", "decode", "-", "--json", input=token).stdout)
    assert from_stdin["verified"] is False and from_stdin["claims"]["sub"] == "sa-1"
    assert set(from_stdin["times"]) == {"iat", "nbf", "exp"}
    (tmp_path / "t.jwt").write_text(token + "\n")
    from_file = json.loads(cli("jwt", "decode", str(tmp_path / "t.jwt"), "--json").stdout)
    assert (from_file["header"], from_file["claims"]) == (from_stdin["header"], from_stdin["claims"])


def test_decode_of_garbage_fails_clearly(cli: Cli) -> None:
    result = cli("jwt", "decode", "aaa.bbb.ccc")
    assert result.exit_code == 1
    assert "not base64url-encoded JSON" in result.stderr and "Traceback" not in result.stderr


def test_verify_accepts_a_good_token_through_discovery(cli: Cli, issuer: TestIssuer) -> None:
    token = issuer.mint(sub="sa-1", aud="api://AzureADTokenExchange")
    result = cli("jwt", "verify", token, "--issuer", issuer.url, "--audience", "api://AzureADTokenExchange")
    assert result.exit_code == 0, result.stdout
    assert "valid" in result.stdout.splitlines()[-1]
    as_json = json.loads(cli("jwt", "verify", token, "--issuer", issuer.url, "--json").stdout)
    assert as_json["valid"] is True
    assert [s["name"] for s in as_json["steps"]] == ["issuer", "signature", "time window"]


def test_verify_refuses_wrong_audience_issuer_and_expiry_with_exit_1(cli: Cli, issuer: TestIssuer) -> None:
    token = issuer.mint(sub="sa-1", aud="https://other.example")
    wrong_aud = cli(
        "jwt", "verify", token, "--issuer", issuer.url, "--audience", "api://AzureADTokenExchange"
    )
    assert wrong_aud.exit_code == 1 and "does not include" in wrong_aud.stdout
    wrong_iss = json.loads(cli("jwt", "verify", token, "--issuer", issuer.url + "/", "--json").stdout)
    assert wrong_iss["valid"] is False
    assert "trailing slash" in wrong_iss["steps"][0]["detail"]
    expired = issuer.mint(sub="sa-1", now=time.time() - 3600, lifetime=60)
    late = cli("jwt", "verify", expired, "--issuer", issuer.url, "--jwks", issuer.jwks_uri)
    assert late.exit_code == 1 and "expired" in late.stdout


def test_verify_with_an_unreachable_issuer_exits_3(cli: Cli, issuer: TestIssuer) -> None:
    token = issuer.mint(sub="sa-1")
    result = cli("jwt", "verify", token, "--issuer", "http://127.0.0.1:9")
    assert result.exit_code == 3
    assert "could not be fetched" in result.stdout and "127.0.0.1:9" in result.stderr


def test_verify_against_an_issuer_that_answers_with_a_mismatch_exits_1_not_3(
    cli: Cli, issuer: TestIssuer
) -> None:
    """An issuer that answers is reachable: a discovery document naming another issuer, or a key
    set without the token's key, is a verdict (1), not "unreachable" (3)."""
    token = issuer.mint(sub="sa-1")
    issuer.patch_metadata(issuer="https://elsewhere.example")
    try:
        other = cli("jwt", "verify", token, "--issuer", issuer.url)
    finally:
        issuer.patch_metadata(issuer=issuer.url)
    assert other.exit_code == 1 and "names issuer 'https://elsewhere.example'" in other.stdout
    issuer.rotate()
    unknown_key = cli("jwt", "verify", token, "--issuer", issuer.url)
    assert unknown_key.exit_code == 1 and "no key with kid" in unknown_key.stdout
