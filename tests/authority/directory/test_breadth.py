"""The footgun rule: a flexible credential must pin an owner before its first wildcard (or say
allowBroadMatch), and plan warns about patterns broader than one repository."""

from __future__ import annotations

import pytest

from keyless.authority.directory import rules
from keyless.authority.directory.breadth import breadth_warning, broad_match_problem
from keyless.authority.model import FederatedIdentityCredential
from keyless.authority.token.expressions import parse_expression

GITHUB = "https://token.actions.githubusercontent.com"
GITLAB = "https://gitlab.com"
TFC = "https://app.terraform.io"
AKS = "https://eastus.oic.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/11111111-2222/"
OTHER = "https://issuer.example.com"


@pytest.mark.parametrize(
    ("issuer", "expression"),
    [
        (GITHUB, "claims['sub'] matches '*'"),
        (GITHUB, "claims['sub'] matches 'repo:*'"),
        (GITHUB, "claims['sub'] matches 'repo:contoso*'"),  # contoso-evil is another owner
        (GITHUB, "claims['job_workflow_ref'] matches '*/deploy.yml@*'"),
        (GITLAB, "claims['sub'] matches 'project_path:*'"),
        (TFC, "claims['sub'] matches 'organization:*:project:x:*'"),
        (AKS, "claims['sub'] matches 'system:serviceaccount:*'"),
        (AKS, "claims['sub'] matches 'system:serviceaccount:*:deployer'"),
        (OTHER, "claims['sub'] matches '*'"),
        (OTHER, "claims['sub'] matches '*@example.com'"),
    ],
)
def test_a_pattern_that_pins_no_owner_is_broad(issuer: str, expression: str) -> None:
    assert broad_match_problem(issuer, parse_expression(expression)) is not None


@pytest.mark.parametrize(
    ("issuer", "expression"),
    [
        (GITHUB, "claims['sub'] matches 'repo:contoso/*'"),
        (GITHUB, "claims['sub'] matches 'repo:contoso/app:*'"),
        (GITHUB, "claims['job_workflow_ref'] matches 'contoso/shared/.github/workflows/*'"),
        (GITHUB, "claims['sub'] matches '*' and claims['repository_owner'] eq 'contoso'"),
        ("https://ghe.contoso.com/_services/token", "claims['sub'] matches 'repo:platform/*'"),
        (GITLAB, "claims['sub'] matches 'project_path:contoso/*'"),
        ("https://gitlab.contoso.ca", "claims['sub'] matches 'project_path:group/sub/*'"),
        (TFC, "claims['sub'] matches 'organization:contoso:*'"),
        (AKS, "claims['sub'] matches 'system:serviceaccount:payments:*'"),
        (OTHER, "claims['sub'] matches 'svc-*'"),
    ],
)
def test_a_pattern_that_pins_an_owner_is_not_broad(issuer: str, expression: str) -> None:
    assert broad_match_problem(issuer, parse_expression(expression)) is None


def test_a_broad_expression_is_refused_unless_the_credential_allows_it() -> None:
    def credential(allow: bool) -> FederatedIdentityCredential:
        return FederatedIdentityCredential(
            "",
            "",
            "everyone",
            GITHUB,
            None,
            claims_matching_expression="claims['sub'] matches 'repo:*'",
            allow_broad_match=allow,
        )

    problems = rules.fic_problems(credential(False))
    assert any("allowBroadMatch" in p and "repository owner" in p for p in problems)
    assert rules.fic_problems(credential(True)) == []


@pytest.mark.parametrize(
    ("issuer", "expression", "warned"),
    [
        (GITHUB, "claims['sub'] matches 'repo:contoso/*'", True),
        (GITHUB, "claims['sub'] matches 'repo:contoso/app:*'", False),
        (GITHUB, "claims['sub'] eq 'repo:contoso/app:ref:refs/heads/main'", False),
        (GITLAB, "claims['sub'] matches 'project_path:contoso/*'", True),
        (TFC, "claims['sub'] matches 'organization:contoso:project:p:workspace:w:*'", False),
        (TFC, "claims['sub'] matches 'organization:contoso:*'", True),
        (AKS, "claims['sub'] matches 'system:serviceaccount:payments:*'", True),
        (OTHER, "claims['sub'] matches 'svc-*'", False),
    ],
)
def test_plan_warns_about_patterns_broader_than_one_repository(
    issuer: str, expression: str, warned: bool
) -> None:
    assert (breadth_warning(issuer, parse_expression(expression)) is not None) is warned


def test_subject_and_expression_are_one_or_the_other() -> None:
    both = FederatedIdentityCredential(
        "",
        "",
        "both",
        GITHUB,
        "repo:contoso/app:ref:refs/heads/main",
        claims_matching_expression="claims['sub'] matches 'repo:contoso/*'",
    )
    neither = FederatedIdentityCredential("", "", "neither", GITHUB, None)
    assert rules.ONE_OF_SUBJECT_OR_EXPRESSION in rules.fic_problems(both)
    assert rules.ONE_OF_SUBJECT_OR_EXPRESSION in rules.fic_problems(neither)


def test_expression_and_condition_errors_carry_their_column() -> None:
    bad = FederatedIdentityCredential(
        "",
        "",
        "bad",
        GITHUB,
        None,
        claims_matching_expression="claims['sub'] matches repo:contoso/*",
        condition="claims.ref ==",
    )
    problems = rules.fic_problems(bad)
    assert any(p.startswith("claimsMatchingExpression:") and "(column 23)" in p for p in problems)
    assert any(p.startswith("condition:") and "(column 14)" in p for p in problems)
