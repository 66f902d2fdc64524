"""Tables on a narrow terminal become records (no folded ids or URLs); wide ones stay tables."""

from __future__ import annotations

import pytest

from keyless.cli import _common

ROWS = [
    [
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "Contoso",
        "https://login.example.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
    ],
    [
        "0d1c0a8e-2b1f-4c83-9f57-5a3c1e2d4b6f",
        "Fabrikam",
        "https://login.example.com/0d1c0a8e-2b1f-4c83-9f57-5a3c1e2d4b6f/v2.0",
    ],
]


def test_a_table_too_wide_for_80_columns_prints_as_records(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_common, "_width", lambda: 80)
    _common.table(["id", "displayName", "issuer"], ROWS)
    printed = capsys.readouterr().out
    assert all(len(line) <= 80 or "https://" in line for line in printed.splitlines())
    assert "id:          72f988bf-86f1-41af-91ab-2d7cd011db47" in printed
    assert f"issuer:      {ROWS[1][2]}" in printed  # whole, never folded
    assert "┃" not in printed and "│" not in printed


def test_a_table_that_fits_stays_a_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_common, "_width", lambda: 200)
    _common.table(["id", "displayName"], [row[:2] for row in ROWS])
    printed = capsys.readouterr().out
    assert "displayName" in printed.splitlines()[1] and ("│" in printed or "┃" in printed)
