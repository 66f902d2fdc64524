"""The Grafana dashboard and the Prometheus alert rules in ``deploy/``: valid PromQL (checked by
promtool), and every metric they name is one a running keyless really exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
import yaml
from tests._services import program_or_skip
from tests._support.authority_server import RunningAuthority, run_authority

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "keyless-dashboard.json"
ALERTS = DEPLOY / "prometheus" / "keyless-alerts.yaml"
PROMETHEUS_OWN = {"up"}  # made by Prometheus itself for every target
_SUFFIXES = ("_bucket", "_count", "_sum", "_created")
_FUNCTIONS = {
    "rate",
    "sum",
    "by",
    "histogram_quantile",
    "time",
    "max",
    "min",
    "topk",
    "clamp_min",
    "increase",
    "and",
    "on",
}


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def alert_exprs() -> list[str]:
    return [rule["expr"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
    without_groupings = re.sub(r"\b(by|on)\s*\([^)]*\)", "", without_labels)
    words = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", without_groupings))
    return {w for w in words if w not in _FUNCTIONS and not re.fullmatch(r"\d.*|e\d+", w)}


def exported(authority: RunningAuthority) -> set[str]:
    with httpx.Client(verify=authority.ssl_context(), timeout=10) as client:
        text = client.get(
            f"{authority.base_url}/metrics", headers={"Authorization": f"Bearer {authority.admin_key()}"}
        ).text
    names = set()
    for line in text.splitlines():
        match = re.match(r"# TYPE (\S+) (\S+)", line)
        if match:
            name, kind = match.groups()
            names.add(name)
            if kind == "histogram":
                names.update(name + suffix for suffix in _SUFFIXES)
    return names


def test_every_metric_in_the_dashboard_and_the_alerts_is_exported(tmp_path: Path) -> None:
    with run_authority(tmp_path / "authority") as authority:
        names = exported(authority)
    used = {name for expr in dashboard_exprs() + alert_exprs() for name in metric_names(expr)}
    assert {"keyless_tokens_refused_total", "keyless_guard_decisions_total"} <= used
    assert used - names - PROMETHEUS_OWN == set()


def test_the_alert_rules_pass_promtool() -> None:
    promtool = program_or_skip("promtool", "prometheus")
    checked = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = program_or_skip("promtool", "prometheus")
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"keyless:dashboard_query_{i}", "expr": e}
                    for i, e in enumerate(dashboard_exprs())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    checked = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
