"""Entra's flexible federated identity credentials: the ``claimsMatchingExpression`` language.

Graph beta's grammar (language version 1)::

    expression := clause ( " and " clause )*
    clause     := "claims['" NAME "']" " " ( "eq" | "matches" ) " " "'" COMPARAND "'"

``eq`` compares exactly; ``matches`` is a glob over the whole value: ``*`` any run of characters
(``/`` and ``:`` included, the empty run too), ``?`` exactly one. Comparisons are case-sensitive,
as every federated credential match is. Single quotes delimit a comparand; a quote inside one is
written twice (``'it''s'``), as in Graph's OData strings. A claim that is missing or not a string
matches nothing.

Entra accepts these for three issuers; keyless for every issuer. Parsing is strict (the error
names the column) and happens when a credential is written; a parsed expression is cached by its
text, so a directory rebuild re-uses it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

__all__ = [
    "LANGUAGE_VERSION",
    "ClaimsExpression",
    "Clause",
    "ClauseResult",
    "ExpressionError",
    "parse_expression",
]

LANGUAGE_VERSION = 1
MAX_EXPRESSION = 2000  # characters; Graph's own limit is not published
Operator = Literal["eq", "matches"]


class ExpressionError(ValueError):
    """A claimsMatchingExpression that does not parse; ``column`` is 1-based."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} (column {column})")
        self.message = message
        self.column = column


@dataclass(frozen=True, slots=True)
class ClauseResult:
    """One clause against one token: the claim's value as presented and whether it matched."""

    clause: Clause
    presented: object  # the claim's value, or None when the token has no such claim
    ok: bool

    @property
    def missing(self) -> bool:
        return self.presented is None


@dataclass(frozen=True, slots=True)
class Clause:
    claim: str
    op: Operator
    comparand: str
    column: int  # where the clause starts in the expression, 1-based

    @property
    def literal_prefix(self) -> str:
        """The comparand up to its first wildcard (the whole comparand for ``eq``)."""
        if self.op == "eq":
            return self.comparand
        cut = min((i for i in (self.comparand.find("*"), self.comparand.find("?")) if i >= 0), default=-1)
        return self.comparand if cut < 0 else self.comparand[:cut]

    @property
    def is_literal(self) -> bool:
        """True when the clause names one value (``eq``, or ``matches`` without a wildcard)."""
        return self.op == "eq" or self.literal_prefix == self.comparand

    def test(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        if self.is_literal:
            return value == self.comparand
        return _glob(self.comparand).fullmatch(value) is not None

    def __str__(self) -> str:
        return f"claims['{self.claim}'] {self.op} '{self.comparand.replace(chr(39), chr(39) * 2)}'"


@dataclass(frozen=True, slots=True)
class ClaimsExpression:
    source: str
    clauses: tuple[Clause, ...]

    def matches(self, claims: Mapping[str, Any]) -> bool:
        return all(c.test(claims.get(c.claim)) for c in self.clauses)

    def evaluate(self, claims: Mapping[str, Any]) -> list[ClauseResult]:
        """Every clause's verdict (for ``explain``: which clause failed, with what value)."""
        return [ClauseResult(c, claims.get(c.claim), c.test(claims.get(c.claim))) for c in self.clauses]

    def index_clause(self) -> Clause:
        """The clause an index files the expression under: an exact one if any, else the one with
        the longest literal prefix (so lookups narrow the candidates the most)."""
        literal = [c for c in self.clauses if c.is_literal]
        if literal:
            return max(literal, key=lambda c: len(c.comparand))
        return max(self.clauses, key=lambda c: len(c.literal_prefix))

    def clause_for(self, claim: str) -> Clause | None:
        return next((c for c in self.clauses if c.claim == claim), None)


@lru_cache(maxsize=65536)
def _glob(pattern: str) -> re.Pattern[str]:
    parts = []
    for ch in pattern:
        parts.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


_NAME_OPEN = "claims['"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str, at: int | None = None) -> ExpressionError:
        return ExpressionError(message, (self.pos if at is None else at) + 1)

    def spaces(self, *, required: bool) -> None:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1
        if required and self.pos == start:
            raise self.fail("expected a space")

    def word(self) -> tuple[str, int]:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in " '":
            self.pos += 1
        return self.text[start : self.pos], start

    def clause(self) -> Clause:
        start = self.pos
        if not self.text.startswith(_NAME_OPEN, self.pos):
            found = self.text[self.pos : self.pos + 8] or "the end"
            raise self.fail(f"expected claims['<name>'], found {found!r}")
        self.pos += len(_NAME_OPEN)
        end = self.text.find("']", self.pos)
        if end < 0:
            raise self.fail("the claim name is not closed with ']")
        name = self.text[self.pos : end]
        if not name or "'" in name:
            raise self.fail("a claim name is one or more characters without quotes")
        self.pos = end + 2
        self.spaces(required=True)
        op, at = self.word()
        if op not in ("eq", "matches"):
            raise self.fail(f"expected the operator eq or matches, found {op or 'nothing'!r}", at)
        self.spaces(required=True)
        comparand = self.comparand()
        return Clause(name, "eq" if op == "eq" else "matches", comparand, start + 1)

    def comparand(self) -> str:
        if self.pos >= len(self.text) or self.text[self.pos] != "'":
            raise self.fail("expected a comparand in single quotes")
        opened = self.pos
        self.pos += 1
        out: list[str] = []
        while True:
            quote = self.text.find("'", self.pos)
            if quote < 0:
                raise self.fail("the comparand's quote is never closed", opened)
            out.append(self.text[self.pos : quote])
            if self.text.startswith("''", quote):  # a quote written twice is one quote
                out.append("'")
                self.pos = quote + 2
                continue
            self.pos = quote + 1
            return "".join(out)

    def expression(self) -> tuple[Clause, ...]:
        self.spaces(required=False)
        clauses = [self.clause()]
        while True:
            self.spaces(required=False)
            if self.pos >= len(self.text):
                return tuple(clauses)
            word, at = self.word()
            if word != "and":
                raise self.fail(f"expected 'and' or the end of the expression, found {word!r}", at)
            self.spaces(required=True)
            clauses.append(self.clause())


@lru_cache(maxsize=65536)
def parse_expression(text: str, language_version: int = LANGUAGE_VERSION) -> ClaimsExpression:
    """The parsed expression, or ``ExpressionError`` naming the column of the first problem."""
    if language_version != LANGUAGE_VERSION:
        raise ExpressionError(f"languageVersion must be {LANGUAGE_VERSION}", 1)
    if len(text) > MAX_EXPRESSION:
        raise ExpressionError(f"the expression is longer than {MAX_EXPRESSION} characters", MAX_EXPRESSION)
    if not text.strip():
        raise ExpressionError("the expression is empty", 1)
    return ClaimsExpression(text, _Parser(text).expression())
