"""Reference pages are generated from the code; this fails when one is out of date."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyless._docs import pages

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference"


@pytest.mark.parametrize("name", sorted(pages()))
def test_reference_page_matches_the_code(name: str) -> None:
    assert (REFERENCE / name).read_text() == pages()[name], (
        f"docs/reference/{name} is stale: run `python -m keyless._docs docs/reference`"
    )


def test_readme_links_resolve() -> None:
    import re

    root = REFERENCE.parents[1]
    readme = (root / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith("http"):
            assert (root / target).exists(), f"README links to a missing {target}"
