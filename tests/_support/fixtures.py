"""Shared pytest fixtures; import them into a test module (or a conftest) by name::

from tests._support.fixtures import test_issuer  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests._support.oidc_issuer import TestIssuer

__all__ = ["test_issuer"]


@pytest.fixture
def test_issuer() -> Iterator[TestIssuer]:
    """A fresh :class:`TestIssuer` on 127.0.0.1, stopped after the test."""
    with TestIssuer() as issuer:
        yield issuer
