"""Imports run one way, through front doors, without cycles (read from the source with ``ast``).

The direction is ``cli -> dev -> authority | metadata | guard | credential -> trust -> jose``.
The modules at the root of ``keyless`` (``errors``, ``config``, ``tls``, ``_yaml``, ``_net`` ...)
are the foundation every package may use, except ``config`` (the authority's settings, which use
trust's defaults) that sits between trust and the services; ``__main__`` and ``_docs`` (which
documents the CLI) sit above the CLI.
A package imports another only through its front door (``keyless.trust``, never
``keyless.trust._claims``), and module-level imports form no cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "keyless"

RANK: dict[str, float] = {
    "jose": 1,
    "trust": 2,
    "config": 2.5,  # the authority's settings, which use trust's defaults
    "authority": 3,
    "metadata": 3,
    "guard": 3,
    "credential": 3,
    "dev": 4,
    "cli": 5,
}
PACKAGES = {"jose", "trust", "authority", "metadata", "guard", "credential", "dev", "cli"}
ABOVE_CLI = {"__main__", "_docs"}


@dataclass(frozen=True, slots=True)
class Import:
    source: str  # dotted module name of the importing file
    target: str  # dotted module name imported
    line: int
    top_level: bool  # runs when the importing module is imported (not in a function or TYPE_CHECKING)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "migrations" not in p.parts}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, top_level: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, top_level
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) or (
            isinstance(child, ast.If) and _is_type_checking(child)
        ):
            yield from _walk(child, False)
        else:
            yield from _walk(child, top_level)


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    is_package = path.name == "__init__.py"
    for node, top_level in _walk(tree, True):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("keyless"):
                    yield Import(name, alias.name, node.lineno, top_level)
            continue
        base = node.module or ""
        if node.level:
            anchor = name.split(".") if is_package else name.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        if not base.startswith("keyless"):
            continue
        for alias in node.names:
            # ``from keyless.x import y`` imports the module keyless.x.y when there is one.
            candidate = f"{base}.{alias.name}"
            yield Import(name, candidate if candidate in modules else base, node.lineno, top_level)


def all_imports() -> list[Import]:
    modules = all_modules()
    return [imp for name, path in modules.items() for imp in imports_of(name, path, modules)]


def package_of(module: str) -> str:
    """``keyless.authority.token.minting`` -> ``authority``; root modules are their own package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def rank_of(package: str) -> float:
    if package in RANK:
        return RANK[package]
    return RANK["cli"] + 1 if package in ABOVE_CLI else 0


def is_root_module(package: str) -> bool:
    return package not in PACKAGES


def violation(imp: Import) -> str | None:
    src, dst = package_of(imp.source), package_of(imp.target)
    if src == dst or not dst:
        return None
    where = f"{imp.source}:{imp.line} imports {imp.target}"
    if rank_of(dst) >= rank_of(src) and not (rank_of(src) == rank_of(dst) == 0):
        return f"{where}: {src or 'keyless'} may not depend on {dst}"
    if not is_root_module(dst) and imp.target != f"keyless.{dst}":
        return f"{where}: use the front door keyless.{dst}"
    return None


def test_every_import_follows_the_direction_and_uses_front_doors() -> None:
    problems = [v for imp in all_imports() if (v := violation(imp)) is not None]
    assert problems == [], "\n".join(problems)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_module_level_imports_form_no_cycle() -> None:
    modules = all_modules()
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for imp in all_imports():
        if imp.target in modules and imp.target != imp.source:
            edges[imp.source].add(imp.target)
            # Importing a.b.c runs a/__init__ and a/b/__init__ first.
            parts = imp.target.split(".")
            for i in range(2, len(parts)):
                parent = ".".join(parts[:i])
                if parent in modules and parent != imp.source and not imp.source.startswith(parent + "."):
                    edges[imp.source].add(parent)
    assert find_cycle(edges) is None


# -- the checker itself: each rule fires on a made-up import ----------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        ("keyless.trust._fetch", "keyless.authority", "may not depend on authority"),
        ("keyless.guard._gate", "keyless.credential", "may not depend on credential"),
        ("keyless.jose._jws", "keyless.trust", "may not depend on trust"),
        ("keyless.errors", "keyless.jose", "may not depend on jose"),
        ("keyless.dev._stack", "keyless.cli", "may not depend on cli"),
        ("keyless.cli._trust", "keyless.authority.trustfile.read", "use the front door"),
        ("keyless.guard._verifier", "keyless.trust._claims", "use the front door"),
        ("keyless.cli._serve", "keyless.authority", None),
        ("keyless.authority._service", "keyless.config", None),
        ("keyless.authority.token.client_auth", "keyless.authority.token.aadsts", None),
        ("keyless.config", "keyless.errors", None),
    ],
)
def test_the_rules_refuse_what_they_should(source: str, target: str, expected: str | None) -> None:
    found = violation(Import(source, target, 1, True))
    if expected is None:
        assert found is None
    else:
        assert found is not None and expected in found


def test_a_cycle_is_found() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
