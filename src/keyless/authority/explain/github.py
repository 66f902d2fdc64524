"""GitHub Actions subject formats, so that ``explain`` can say why two of them differ.

GitHub's default ``sub`` is ``repo:OWNER/REPO:CONTEXT`` where CONTEXT is one of::

    ref:refs/heads/BRANCH    a push or a workflow run on a branch
    ref:refs/tags/TAG        a tag
    environment:NAME         any job that names an environment (the ref is then left out)
    pull_request             a workflow triggered by a pull request

An organisation or repository can customize the template (GitHub's OIDC "subject claim
customization"), for instance to the immutable numeric form
``repository_owner_id:123:repository_id:456:environment:prod``, or add claims such as
``job_workflow_ref``. Entra compares the whole string exactly, so a credential written for one
form never matches a token of another.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "GitHubSubject",
    "describe_github_subject",
    "github_other_workload",
    "github_subject_mismatch",
    "parse_github_subject",
]

_FIRST_KEYS = ("repo:", "repository:", "repository_owner:", "repository_owner_id:", "repository_id:")
_CONTEXT_KEYS = ("ref", "environment")


@dataclass(frozen=True, slots=True)
class GitHubSubject:
    repo: str | None  # OWNER/REPO (name form)
    owner_id: str | None  # numeric ids (immutable form)
    repo_id: str | None
    context: str  # "ref:refs/heads/main", "environment:prod", "pull_request" or ""
    keys: tuple[str, ...]  # the claim keys, in order ("repo", "context" ...)

    @property
    def id_form(self) -> bool:
        return self.repo is None and self.repo_id is not None

    @property
    def kind(self) -> str:
        if self.context == "pull_request":
            return "pull_request"
        if self.context.startswith("environment:"):
            return "environment"
        if self.context.startswith("ref:refs/heads/"):
            return "branch"
        if self.context.startswith("ref:refs/tags/"):
            return "tag"
        if self.context.startswith("ref:"):
            return "ref"
        return ""

    @property
    def context_value(self) -> str:
        if self.kind in ("branch", "tag"):
            return self.context.split("/", 2)[2]
        return self.context.split(":", 1)[1] if ":" in self.context else ""


def parse_github_subject(sub: str) -> GitHubSubject | None:
    """The parts of a GitHub Actions ``sub``, or None if it is not one."""
    if not sub.startswith(_FIRST_KEYS):
        return None
    tokens = sub.split(":")
    parts: dict[str, str] = {}
    keys: list[str] = []
    context = ""
    i = 0
    while i < len(tokens):
        key = tokens[i]
        if key == "pull_request":
            context = "pull_request"
            keys.append("context")
            i += 1
            continue
        if i + 1 >= len(tokens) or not key:
            return None
        value = tokens[i + 1]
        if key in _CONTEXT_KEYS:
            context = f"{key}:{value}"
            keys.append("context")
        else:
            parts[key] = value
            keys.append(key)
        i += 2
    repo = parts.get("repo") or parts.get("repository")
    return GitHubSubject(
        repo=repo,
        owner_id=parts.get("repository_owner_id"),
        repo_id=parts.get("repository_id"),
        context=context,
        keys=tuple(keys),
    )


def describe_github_subject(subject: GitHubSubject) -> str:
    """``branch 'main' of contoso/app``, ``pull requests of repository id 456`` ..."""
    where = subject.repo or (f"repository id {subject.repo_id}" if subject.repo_id else "a repository")
    kind, value = subject.kind, subject.context_value
    if kind == "pull_request":
        return f"pull requests of {where}"
    if kind in ("branch", "tag", "environment"):
        return f"{kind} {value!r} of {where}"
    if kind == "ref":
        return f"ref {value!r} of {where}"
    return f"{where} (no ref, environment or pull_request part)"


def _same_repository(a: GitHubSubject, b: GitHubSubject) -> bool:
    if a.repo is not None and b.repo is not None:
        return a.repo.lower() == b.repo.lower()
    return a.repo_id is not None and a.repo_id == b.repo_id


def github_subject_mismatch(presented: str, configured: str) -> str | None:
    """Why a GitHub subject in a token differs from a credential's, when both are GitHub subjects
    of the same repository (or one uses the ID form and the other the name form); else None."""
    token, wanted = parse_github_subject(presented), parse_github_subject(configured)
    if token is None or wanted is None or presented == configured:
        return None
    if token.id_form != wanted.id_form:
        forms = ("ID-based (repository_owner_id:...:repository_id:...)", "name-based (repo:OWNER/REPO:...)")
        mine, theirs = (forms[0], forms[1]) if token.id_form else (forms[1], forms[0])
        return (
            f"the token's subject uses GitHub's {mine} form, the credential the {theirs} form: the "
            "repository's OIDC subject template is customized; write the credential in the token's form"
        )
    if not _same_repository(token, wanted):
        return None
    if token.keys != wanted.keys:
        return (
            f"the subjects carry different GitHub claims (token: {', '.join(token.keys)}; credential: "
            f"{', '.join(wanted.keys)}): the repository's OIDC subject template differs from the credential"
        )
    return _context_mismatch(token, wanted)


def github_other_workload(presented: str, configured: str) -> bool:
    """True when both are GitHub subjects of the same repository and form, for different workloads
    (another branch, environment, tag, or pull requests): the credential is right for its own
    workload, and the token needs a credential of its own rather than a change to that one."""
    token, wanted = parse_github_subject(presented), parse_github_subject(configured)
    if token is None or wanted is None or token.id_form != wanted.id_form or token.keys != wanted.keys:
        return False
    if not _same_repository(token, wanted):
        return False
    if wanted.context.startswith("ref:") and not wanted.context.startswith("ref:refs/"):
        return False
    return token.kind != wanted.kind or token.context_value.lower() != wanted.context_value.lower()


def _context_mismatch(token: GitHubSubject, wanted: GitHubSubject) -> str | None:
    said = (
        f"the token is for {describe_github_subject(token)}, "
        f"the credential trusts {describe_github_subject(wanted)}"
    )
    if wanted.context.startswith("ref:") and not wanted.context.startswith("ref:refs/"):
        full = "refs/heads/" + wanted.context_value
        return f"{said}: a GitHub ref is written in full ('ref:{full}', not 'ref:{wanted.context_value}')"
    if token.kind == wanted.kind:
        if token.context_value.lower() == wanted.context_value.lower():
            return None  # a case difference: the generic near-miss check names it
        return f"{said} (a different {token.kind})"
    if token.kind == "environment":
        return (
            f"{said}: a job that names an environment gets 'environment:NAME' as its subject instead of "
            "the ref; add a credential for the environment"
        )
    if token.kind == "pull_request":
        return f"{said}: workflows triggered by pull_request get the subject '...:pull_request'"
    return said
