"""``explain`` for flexible credentials: each clause of a ``claimsMatchingExpression`` against the
token, the near misses (letter case, ``-`` vs ``_``, a missing or extra ``refs/heads/``, whitespace,
a trailing slash) and the comparand that would match."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from keyless.authority.token.expressions import ClaimsExpression, Clause

__all__ = ["clause_near_miss", "repaired_expression"]

_REFS = "refs/heads/"


def _with_value_prefix(comparand: str, value: str, prefix: str) -> str:
    """The comparand with its literal prefix spelled as the value spells it (case and the like)."""
    return value[: len(prefix)] + comparand[len(prefix) :]


def _candidates(clause: Clause, value: str) -> list[tuple[str, str]]:
    """(why, new comparand) pairs to try, most specific first."""
    c = clause.comparand
    prefix = clause.literal_prefix
    out = [
        (
            "they differ only by letter case (matching is case-sensitive)",
            _with_value_prefix(c, value, prefix),
        ),
        ("they differ only by '-' versus '_' (e.g. pull-request vs pull_request)", c.replace("-", "_")),
        ("they differ only by '-' versus '_' (e.g. pull-request vs pull_request)", c.replace("_", "-")),
        ("they differ only by leading or trailing whitespace", c.strip()),
        ("they differ only by a trailing slash", c.rstrip("/")),
        ("they differ only by a trailing slash", c + "/"),
    ]
    if _REFS in value and _REFS not in c:
        for marker in (":ref:", "@", ""):
            if marker and marker in c:
                head, _, tail = c.partition(marker)
                out.append(
                    (f"the token's ref is fully qualified: add '{_REFS}'", f"{head}{marker}{_REFS}{tail}")
                )
            elif not marker and clause.claim == "ref":
                out.append((f"the token's ref is fully qualified: add '{_REFS}'", _REFS + c))
    if _REFS in c and _REFS not in value:
        out.append((f"the token's ref is not qualified with '{_REFS}'", c.replace(_REFS, "", 1)))
    return out


def clause_near_miss(clause: Clause, value: object) -> tuple[str, str] | None:
    """Why a failing clause almost matches ``value``, and the comparand that would match it."""
    if not isinstance(value, str):
        return None
    for why, comparand in _candidates(clause, value):
        if comparand != clause.comparand and replace(clause, comparand=comparand).test(value):
            return why, comparand
    return None


def repaired_expression(expression: ClaimsExpression, claims: Mapping[str, Any]) -> str | None:
    """The expression with every near-missing clause repaired, if that makes it match the token."""
    clauses: list[str] = []
    repaired = False
    for result in expression.evaluate(claims):
        clause = result.clause
        if result.ok:
            clauses.append(str(clause))
            continue
        near = clause_near_miss(clause, result.presented)
        if near is None:
            return None
        clauses.append(str(replace(clause, comparand=near[1])))
        repaired = True
    return " and ".join(clauses) if repaired else None
