"""Trust files with flexible credentials and conditions: both spellings of
claimsMatchingExpression, errors at file:line with the column, plan's breadth warning, export that
round-trips, and an application with 1,000 credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from keyless.authority._service import Authority
from keyless.authority.directory.admin import DirectoryAdmin
from keyless.authority.trustfile.reconcile import apply, export, load_trust_file, parse_trust_document, plan
from keyless.config import load_authority_settings
from keyless.errors import ConfigurationError

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CALLER_APP = "22222222-2222-2222-2222-222222222222"
GITHUB = "https://token.actions.githubusercontent.com"

FILE = f"""\
tenants:
  - id: {TENANT_ID}
    displayName: Contoso
    applications:
      - displayName: deployer
        appId: {CALLER_APP}
        federatedIdentityCredentials:
          - name: gh-releases
            issuer: {GITHUB}
            claimsMatchingExpression:
              value: "claims['sub'] matches 'repo:contoso/app:ref:refs/heads/release/*'"
              languageVersion: 1
          - name: gh-org
            issuer: {GITHUB}
            claimsMatchingExpression: "claims['sub'] matches 'repo:contoso/*'"
            condition: "claims.repository_visibility == 'private'"
"""


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[DirectoryAdmin]:
    opened = Authority.open(load_authority_settings(data_dir=tmp_path / "data", port=0))
    yield opened.admin
    await opened.aclose()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trust.yaml"
    path.write_text(text)
    return path


def test_both_spellings_of_an_expression_apply_and_the_next_plan_is_empty(
    admin: DirectoryAdmin, tmp_path: Path
) -> None:
    doc = load_trust_file(_write(tmp_path, FILE))
    apply(admin, doc)
    app = admin.find_application(TENANT_ID, CALLER_APP)
    stored = {f.name: f for f in admin.list_fics(app)}
    assert stored["gh-releases"].subject is None
    assert stored["gh-org"].claims_matching_expression == "claims['sub'] matches 'repo:contoso/*'"
    assert stored["gh-org"].condition == "claims.repository_visibility == 'private'"
    assert not plan(admin, doc)


def test_plan_warns_about_a_pattern_broader_than_one_repository(
    admin: DirectoryAdmin, tmp_path: Path
) -> None:
    found = plan(admin, load_trust_file(_write(tmp_path, FILE)))
    assert any("gh-org" in w and "more than one GitHub Actions repository" in w for w in found.warnings)
    assert not any("gh-releases" in w for w in found.warnings)
    assert "warning: " in str(found)


def test_export_writes_graphs_shape_and_reads_back_unchanged(admin: DirectoryAdmin, tmp_path: Path) -> None:
    apply(admin, load_trust_file(_write(tmp_path, FILE)))
    exported = export(admin, [TENANT_ID])
    fics = exported["tenants"][0]["applications"][0]["federatedIdentityCredentials"]
    org = next(f for f in fics if f["name"] == "gh-org")
    assert org["claimsMatchingExpression"] == {
        "value": "claims['sub'] matches 'repo:contoso/*'",
        "languageVersion": 1,
    }
    assert "subject" not in org
    assert not plan(admin, parse_trust_document(exported))


@pytest.mark.parametrize(
    ("entry", "line", "words"),
    [
        ("claimsMatchingExpression: \"claims['sub'] matches repo:*\"", 9, "(column 23)"),
        ("claimsMatchingExpression: \"claims['sub'] matches 'repo:*'\"", 9, "allowBroadMatch"),
        ('subject: x\n            condition: "claims.ref =="', 10, "(column 14)"),
    ],
)
def test_a_bad_expression_or_condition_is_reported_at_its_line(
    tmp_path: Path, entry: str, line: int, words: str
) -> None:
    text = f"""\
tenants:
  - id: {TENANT_ID}
    displayName: Contoso
    applications:
      - displayName: deployer
        federatedIdentityCredentials:
          - name: bad
            issuer: {GITHUB}
            {entry}
"""
    with pytest.raises(ConfigurationError) as error:
        load_trust_file(_write(tmp_path, text))
    problems = error.value.problems
    assert any(f"trust.yaml:{line}" in p and words in p for p in problems), problems


def test_an_application_with_1000_credentials_applies_from_a_trust_file(
    admin: DirectoryAdmin, tmp_path: Path
) -> None:
    fics = [
        {"name": f"exact-{i}", "issuer": GITHUB, "subject": f"repo:owner{i}/app:ref:refs/heads/main"}
        if i % 2 == 0
        else {
            "name": f"flex-{i}",
            "issuer": GITHUB,
            "claimsMatchingExpression": f"claims['sub'] matches 'repo:owner{i}/*'",
        }
        for i in range(1000)
    ]
    document = {
        "tenants": [
            {
                "id": TENANT_ID,
                "displayName": "Contoso",
                "maxFederatedIdentityCredentialsPerApp": 1000,
                "applications": [
                    {"displayName": "deployer", "appId": CALLER_APP, "federatedIdentityCredentials": fics}
                ],
            }
        ]
    }
    doc = load_trust_file(_write(tmp_path, yaml.safe_dump(document)))
    applied = apply(admin, doc)
    assert sum(1 for c in applied if c.kind == "fic") == 1000
    assert len(admin.list_fics(admin.find_application(TENANT_ID, CALLER_APP))) == 1000
    assert not plan(admin, doc)
