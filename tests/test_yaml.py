"""The one line-numbered YAML reader: lines of keys, values and items, duplicates, syntax errors."""

from __future__ import annotations

import pytest

from keyless._yaml import LineList, LineMap, load_yaml, located
from keyless.errors import ConfigurationError

TEXT = """\
name: one
nested:
  inner: 2
items:
  - a
  - b: c
name: again
"""


def test_mappings_and_lists_remember_their_lines_and_duplicates() -> None:
    data = load_yaml(TEXT, "doc.yaml")
    assert isinstance(data, LineMap)
    assert data.key_lines["nested"] == 2 and data.value_lines["nested"] == 3
    assert data.duplicates == [("name", 7)]
    items = data["items"]
    assert isinstance(items, LineList) and items.item_lines == [5, 6]


def test_located_walks_every_value_with_its_path_and_line() -> None:
    lines = {path: line for path, line, _ in located(load_yaml(TEXT, "doc.yaml"))}
    assert lines[()] == 1
    assert lines[("nested", "inner")] == 3
    assert lines[("items", 1, "b")] == 6


def test_a_syntax_error_names_the_source_and_line() -> None:
    with pytest.raises(ConfigurationError, match=r"doc\.yaml:2: not valid YAML"):
        load_yaml("a: 1\n  b: 2\n", "doc.yaml")


def test_an_empty_document_is_none() -> None:
    assert load_yaml("", "doc.yaml") is None
