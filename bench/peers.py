"""``make bench-peers``: keyless and panva/oidc-provider side by side under one load generator.

Runs the peer harness (``../shared/bench/peers/oidc-provider/vs-keyless.sh``, or ``--peers DIR``)
against this checkout's virtualenv: ``keyless serve --workers 2`` over HTTPS doing federated
client_credentials, interleaved with oidc-provider (2 workers, HTTPS, private_key_jwt), REPS rounds,
with the raw ``cryptography`` ceiling before and after. Then prints the table docs/performance.md
quotes: tokens/s, server CPU cores, tokens per server CPU-second, and the ratios.

Both sides pay one RS256 verify and one RS256 sign per token, so "tokens per server CPU-second"
divided by the one-core ceiling says how much of a token's CPU is anything but that crypto.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PEERS = ROOT.parent / "shared" / "bench" / "peers" / "oidc-provider"


def _results_path(stderr: str, workdir: Path) -> Path:
    for line in reversed(stderr.splitlines()):
        if line.startswith("results: "):
            return workdir / line.removeprefix("results: ").strip()
    raise SystemExit("the harness did not say where its results are:\n" + stderr[-2000:])


def _runs(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    ceilings, ours, peers = [], [], []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if "tokens_per_s_1proc" in row:
            ceilings.append(row)
        elif row.get("server") == "keyless":
            ours.append(row)
        elif "peer" in row:
            peers.append(row)
    return ceilings, ours, peers


def _per_cpu(row: dict[str, Any]) -> float:
    cores = float(row.get("server_cpu_cores") or 0.0)
    return float(row["rps"]) / cores if cores > 0 else float("nan")


def table(path: Path) -> str:
    """The side-by-side table for one results file."""
    ceilings, ours, peers = _runs(path)
    one_core_runs = [float(c["tokens_per_s_1proc"]) for c in ceilings]
    one_core = statistics.median(one_core_runs)
    lines = [
        f"results: {path}",
        f"raw ceiling (1 RS256 verify + 1 sign, python + cryptography): {one_core:,.0f} tokens/s on one core"
        f" (runs: {', '.join(f'{v:,.0f}' for v in one_core_runs)})",
        "",
        "| | tokens/s (runs) | server CPU cores | tokens per server CPU-second | x one-core ceiling |"
        " p50 / p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    medians: dict[str, tuple[float, float]] = {}
    for name, rows in (("keyless", ours), ("oidc-provider", peers)):
        if not rows:
            continue
        rps = [float(r["rps"]) for r in rows]
        cores = [float(r.get("server_cpu_cores") or 0.0) for r in rows]
        per_cpu = statistics.median(_per_cpu(r) for r in rows)
        medians[name] = (statistics.median(rps), per_cpu)
        lines.append(
            f"| {name} | {' / '.join(f'{v:,.0f}' for v in rps)} | {' / '.join(f'{c:.2f}' for c in cores)}"
            f" | {per_cpu:,.0f} | {per_cpu / one_core:.2f} |"
            f" {statistics.median(float(r['p50_ms']) for r in rows):.1f} /"
            f" {statistics.median(float(r['p99_ms']) for r in rows):.1f} | {sum(int(r['errors']) for r in rows)} |"
        )
    if len(medians) == 2:
        (ours_rps, ours_cpu), (peer_rps, peer_cpu) = medians["keyless"], medians["oidc-provider"]
        lines += [
            "",
            f"keyless / oidc-provider: {ours_rps / peer_rps:.2f}x tokens/s,"
            f" {ours_cpu / peer_cpu:.2f}x tokens per server CPU-second (medians)",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--peers", type=Path, default=Path(os.environ.get("KEYLESS_PEERS_DIR", DEFAULT_PEERS))
    )
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=ROOT / ".bench-peers")
    parser.add_argument("--results", type=Path, help="only print the table of an earlier results file")
    args = parser.parse_args(argv)
    if args.results is not None:
        print(table(args.results))
        return 0
    script = args.peers / "vs-keyless.sh"
    if not script.is_file():
        print(f"no peer harness at {script} (set KEYLESS_PEERS_DIR or --peers)", file=sys.stderr)
        return 2
    env = {
        **os.environ,
        "KEYLESS": str(Path(sys.executable).parent),
        "REPS": str(args.reps),
        "PEER_WORKDIR": str(args.workdir.resolve()),
    }
    done = subprocess.run(["bash", str(script)], env=env, stderr=subprocess.PIPE, text=True, check=False)
    sys.stderr.write(done.stderr[-4000:])
    if done.returncode != 0:
        return done.returncode
    print(table(_results_path(done.stderr, args.workdir.resolve())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
