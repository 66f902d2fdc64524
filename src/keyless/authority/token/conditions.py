"""CEL conditions on federated identity credentials, in the spirit of Google's ``attribute_condition``.

A credential may carry ``condition``: a CEL expression over ``claims`` (the verified assertion's
claims), e.g. ``claims.repository_owner == 'contoso' && claims.ref.startsWith('refs/heads/release/')``.
It is compiled once, when the credential is written (a syntax error names its column), and
evaluated only for a credential that already matched issuer, audience and subject or expression.
Only ``true`` passes: ``false``, any other value, and an evaluation error (a missing claim, a type
mismatch) refuse, and ``explain`` shows which.

The implementation is ``common-expression-language`` (the Rust ``cel`` crate behind a Python
binding). Measured against the pure-Python ``cel-python`` on the conditions above: about 17 us per
evaluation against 270 us, and the error positions of the CEL reference parser; docs/trust-rules.md
has the comparison.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["MAX_CONDITION", "Condition", "ConditionError", "ConditionResult", "compile_condition"]

MAX_CONDITION = 2000  # characters
_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(.*)")


class ConditionError(ValueError):
    """A condition that does not compile; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, column: int, line: int = 1) -> None:
        where = f"line {line}, column {column}" if line > 1 else f"column {column}"
        super().__init__(f"{message} ({where})")
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True, slots=True)
class ConditionResult:
    passed: bool
    value: object  # what the expression returned, or None after an error
    error: str | None = None

    def describe(self) -> str:
        if self.error is not None:
            return f"evaluation failed: {self.error}"
        return f"evaluated to {self.value!r}" if self.passed else f"evaluated to {self.value!r}, not true"


@dataclass(frozen=True)
class Condition:
    source: str
    _program: Any

    def evaluate(self, claims: Mapping[str, Any]) -> ConditionResult:
        try:
            value = self._program.execute({"claims": dict(claims)})
        except Exception as exc:  # the binding raises KeyError, TypeError, ValueError, RuntimeError
            return ConditionResult(False, None, _evaluation_error(exc))
        return ConditionResult(value is True, value)


def _evaluation_error(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"the token has no claim {exc.args[0]!r}" if exc.args else "a claim is missing"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]


def _compile_error(exc: Exception) -> ConditionError:
    text = str(exc)
    found = _POSITION.search(text)
    if found is None:
        return ConditionError(text.splitlines()[0][:300] if text else "the condition does not compile", 1)
    line, column, message = int(found.group(1)), int(found.group(2)), found.group(3)
    return ConditionError(message.strip()[:300], column, line)  # CEL's columns are 1-based


@lru_cache(maxsize=65536)
def compile_condition(source: str) -> Condition:
    """The compiled condition, or ``ConditionError`` with the position of the problem. Only the
    variable ``claims`` may be used."""
    import cel  # a compiled extension: imported where conditions are used, not by the light core

    if len(source) > MAX_CONDITION:
        raise ConditionError(f"the condition is longer than {MAX_CONDITION} characters", MAX_CONDITION)
    if not source.strip():
        raise ConditionError("the condition is empty", 1)
    try:
        program = cel.compile(source)
    except Exception as exc:  # the binding reports every compile error as one exception type
        raise _compile_error(exc) from None
    unknown = sorted(set(program.variables()) - {"claims"})
    if unknown:
        name = unknown[0]
        column = _column_of(source, name)
        raise ConditionError(f"unknown variable {name!r}: a condition reads only 'claims'", column)
    return Condition(source, program)


def _column_of(source: str, name: str) -> int:
    found = re.search(rf"(?<![\w.]){re.escape(name)}\b", source)
    return found.start() + 1 if found else 1
