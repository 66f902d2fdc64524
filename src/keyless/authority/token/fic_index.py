"""An application's federated credentials, indexed so that matching cost grows with the number of
*candidates*, not credentials (100,000 per issuer is a supported size).

Per issuer:

- exact credentials by subject: one dictionary lookup;
- flexible credentials (``claimsMatchingExpression``) filed under one clause (``index_clause``):
  an exact clause by ``(claim, value)``; a ``matches`` clause by its literal prefix, grouped by the
  prefix's length, so a lookup tries each distinct length once (``value[:n]``), however many
  credentials share it;
- for refusals, the same subjects and prefixes folded (case, ``-``/``_``, whitespace, trailing
  ``/``, scheme), so a near miss is found without scanning every credential.

Built once per directory snapshot; the expressions and conditions inside are parsed once per text
(``parse_expression`` and ``compile_condition`` cache).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keyless.authority.model import FederatedIdentityCredential
from keyless.authority.token.conditions import Condition, compile_condition
from keyless.authority.token.expressions import ClaimsExpression, parse_expression

__all__ = ["CompiledFic", "FicIndex", "IssuerIndex", "fold"]


def fold(value: str) -> str:
    """A value with the differences a near miss may have taken out (case, ``-``/``_``, scheme...)."""
    return value.strip().rstrip("/").split("://", 1)[-1].lower().replace("-", "_")


@dataclass(frozen=True, slots=True)
class CompiledFic:
    fic: FederatedIdentityCredential
    expression: ClaimsExpression | None
    condition: Condition | None

    def subject_matches(self, sub: str, claims: Mapping[str, Any]) -> bool:
        if self.expression is None:
            return self.fic.subject == sub
        return self.expression.matches(claims)


def compile_fic(fic: FederatedIdentityCredential) -> CompiledFic:
    """The credential with its expression and condition compiled (both were checked on write)."""
    expression = (
        parse_expression(fic.claims_matching_expression)
        if fic.claims_matching_expression is not None
        else None
    )
    condition = compile_condition(fic.condition) if fic.condition is not None else None
    return CompiledFic(fic, expression, condition)


_Buckets = dict[int, dict[str, list[CompiledFic]]]  # prefix length -> prefix -> credentials


def _file(buckets: _Buckets, key: str, item: CompiledFic) -> None:
    buckets.setdefault(len(key), {}).setdefault(key, []).append(item)


def _lookup(buckets: _Buckets, value: str) -> Iterator[CompiledFic]:
    for length, by_prefix in buckets.items():
        if length <= len(value):
            yield from by_prefix.get(value[:length], ())


@dataclass
class IssuerIndex:
    """One issuer's credentials of one application."""

    issuer: str
    credentials: list[CompiledFic] = field(default_factory=list)
    exact: dict[str, list[CompiledFic]] = field(default_factory=dict)
    literal: dict[tuple[str, str], list[CompiledFic]] = field(default_factory=dict)
    literal_claims: set[str] = field(default_factory=set)
    prefixes: dict[str, _Buckets] = field(default_factory=dict)  # claim -> buckets
    folded_exact: dict[str, list[CompiledFic]] = field(default_factory=dict)
    folded_prefixes: dict[str, _Buckets] = field(default_factory=dict)
    _flexible: int = 0

    def add(self, item: CompiledFic) -> None:
        self.credentials.append(item)
        if item.expression is None:
            subject = item.fic.subject or ""
            self.exact.setdefault(subject, []).append(item)
            self.folded_exact.setdefault(fold(subject), []).append(item)
            return
        self._flexible += 1
        clause = item.expression.index_clause()
        if clause.is_literal:
            self.literal.setdefault((clause.claim, clause.comparand), []).append(item)
            self.literal_claims.add(clause.claim)
        else:
            _file(self.prefixes.setdefault(clause.claim, {}), clause.literal_prefix, item)
        _file(self.folded_prefixes.setdefault(clause.claim, {}), fold(clause.literal_prefix), item)

    @property
    def flexible_count(self) -> int:
        return self._flexible

    @property
    def has_expressions(self) -> bool:
        return bool(self.literal or self.prefixes)

    def candidates(self, sub: str, claims: Mapping[str, Any]) -> list[CompiledFic]:
        """Credentials whose subject or expression the token satisfies: exact ones first, then
        flexible ones, each in creation order."""
        found = list(self.exact.get(sub, ()))
        if not self.has_expressions:
            return found
        hits: list[CompiledFic] = []
        for claim in self.literal_claims:
            value = claims.get(claim)
            if isinstance(value, str):
                hits.extend(self.literal.get((claim, value), ()))
        for claim, buckets in self.prefixes.items():
            value = claims.get(claim)
            if isinstance(value, str):
                hits.extend(_lookup(buckets, value))
        matched = [c for c in hits if c.expression is not None and c.expression.matches(claims)]
        if len(matched) > 1:
            order = {id(c): i for i, c in enumerate(self.credentials)}
            matched.sort(key=lambda c: order[id(c)])
        return found + matched

    def near(self, sub: str, claims: Mapping[str, Any]) -> list[CompiledFic]:
        """Credentials the token *almost* satisfies (for the refusal's detail), without a scan."""
        found = list(self.folded_exact.get(fold(sub), ()))
        for claim, buckets in self.folded_prefixes.items():
            value = claims.get(claim)
            if isinstance(value, str):
                found.extend(_lookup(buckets, fold(value)))
        return found


@dataclass(frozen=True)
class FicIndex:
    """Every federated credential of one application, by issuer."""

    all: tuple[FederatedIdentityCredential, ...]
    by_issuer: dict[str, IssuerIndex]

    @classmethod
    def build(cls, fics: Iterable[FederatedIdentityCredential]) -> FicIndex:
        every = tuple(fics)
        by_issuer: dict[str, IssuerIndex] = defaultdict(lambda: IssuerIndex(""))
        for fic in every:
            index = by_issuer[fic.issuer]
            index.issuer = fic.issuer
            index.add(compile_fic(fic))
        return cls(every, dict(by_issuer))

    def issuer(self, iss: str) -> IssuerIndex | None:
        return self.by_issuer.get(iss)

    @property
    def issuers(self) -> Sequence[str]:
        return sorted(self.by_issuer)

    def __len__(self) -> int:
        return len(self.all)
