"""The claimsMatchingExpression language (Graph beta, language version 1): parsing, errors with
their column, and matching."""

from __future__ import annotations

import pytest

from keyless.authority.token.expressions import ExpressionError, parse_expression


def test_a_single_clause_parses_to_claim_operator_and_comparand() -> None:
    parsed = parse_expression("claims['sub'] matches 'repo:contoso/*'")
    (clause,) = parsed.clauses
    assert (clause.claim, clause.op, clause.comparand) == ("sub", "matches", "repo:contoso/*")


def test_clauses_join_with_and() -> None:
    parsed = parse_expression("claims['sub'] eq 'a' and claims['job_workflow_ref'] matches 'o/r/*'")
    assert [c.claim for c in parsed.clauses] == ["sub", "job_workflow_ref"]


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("repo:contoso/*", "repo:contoso/app:ref:refs/heads/main", True),
        ("repo:contoso/*", "repo:Contoso/app", False),  # case-sensitive
        ("repo:contoso/?pp", "repo:contoso/app", True),
        ("repo:contoso/?pp", "repo:contoso/apps", False),  # whole value
        ("*:environment:prod", "repo:x/y:environment:prod", True),
        ("a.b", "axb", False),  # no regular expression leaks through
        ("a*", "a\nb", True),  # a wildcard spans any character
    ],
)
def test_matches_is_a_glob_over_the_whole_value(pattern: str, value: str, expected: bool) -> None:
    assert parse_expression(f"claims['sub'] matches '{pattern}'").matches({"sub": value}) is expected


def test_eq_is_exact_even_with_wildcard_characters() -> None:
    parsed = parse_expression("claims['sub'] eq 'a*'")
    assert parsed.matches({"sub": "a*"}) and not parsed.matches({"sub": "ab"})


def test_a_quote_written_twice_is_one_quote() -> None:
    parsed = parse_expression("claims['sub'] eq 'it''s'")
    assert parsed.clauses[0].comparand == "it's"
    assert str(parsed.clauses[0]) == "claims['sub'] eq 'it''s'"


def test_a_missing_claim_matches_nothing() -> None:
    assert not parse_expression("claims['ref'] matches '*'").matches({"sub": "x"})


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("claim['sub'] eq 'a'", 1, "expected claims['<name>']"),
        ("claims['sub'] equals 'a'", 15, "expected the operator eq or matches"),
        ("claims['sub'] eq a", 18, "single quotes"),
        ("claims['sub'] eq 'a", 18, "never closed"),
        ("claims['sub'] eq 'a' or claims['x'] eq 'b'", 22, "expected 'and'"),
        ("claims['sub' eq 'a'", 9, "claim name is not closed"),
        ("claims['sub']eq 'a'", 14, "expected a space"),
        ("", 1, "empty"),
    ],
)
def test_a_parse_error_names_its_column(text: str, column: int, words: str) -> None:
    with pytest.raises(ExpressionError) as error:
        parse_expression(text)
    assert error.value.column == column
    assert words in error.value.message


def test_only_language_version_1_exists() -> None:
    with pytest.raises(ExpressionError, match="languageVersion"):
        parse_expression("claims['sub'] eq 'a'", 2)


def test_the_index_clause_prefers_an_exact_clause_then_the_longest_prefix() -> None:
    parsed = parse_expression(
        "claims['sub'] matches 'repo:c*' and claims['job_workflow_ref'] matches 'c/shared/*'"
    )
    assert parsed.index_clause().claim == "job_workflow_ref"
    parsed = parse_expression("claims['sub'] matches 'repo:contoso/*' and claims['repository_owner'] eq 'x'")
    assert parsed.index_clause().claim == "repository_owner"
