"""How much a flexible credential trusts: the footgun rule for ``claimsMatchingExpression``.

An expression must *pin an owner* before a wildcard: the GitHub organisation or user, the GitLab
group, the Terraform Cloud organisation, the Kubernetes namespace. Otherwise one pattern trusts
every workload of a public issuer (``claims['sub'] matches 'repo:*'`` trusts every repository on
GitHub). Such a credential is refused unless it says ``allowBroadMatch: true``. A CEL condition
does not count towards pinning: it is checked at run time, and a typo in it would silently open
the credential; put the owner in the expression.

A pattern that pins the owner but is broader than one repository, project, workspace or service
account is allowed and ``plan`` warns about it (``breadth_warning``).

Rules by subject format (the issuer's family, or the pattern's own prefix for Kubernetes):

- GitHub (``token.actions.githubusercontent.com``, GHES ``.../_services/token``): ``sub`` starts
  ``repo:OWNER/``; or ``job_workflow_ref`` / ``repository`` start ``OWNER/``; or an exact
  ``repository_owner``, ``repository_owner_id``, ``repository`` or ``repository_id`` clause.
- GitLab (``gitlab.com`` or any ``gitlab.`` host): ``sub`` starts ``project_path:GROUP/``; or an
  exact ``namespace_path``, ``namespace_id``, ``project_path`` or ``project_id`` clause.
- Terraform Cloud (``app.terraform.io``, ``app.eu.terraform.io``): ``sub`` starts
  ``organization:ORG:``; or an exact ``terraform_organization_name`` / ``_id`` clause.
- Kubernetes (a ``sub`` pattern in ``system:serviceaccount:`` form): ``system:serviceaccount:NS:``.
- Any other issuer: some clause has a literal prefix (a pattern that starts with a wildcard, in
  every clause, matches every subject).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

from keyless.authority.token.expressions import ClaimsExpression

__all__ = ["Family", "breadth_warning", "broad_match_problem", "family_of"]

_K8S = "system:serviceaccount:"


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    owner: str  # what must be pinned, in words
    sub_owner: re.Pattern[str]  # a sub prefix that pins the owner
    sub_unit: re.Pattern[str]  # a sub prefix that pins one repository/project/workspace
    unit: str  # that unit, in words
    owner_claims: Collection[str] = ()  # exact clauses on these pin the owner
    owner_prefix_claims: Collection[str] = ()  # 'OWNER/...' prefixes on these pin the owner


GITHUB = Family(
    "GitHub Actions",
    "the repository owner (repo:OWNER/...)",
    re.compile(r"^repo:[^/*?:]+/"),
    re.compile(r"^repo:[^/*?:]+/[^/*?:]+:"),
    "repository",
    owner_claims=("repository_owner", "repository_owner_id", "repository", "repository_id"),
    owner_prefix_claims=("job_workflow_ref", "repository", "workflow_ref"),
)
GITLAB = Family(
    "GitLab",
    "the group (project_path:GROUP/...)",
    re.compile(r"^project_path:[^/*?:]+/"),
    re.compile(r"^project_path:[^*?:]+:"),
    "project",
    owner_claims=("namespace_path", "namespace_id", "project_path", "project_id"),
)
TERRAFORM = Family(
    "Terraform Cloud",
    "the organisation (organization:ORG:...)",
    re.compile(r"^organization:[^:*?]+:"),
    re.compile(r"^organization:[^:*?]+:project:[^:*?]+:workspace:[^:*?]+:"),
    "workspace",
    owner_claims=("terraform_organization_name", "terraform_organization_id"),
)
KUBERNETES = Family(
    "Kubernetes",
    "the namespace (system:serviceaccount:NAMESPACE:...)",
    re.compile(r"^system:serviceaccount:[^:*?]+:"),
    re.compile(r"^system:serviceaccount:[^:*?]+:[^:*?]+$"),
    "service account",
)


def family_of(issuer: str, expression: ClaimsExpression) -> Family | None:
    """The subject format the rule applies, or None for an issuer with no known format."""
    host = (urlsplit(issuer).hostname or "").lower()
    path = urlsplit(issuer).path
    if host == "token.actions.githubusercontent.com" or path.rstrip("/").endswith("/_services/token"):
        return GITHUB
    if host == "gitlab.com" or host.startswith("gitlab."):
        return GITLAB
    if host in ("app.terraform.io", "app.eu.terraform.io"):
        return TERRAFORM
    sub = expression.clause_for("sub")
    if sub is not None:
        prefix = sub.literal_prefix
        if prefix.startswith(_K8S) or (prefix and _K8S.startswith(prefix) and prefix.startswith("sys")):
            return KUBERNETES
    return None


def _pins_owner(family: Family, expression: ClaimsExpression) -> bool:
    for clause in expression.clauses:
        if clause.claim == "sub" and family.sub_owner.match(clause.literal_prefix):
            return True
        if clause.claim in family.owner_claims and clause.is_literal and clause.comparand:
            return True
        if clause.claim in family.owner_prefix_claims and re.match(r"^[^/*?]+/", clause.literal_prefix):
            return True
    return False


def broad_match_problem(issuer: str, expression: ClaimsExpression) -> str | None:
    """Why the expression could match every workload of the issuer, or None if it pins an owner."""
    family = family_of(issuer, expression)
    if family is None:
        if any(c.literal_prefix for c in expression.clauses):
            return None
        return (
            f"the expression {expression.source!r} matches every subject of {issuer}: "
            "give some clause a literal prefix, or set allowBroadMatch: true"
        )
    if _pins_owner(family, expression):
        return None
    return (
        f"the expression {expression.source!r} does not pin {family.owner} of {family.name} "
        f"subjects, so it matches workloads of every owner on {issuer}: pin it before the first "
        "wildcard, or set allowBroadMatch: true if that is really meant"
    )


def breadth_warning(issuer: str, expression: ClaimsExpression) -> str | None:
    """A warning for a pattern broader than one repository / project / workspace / service account."""
    family = family_of(issuer, expression)
    if family is None:
        return None
    sub = expression.clause_for("sub")
    if sub is not None and (sub.is_literal or family.sub_unit.match(sub.literal_prefix)):
        return None
    return f"the expression {expression.source!r} matches more than one {family.name} {family.unit}"
