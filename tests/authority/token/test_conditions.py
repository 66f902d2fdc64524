"""CEL conditions on federated credentials: compiled once with the error's position, evaluated
to a verdict; only ``true`` passes."""

from __future__ import annotations

import pytest

from keyless.authority.token.conditions import ConditionError, compile_condition

CLAIMS = {"repository_owner": "contoso", "ref": "refs/heads/release/1.2", "run_attempt": "1"}


def test_a_true_condition_passes() -> None:
    condition = compile_condition(
        "claims.repository_owner == 'contoso' && claims.ref.startsWith('refs/heads/release/')"
    )
    assert condition.evaluate(CLAIMS).passed


def test_a_false_condition_fails_with_its_value() -> None:
    result = compile_condition("claims.repository_owner == 'fabrikam'").evaluate(CLAIMS)
    assert not result.passed and result.value is False and result.error is None


def test_a_non_boolean_result_does_not_pass() -> None:
    result = compile_condition("claims.repository_owner").evaluate(CLAIMS)
    assert not result.passed and "not true" in result.describe()


def test_a_missing_claim_is_an_evaluation_error_that_refuses() -> None:
    result = compile_condition("claims.environment == 'prod'").evaluate(CLAIMS)
    assert not result.passed and result.error == "the token has no claim 'environment'"


def test_has_tests_for_a_claim_without_error() -> None:
    condition = compile_condition("!has(claims.environment) || claims.environment == 'prod'")
    assert condition.evaluate(CLAIMS).passed


def test_a_syntax_error_names_its_column() -> None:
    with pytest.raises(ConditionError) as error:
        compile_condition("claims.repository_owner == ")
    assert error.value.column == 28
    assert "(column 28)" in str(error.value)


def test_a_syntax_error_on_a_later_line_names_line_and_column() -> None:
    with pytest.raises(ConditionError) as error:
        compile_condition("claims.a == 'x' &&\n  claims.b ==")
    assert (error.value.line, error.value.column) == (2, 14)


def test_only_claims_may_be_read() -> None:
    with pytest.raises(ConditionError) as error:
        compile_condition("claims.a == 'x' && request.time > 0")
    assert "unknown variable 'request'" in error.value.message
    assert error.value.column == 20
