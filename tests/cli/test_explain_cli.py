"""``keyless explain``: every near-miss class with a token that exhibits it, the AADSTS code the
token endpoint would answer, the concrete fix; a real ``az`` export; live applications through the
admin API (keys fetched only for registered issuers); trust files offline."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests._support.authority_server import RunningAuthority
from tests._support.oidc_issuer import TestIssuer
from tests.cli.conftest import Cli, Names

from keyless.authority.model import FIC_AUDIENCE_DEFAULT

FIXTURES = Path(__file__).parent / "fixtures"
APP_ID = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def az_export(tmp_path: Path, *credentials: dict[str, Any]) -> Path:
    """What `az ad app federated-credential list --id APP` prints."""
    items = [
        {
            "audiences": c.get("audiences", [FIC_AUDIENCE_DEFAULT]),
            "description": None,
            "id": f"00000000-0000-4000-8000-00000000000{i}",
            "issuer": c["issuer"],
            "name": c["name"],
            "subject": c["subject"],
        }
        for i, c in enumerate(credentials)
    ]
    path = tmp_path / "fics.json"
    path.write_text(json.dumps(items, indent=2))
    return path


def explain(cli: Cli, token: str, fics: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = cli("explain", token, "--fic", str(fics), "--app", APP_ID, "--json", *extra)
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, json.loads(result.stdout)


def whys(result: dict[str, Any], field: str) -> list[str]:
    return [c["why"] for c in result["comparisons"] if c["field"] == field and c["verdict"] == "near miss"]


# Each near-miss class: (credential's issuer or None for the test issuer's, credential subject,
# token subject, token audience, expected AADSTS code, field, words of the explanation)
NEAR_MISSES = [
    pytest.param(
        None, "repo:Contoso/App:ref:refs/heads/main", "repo:contoso/app:ref:refs/heads/main", None,
        7002138, "subject", "letter case", id="case",
    ),
    pytest.param("{url}/", "sa-1", "sa-1", None, 700211, "issuer", "trailing slash", id="trailing-slash"),
    pytest.param("{url_https}", "sa-1", "sa-1", None, 700211, "issuer", "URL scheme", id="scheme"),
    pytest.param(None, "sa-1 ", "sa-1", None, 700213, "subject", "whitespace", id="whitespace"),
    pytest.param(
        None, "repo:o/r:pull-request", "repo:o/r:pull_request", None,
        700213, "subject", "'-' versus '_'", id="pull-request-vs-pull_request",
    ),
    pytest.param(
        None, "repo:o/r:ref:refs/heads/main", "repo:o/r:pull_request", None,
        700213, "subject", "pull requests of o/r", id="github-pull-request-vs-branch",
    ),
    pytest.param(
        None, "repo:o/r:ref:refs/heads/main", "repo:o/r:environment:prod", None,
        700213, "subject", "names an environment", id="github-environment-vs-branch",
    ),
    pytest.param(
        None, "repo:o/r:ref:refs/heads/main", "repo:o/r:ref:refs/tags/v1.2", None,
        700213, "subject", "tag 'v1.2' of o/r", id="github-tag-vs-branch",
    ),
    pytest.param(
        None, "repo:o/r:ref:main", "repo:o/r:ref:refs/heads/main", None,
        700213, "subject", "written in full", id="github-short-ref",
    ),
    pytest.param(
        None, "repo:o/r:environment:prod", "repository_owner_id:123:repository_id:456:environment:prod", None,
        700213, "subject", "ID-based", id="github-id-form-vs-name-form",
    ),
    pytest.param(
        None, "sa-1", "sa-1", "api://AzureADTokenExchange/", 700212, "audience", "trailing slash",
        id="audience-trailing-slash",
    ),
    pytest.param(
        None, "sa-1", "sa-1", "api://azureadtokenexchange", 700212, "audience", "letter case", id="audience-case"
    ),
]  # fmt: skip


@pytest.mark.parametrize(("fic_issuer", "fic_subject", "sub", "aud", "code", "field", "words"), NEAR_MISSES)
def test_every_near_miss_class_is_named_with_the_code_entra_would_answer(
    cli: Cli,
    issuer: TestIssuer,
    tmp_path: Path,
    fic_issuer: str | None,
    fic_subject: str,
    sub: str,
    aud: str | None,
    code: int,
    field: str,
    words: str,
) -> None:
    configured = (fic_issuer or issuer.url).format(
        url=issuer.url, url_https=issuer.url.replace("http:", "https:")
    )
    fics = az_export(tmp_path, {"name": "the-fic", "issuer": configured, "subject": fic_subject})
    token = issuer.mint(sub=sub, aud=aud or FIC_AUDIENCE_DEFAULT)
    exit_code, result = explain(cli, token, fics)
    assert exit_code == 1
    assert result["accepted"] is False
    assert result["aadsts"] == code
    assert result["error_description"].startswith(f"AADSTS{code}: ")
    assert any(words in why for why in whys(result, field)), result["comparisons"]
    failing = [s for s in result["steps"] if s["ok"] is False]
    assert [s["name"] for s in failing][:1] == [field]
    assert result["fixes"], "a refusal always comes with a fix"


def test_a_typo_is_fixed_by_changing_the_credential_with_trust_file_az_and_keyless_lines(
    cli: Cli, issuer: TestIssuer, tmp_path: Path
) -> None:
    fics = az_export(
        tmp_path, {"name": "gh-main", "issuer": issuer.url + "/", "subject": "repo:o/r:ref:refs/heads/main"}
    )
    _, result = explain(
        cli, issuer.mint(sub="repo:o/r:ref:refs/heads/main"), fics, "--tenant", "contoso.example"
    )
    [fix] = result["fixes"]
    assert fix["summary"].startswith(f"change credential gh-main: issuer '{issuer.url}/' -> '{issuer.url}'")
    assert f"issuer: {issuer.url}\n" in fix["trustFile"]
    assert fix["az"].startswith(
        f"az ad app federated-credential update --id {APP_ID} --federated-credential-id gh-main"
    )
    assert fix["keyless"] == f"keyless fic update contoso.example {APP_ID} gh-main --issuer {issuer.url}"


def test_another_github_workload_gets_a_new_credential_and_the_old_one_is_kept(
    cli: Cli, issuer: TestIssuer, tmp_path: Path
) -> None:
    fics = az_export(
        tmp_path, {"name": "gh-main", "issuer": issuer.url, "subject": "repo:o/r:ref:refs/heads/main"}
    )
    _, result = explain(cli, issuer.mint(sub="repo:o/r:environment:prod"), fics)
    [fix] = result["fixes"]
    assert fix["summary"].startswith("keep gh-main for 'repo:o/r:ref:refs/heads/main'; add a credential")
    assert fix["az"].startswith(f"az ad app federated-credential create --id {APP_ID} --parameters")
    assert "github-r-prod" in fix["keyless"]


def test_whitespace_in_the_tokens_own_subject_is_fixed_at_the_token_not_the_credential(
    cli: Cli, issuer: TestIssuer, tmp_path: Path
) -> None:
    fics = az_export(tmp_path, {"name": "sa", "issuer": issuer.url, "subject": "sa-1"})
    _, result = explain(cli, issuer.mint(sub="sa-1 "), fics)
    assert [f["summary"] for f in result["fixes"]] == [
        "the token's subject 'sa-1 ' has leading or trailing whitespace: fix the token's subject"
    ]


def test_an_audience_mismatch_offers_the_token_side_fix_first(
    cli: Cli, issuer: TestIssuer, tmp_path: Path
) -> None:
    fics = az_export(tmp_path, {"name": "sa", "issuer": issuer.url, "subject": "sa-1"})
    _, result = explain(cli, issuer.mint(sub="sa-1", aud="https://my-api.example"), fics)
    assert result["aadsts"] == 700212
    first, second = result["fixes"]
    assert first["summary"].startswith("request the token for audience 'api://AzureADTokenExchange'")
    assert "audience 'api://AzureADTokenExchange' -> 'https://my-api.example'" in second["summary"]


def test_an_expired_token_shows_the_time_window_with_deltas(
    cli: Cli, issuer: TestIssuer, tmp_path: Path
) -> None:
    fics = az_export(tmp_path, {"name": "sa", "issuer": issuer.url, "subject": "sa-1"})
    token = issuer.mint(sub="sa-1", now=time.time() - 7200, lifetime=600)
    exit_code, result = explain(cli, token, fics)
    assert (exit_code, result["aadsts"]) == (1, 700024)
    [window] = [s for s in result["steps"] if s["name"] == "time window"]
    assert window["ok"] is False
    assert "expired" in window["detail"] and "1h 50m" in window["detail"] and "ago" in window["detail"]
    assert "valid from" in result["error_description"]
    assert "fresh token" in result["fixes"][0]["summary"]


def test_an_unknown_kid_and_a_bad_signature_are_told_apart(
    cli: Cli, issuer: TestIssuer, tmp_path: Path
) -> None:
    fics = az_export(tmp_path, {"name": "sa", "issuer": issuer.url, "subject": "sa-1"})
    _, unknown = explain(cli, issuer.mint(sub="sa-1", kid="retired-key"), fics)
    assert unknown["aadsts"] == 7000272
    assert "'retired-key' is not in the issuer's key set" in " ".join(s["detail"] for s in unknown["steps"])
    header, payload, signature = issuer.mint(sub="sa-1").split(".")
    forged = f"{header}.{payload}.{signature[:-6]}AAAAAA"
    _, bad = explain(cli, forged, fics)
    assert bad["aadsts"] == 700027
    assert bad["signatureChecked"] is True


def test_an_accepted_assertion_exits_0_and_names_the_credential(
    cli: Cli, issuer: TestIssuer, tmp_path: Path
) -> None:
    fics = az_export(tmp_path, {"name": "sa", "issuer": issuer.url, "subject": "sa-1"})
    exit_code, result = explain(cli, issuer.mint(sub="sa-1"), fics)
    assert exit_code == 0
    assert (result["accepted"], result["matched"], result["signatureChecked"]) == (True, "sa", True)
    assert all(s["ok"] for s in result["steps"])
    human = cli("explain", issuer.mint(sub="sa-1"), "--fic", str(fics))
    assert human.exit_code == 0 and "accepted: credential sa matches" in human.stdout


def test_without_fetching_keys_the_signature_is_reported_as_not_checked(
    cli: Cli, issuer: TestIssuer, tmp_path: Path
) -> None:
    fics = az_export(tmp_path, {"name": "sa", "issuer": issuer.url, "subject": "sa-1"})
    issuer.reset_counts()
    exit_code, result = explain(cli, issuer.mint(sub="sa-1"), fics, "--no-fetch")
    assert exit_code == 0 and result["signatureChecked"] is False
    assert issuer.requests[issuer.jwks_path] == 0


def test_malformed_input_and_an_app_without_credentials(cli: Cli, issuer: TestIssuer, tmp_path: Path) -> None:
    empty = tmp_path / "none.json"
    empty.write_text("[]")
    _, result = explain(cli, issuer.mint(sub="sa-1"), empty)
    assert result["aadsts"] == 70021
    assert result["fixes"][0]["az"].startswith("az ad app federated-credential create")
    _, garbage = explain(cli, "not.a.jwt", empty)
    assert garbage["aadsts"] == 50027
    not_a_token = cli("explain", "hello", "--fic", str(empty))
    assert not_a_token.exit_code == 2 and "neither a JWT" in not_a_token.stderr


def test_a_real_entra_export_is_explained_with_the_az_command_that_fixes_it(
    cli: Cli, issuer: TestIssuer
) -> None:
    """The docs' example credential has issuer 'https://token.actions.githubusercontent.com/' (trailing slash)."""
    token = issuer.mint(
        iss="https://token.actions.githubusercontent.com",
        sub="repo:octo-org/octo-repo:environment:Production",
    )
    fics = FIXTURES / "az-federated-credential-list.json"
    result = cli("explain", token, "--fic", str(fics), "--app", APP_ID, "--no-fetch")
    assert result.exit_code == 1
    text = result.stdout
    assert "AADSTS700213: No matching federated identity record found for presented assertion subject" in text
    assert "they differ only by a trailing slash" in text
    assert "names an environment" in text  # main-branch: the job uses an environment
    assert (
        "fix 1: change credential Testing: issuer 'https://token.actions.githubusercontent.com/' ->" in text
    )
    assert f"az ad app federated-credential update --id {APP_ID} --federated-credential-id Testing" in text
    assert "not checked: the keys of https://token.actions.githubusercontent.com were not fetched" in text
    assert "credential Testing has this exact subject, but issuer" in text


def test_a_bad_fic_export_is_a_configuration_problem(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"name": "x", "issuer": "https://a"}]))
    result = cli("explain", "a.b.c", "--fic", str(path))
    assert result.exit_code == 2
    assert "credential [0]: missing audiences, subject (or claimsMatchingExpression)" in result.stderr


# -- live applications and trust files --------------------------------------------------------------


def _seed(cli: Cli, names: Names, issuer: TestIssuer, subject: str) -> None:
    assert cli("tenant", "create", "Live", "--id", names.tenant_id, "--domain", names.domain).exit_code == 0
    assert cli("app", "create", names.domain, "caller", "--app-id", names.caller_app).exit_code == 0
    created = cli(
        "fic", "create", names.domain, "caller", "--name", "gsa", "--issuer", issuer.url, "--subject", subject
    )
    assert created.exit_code == 0, created.stderr


def test_live_explain_uses_the_running_authority_and_finds_the_tenant(
    cli: Cli, issuer: TestIssuer, names: Names
) -> None:
    _seed(cli, names, issuer, "repo:o/r:ref:refs/heads/main")
    ok = cli("explain", issuer.mint(sub="repo:o/r:ref:refs/heads/main"), "--app", names.caller_app, "--json")
    assert ok.exit_code == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["signatureChecked"] is True
    refused = cli(
        "explain",
        issuer.mint(sub="repo:o/r:ref:refs/heads/Main"),
        "--app",
        "caller",
        "--tenant",
        names.domain,
    )
    assert refused.exit_code == 1
    assert "AADSTS7002138" in refused.stdout
    assert (
        f"keyless fic update {names.domain} {names.caller_app} gsa --subject repo:o/r:ref:refs/heads/Main"
        in (refused.stdout)
    )


def test_live_explain_never_fetches_keys_of_an_issuer_the_app_does_not_name(
    cli: Cli, issuer: TestIssuer, names: Names
) -> None:
    _seed(cli, names, issuer, "sa-1")
    with TestIssuer() as stranger:
        result = cli("explain", stranger.mint(sub="sa-1"), "--app", names.caller_app, "--json")
        assert stranger.requests[stranger.jwks_path] == 0
        assert stranger.requests[stranger.discovery_path] == 0
    explained = json.loads(result.stdout)
    assert explained["aadsts"] == 700211
    [signature] = [s for s in explained["steps"] if s["name"] == "signature"]
    assert "never fetched" in signature["detail"]


def test_the_admin_api_explain_route_answers_the_same_dry_run(
    live: RunningAuthority, cli: Cli, issuer: TestIssuer, names: Names
) -> None:
    _seed(cli, names, issuer, "sa-1")
    response = httpx.post(
        f"{live.base_url}/admin/v1.0/tenants/{names.domain}/applications/{names.caller_app}/explain",
        json={"assertion": issuer.mint(sub="sa-2")},
        headers={"Authorization": f"Bearer {live.admin_key()}"},
        verify=live.ssl_context(),
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["aadsts"], body["error"], body["application"]["appId"]) == (
        700213,
        "invalid_client",
        names.caller_app,
    )
    refused = httpx.post(
        f"{live.base_url}/admin/v1.0/tenants/{names.domain}/applications/{names.caller_app}/explain",
        json={"assertion": "x"},
        verify=live.ssl_context(),
    )
    assert refused.status_code == 401


def test_explain_against_a_trust_file_offline(cli: Cli, issuer: TestIssuer, tmp_path: Path) -> None:
    path = tmp_path / "trust.yaml"
    path.write_text(
        f"""\
tenants:
  - id: 5b0f6a1e-9c2d-4e3f-8a7b-6c5d4e3f2a1b
    displayName: Offline
    domains: [offline.example]
    applications:
      - displayName: cloud-run-caller
        appId: {APP_ID}
        federatedIdentityCredentials:
          - name: cloud-run
            issuer: {issuer.url}
            subject: "112233445566778899001"
"""
    )
    result = cli(
        "explain", issuer.mint(sub="112233445566778899002"), "--trust", str(path), "--app", "cloud-run-caller"
    )
    assert result.exit_code == 1
    assert "AADSTS700213" in result.stdout
    assert f"keyless fic create offline.example {APP_ID} --name" in result.stdout
    missing = cli("explain", issuer.mint(), "--trust", str(path), "--app", "nope")
    assert missing.exit_code == 1 and "no application 'nope'" in missing.stderr


def test_the_assertion_can_come_from_stdin_or_a_file(cli: Cli, issuer: TestIssuer, tmp_path: Path) -> None:
    fics = az_export(tmp_path, {"name": "sa", "issuer": issuer.url, "subject": "sa-1"})
    token = issuer.mint(sub="sa-1")
    assert cli("explain", "-", "--fic", str(fics), input=token + "\n").exit_code == 0
    (tmp_path / "token.jwt").write_text(token)
    assert cli("explain", str(tmp_path / "token.jwt"), "--fic", str(fics)).exit_code == 0


def test_an_expression_credential_from_az_is_explained_clause_by_clause(
    cli: Cli, issuer: TestIssuer, tmp_path: Path
) -> None:
    path = tmp_path / "fics.json"
    path.write_text(
        json.dumps(
            [
                {
                    "name": "gh-releases",
                    "issuer": issuer.url,
                    "subject": None,
                    "claimsMatchingExpression": {
                        "value": "claims['sub'] matches 'repo:contoso/*:ref:refs/heads/release/*'",
                        "languageVersion": 1,
                    },
                    "audiences": [FIC_AUDIENCE_DEFAULT],
                }
            ]
        )
    )
    token = issuer.mint(sub="repo:Contoso/app:ref:refs/heads/release/1")
    code, result = explain(cli, token, path)
    assert code == 1 and result["aadsts"] == 700213
    (why,) = whys(result, "claims['sub']")
    assert "letter case" in why and "'repo:Contoso/*:ref:refs/heads/release/*' would match" in why
    assert "--expression" in result["fixes"][0]["keyless"]
    accepted, result = explain(cli, issuer.mint(sub="repo:contoso/app:ref:refs/heads/release/1"), path)
    assert accepted == 0 and result["matched"] == "gh-releases"


def test_a_bad_expression_in_an_export_is_a_configuration_problem_with_its_column(
    cli: Cli, issuer: TestIssuer, tmp_path: Path
) -> None:
    path = tmp_path / "fics.json"
    bad = {"value": "claims['sub'] like 'x'", "languageVersion": 1}
    path.write_text(
        json.dumps(
            [{"name": "x1", "issuer": issuer.url, "claimsMatchingExpression": bad, "audiences": ["a"]}]
        )
    )
    result = cli("explain", issuer.mint(sub="x"), "--fic", str(path), "--app", APP_ID)
    assert result.exit_code == 2 and "(column 15)" in result.stderr and "Traceback" not in result.stderr
