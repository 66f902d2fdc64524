"""One line-numbered YAML reader, for trust files and the guard's and the emulator's configurations.

``load_yaml`` parses with PyYAML's safe loader into plain data whose mappings (``LineMap``) and
lists (``LineList``) remember where they and each of their members start (1-based lines), and
which keys were given more than once (YAML would silently keep the last). A syntax error is a
``ConfigurationError`` naming ``source:line``. PyYAML is imported when a document is read, so the
packages that import this module still import without it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from functools import cache
from typing import Any

from keyless.errors import ConfigurationError

__all__ = ["LineList", "LineMap", "PathKey", "load_yaml", "located"]

PathKey = tuple[str | int, ...]


class LineMap(dict[object, object]):
    """A YAML mapping that remembers where it, each key and each value started."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[object, int] = {}
        self.value_lines: dict[object, int] = {}
        self.duplicates: list[tuple[object, int]] = []


class LineList(list[object]):
    """A YAML sequence that remembers where it and each item started."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


@cache
def _loader_class() -> Any:
    import yaml

    class LineLoader(yaml.SafeLoader):
        """The safe loader, building ``LineMap`` / ``LineList``."""

    def construct_map(loader: yaml.SafeLoader, node: yaml.Node) -> LineMap:
        assert isinstance(node, yaml.MappingNode)
        loader.flatten_mapping(node)
        result = LineMap(node.start_mark.line + 1)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                key = str(key)
            line = key_node.start_mark.line + 1
            if key in result:
                result.duplicates.append((key, line))
            result[key] = loader.construct_object(value_node, deep=True)
            result.key_lines[key] = line
            result.value_lines[key] = value_node.start_mark.line + 1
        return result

    def construct_seq(loader: yaml.SafeLoader, node: yaml.Node) -> LineList:
        assert isinstance(node, yaml.SequenceNode)
        result = LineList(node.start_mark.line + 1)
        for item in node.value:
            result.append(loader.construct_object(item, deep=True))
            result.item_lines.append(item.start_mark.line + 1)
        return result

    LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_map)
    LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, construct_seq)
    return LineLoader


def load_yaml(text: str, source: str) -> object:
    """Parse one YAML document; a syntax error raises ``ConfigurationError`` with ``source:line``."""
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML comes with keyless[server]
        raise ConfigurationError(
            f"{source}: reading YAML needs PyYAML (pip install 'keyless[server]')"
        ) from None
    loader = _loader_class()(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigurationError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    finally:
        loader.dispose()


def located(data: object, path: PathKey = ()) -> Iterator[tuple[PathKey, int, object]]:
    """Every value under ``data`` with its path and line, parents before children."""
    line = getattr(data, "line", None)
    if line is not None and not path:
        yield path, line, data
    if isinstance(data, LineMap):
        for key, value in data.items():
            child = (*path, str(key))
            yield child, data.value_lines[key], value
            yield from located(value, child)
    elif isinstance(data, LineList):
        for index, item in enumerate(data):
            child = (*path, index)
            yield child, data.item_lines[index], item
            yield from located(item, child)
