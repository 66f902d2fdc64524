"""schemathesis against the admin API's own OpenAPI document: every operation, with generated
paths, queries and bodies, with the admin key and without one. A 500 (or a crash) is a failure
either way; without the key every answer must be 401 (an unauthenticated 2xx is a failure)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from keyless.authority import ADMIN_KEY_FILE, Authority, create_app
from keyless.config import load_authority_settings

# Scale with the active profile: `make test` tries each of the ~33 operations a few times,
# `make fuzz` many more.
PER_OPERATION = max(5, settings().max_examples // 20)


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authority]:
    data_dir: Path = tmp_path_factory.mktemp("admin-fuzz")
    running = Authority.open(load_authority_settings(data_dir=data_dir, tls=False))
    yield running
    running.store.close()


@pytest.fixture(scope="module")
def admin_key(authority: Authority) -> str:
    return (authority.settings.data_dir / ADMIN_KEY_FILE).read_text().strip()


@pytest.fixture(scope="module")
def operations(authority: Authority) -> list[Any]:
    # schemathesis's own pytest plugin does not run under this pytest; its strategies are driven
    # with hypothesis directly instead, one run per operation.
    schema = schemathesis.openapi.from_asgi("/admin/openapi.json", create_app(authority, background=False))
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) > 25  # every route of the admin API is described
    return found


def _each_operation(operations: list[Any], check: Callable[[Any], None]) -> None:
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            check(case)

        run()


def test_no_admin_operation_answers_500_with_the_key(operations: list[Any], admin_key: str) -> None:
    def check(case: Any) -> None:
        response = case.call(headers={"Authorization": f"Bearer {admin_key}"})
        assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])

    _each_operation(operations, check)


def test_no_admin_operation_answers_anything_but_401_without_the_key(operations: list[Any]) -> None:
    def check(case: Any) -> None:
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        response = case.call()
        where = (case.method, case.formatted_path, response.status_code, response.text[:200])
        if response.status_code == 404:
            # A path no route under /admin can match (a newline in a segment) is the authority's
            # own 404, never an answer of the admin API.
            assert response.json()["error"] == "not_found", where
        else:
            assert response.status_code == 401, where

    _each_operation(operations, check)
