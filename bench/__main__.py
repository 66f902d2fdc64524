"""``make bench``: every benchmark in one run, each printing its figures as ratios against the raw
`cryptography` ceiling it measures itself (load comes from second processes on loopback); the
directory bench, which does no crypto, prints absolute times."""

from __future__ import annotations

import subprocess
import sys

BENCHES = [
    ("authority", ["bench.bench_authority", "--seconds", "10"]),
    ("metadata", ["bench.bench_metadata", "--seconds", "5"]),
    ("guard", ["bench.bench_guard", "--seconds", "3"]),
    ("credential", ["bench.bench_credential"]),
    ("directory", ["bench.bench_directory"]),
    ("trust rules", ["bench.bench_matching"]),
    ("console", ["bench.bench_console"]),
]


def main() -> int:
    failed = 0
    for name, args in BENCHES:
        print(f"== {name} ==", flush=True)
        failed += subprocess.run([sys.executable, "-m", *args], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
