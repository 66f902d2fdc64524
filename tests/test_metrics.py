"""Metrics under ``keyless serve --workers 2``: one set for the port whichever worker answers (the
workers write prometheus-client's multiprocess files), on the main port with the admin key and on
the ``KEYLESS_METRICS_ADDRESS`` listener; totals survive a worker's death."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
from tests._support.net import free_ports
from tests._support.processes import Server

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"  # no such tenant here: every request is refused


def refused_total(text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("keyless_tokens_refused_total{")
    )


def pids(text: str) -> set[str]:
    return {
        line.split('pid="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("process_resident_memory_bytes{")
    }


def test_two_workers_report_one_set_on_both_addresses_and_keep_totals_when_one_dies(tmp_path: Path) -> None:
    port, metrics_port = free_ports(2)
    server = Server(
        ["serve", "--data-dir", str(tmp_path / "data"), "--port", str(port), "--workers", "2"],
        env={"KEYLESS_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}"},
    )
    try:
        workers = server.serving_workers(2)
        for _ in range(40):  # a new connection each: the kernel spreads them over both workers
            answer = httpx.post(
                f"https://localhost:{port}/{TENANT}/oauth2/v2.0/token",
                data={"grant_type": "client_credentials", "client_id": "x"},
                verify=False,
                timeout=10,
            )
            assert answer.status_code == 400
        listener = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert refused_total(listener) == 40
        assert pids(listener) == {str(pid) for pid in workers.values()}
        key = (tmp_path / "data" / "admin.key").read_text().strip()
        for _ in range(4):  # whichever worker answers, the same totals
            scraped = httpx.get(
                f"https://localhost:{port}/metrics",
                headers={"Authorization": f"Bearer {key}"},
                verify=False,
                timeout=10,
            )
            assert scraped.status_code == 200
            assert refused_total(scraped.text) == 40
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            after = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
            if str(workers[0]) not in pids(after) and len(pids(after)) == 2:
                break
            time.sleep(0.1)
        assert str(workers[0]) not in pids(after)
        assert refused_total(after) == 40  # the dead worker's counts stay in the totals
    finally:
        server.stop()
