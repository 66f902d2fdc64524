"""Typed reading of a YAML document that collects every problem, each with ``file:line`` and path.

The guard's configuration and policy are read through a :class:`Reader`: it walks the composed
YAML nodes once to learn the line of every value, refuses duplicate keys (which YAML would silently
collapse), and turns each wrong, missing or unknown option into one line of a
:class:`~keyless.errors.ConfigurationError` raised at the end, so that every mistake shows at once.
The lines come from the one line-numbered YAML reader, ``keyless._yaml``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

from keyless._yaml import LineMap, PathKey, load_yaml, located
from keyless.errors import ConfigurationError

__all__ = ["PathKey", "Reader", "read_yaml"]

T = TypeVar("T")


def _render(path: PathKey) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top level)"


class Reader:
    """Collects problems while typed values are read out of plain data (from YAML or a dict)."""

    def __init__(self, source: str = "<config>", lines: Mapping[PathKey, int] | None = None) -> None:
        self.source = source
        self.lines: Mapping[PathKey, int] = lines or {}
        self.problems: list[str] = []
        self.base_dir: Path | None = None

    def where(self, path: PathKey) -> str:
        probe = path
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe)
        return f"{self.source}:{line}" if line is not None else self.source

    def problem(self, path: PathKey, message: str) -> None:
        self.problems.append(f"{self.where(path)}: {_render(path)}: {message}")

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigurationError(self.problems)

    # -- shapes ------------------------------------------------------------------------------------

    def mapping(self, value: Any, path: PathKey, known: Collection[str]) -> dict[str, Any]:
        """``value`` as a mapping with string keys; unknown keys are problems (with a suggestion)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(path, f"expected a mapping, got {_kind(value)}")
            return {}
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                self.problem(path, f"option names must be text, got {key!r}")
                continue
            if key not in known:
                close = difflib.get_close_matches(key, list(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.problem((*path, key), f"unknown option{hint}; known: {', '.join(sorted(known))}")
                continue
            result[key] = item
        return result

    def text(self, data: Mapping[str, Any], path: PathKey, key: str, default: T) -> str | T:
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            self.problem((*path, key), f"expected non-empty text, got {_kind(value)}")
            return default
        return value.strip()

    def required_text(self, data: Mapping[str, Any], path: PathKey, key: str) -> str:
        value = self.text(data, path, key, None)
        if value is None and key not in data:
            self.problem((*path, key), "is required")
        return value or ""

    def text_list(self, data: Mapping[str, Any], path: PathKey, key: str) -> tuple[str, ...]:
        """A list of non-empty strings; a single string is accepted as a list of one."""
        value = data.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.problem((*path, key), f"expected a list of text, got {_kind(value)}")
            return ()
        items: list[str] = []
        for index, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, str | int) or not str(item).strip():
                self.problem((*path, key, index), f"expected non-empty text, got {_kind(item)}")
                continue
            items.append(str(item).strip())
        return tuple(items)

    def number(
        self,
        data: Mapping[str, Any],
        path: PathKey,
        key: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        value = data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem((*path, key), f"expected a number, got {_kind(value)}")
            return default
        if minimum is not None and value < minimum:
            self.problem((*path, key), f"must be at least {minimum:g}, got {value:g}")
            return default
        if maximum is not None and value > maximum:
            self.problem((*path, key), f"must be at most {maximum:g}, got {value:g}")
            return default
        return float(value)

    def integer(
        self, data: Mapping[str, Any], path: PathKey, key: str, default: int, *, minimum: int = 0
    ) -> int:
        value = data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem((*path, key), f"expected a whole number, got {_kind(value)}")
            return default
        if value < minimum:
            self.problem((*path, key), f"must be at least {minimum}, got {value}")
            return default
        return value

    def flag(self, data: Mapping[str, Any], path: PathKey, key: str, default: bool) -> bool:
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem((*path, key), f"expected true or false, got {_kind(value)}")
            return default
        return value

    def choice(
        self, data: Mapping[str, Any], path: PathKey, key: str, choices: Collection[str], default: str
    ) -> str:
        value = data.get(key, default)
        if value not in choices:
            self.problem((*path, key), f"must be one of {', '.join(choices)}; got {value!r}")
            return default
        return str(value)

    def items(
        self, data: Mapping[str, Any], path: PathKey, key: str, read: Callable[[Any, PathKey], T | None]
    ) -> tuple[T, ...]:
        """Read each element of the list ``data[key]`` with ``read`` (which reports its own problems)."""
        value = data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem((*path, key), f"expected a list, got {_kind(value)}")
            return ()
        found: list[T] = []
        for index, item in enumerate(value):
            result = read(item, (*path, key, index))
            if result is not None:
                found.append(result)
        return tuple(found)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{value!r} ({type(value).__name__})"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def read_yaml(text: str, source: str) -> tuple[Any, Reader]:
    """Parse ``text``; return the data and a :class:`Reader` that knows every value's line.

    A YAML syntax error, or a key given twice, raises ``ConfigurationError`` right away.
    """
    data = load_yaml(text, source)
    lines: dict[PathKey, int] = {}
    problems: list[str] = []
    for path, line, value in located(data):
        lines[path] = line
        if isinstance(value, LineMap):
            for key, key_line in value.duplicates:
                problems.append(f"{source}:{key_line}: {_render((*path, str(key)))}: given more than once")
    if problems:
        raise ConfigurationError(problems)
    return _plain(data), Reader(source, lines)
