"""``make bench-peers``'s table, from a results file the peer harness wrote (2026-12-05)."""

from __future__ import annotations

from pathlib import Path

from bench.peers import table

RESULTS = Path(__file__).parent / "fixtures" / "vs-keyless-results.jsonl"


def test_the_table_gives_tokens_per_cpu_second_and_the_ratios_to_the_peer_and_the_ceiling() -> None:
    printed = table(RESULTS)
    assert "3,470 tokens/s on one core (runs: 3,287, 3,652)" in printed
    keyless = next(line for line in printed.splitlines() if line.startswith("| keyless |"))
    assert "1,556 / 2,641 / 2,201" in keyless and "| 1,775 | 0.51 |" in keyless
    peer = next(line for line in printed.splitlines() if line.startswith("| oidc-provider |"))
    assert "| 1,094 | 0.32 |" in peer
    assert "1.85x tokens/s, 1.62x tokens per server CPU-second" in printed
