"""The deployment files in ``deploy/``: the Kubernetes manifests render with kustomize and pass the
Kubernetes API schema, the compose file passes the compose-spec schema, the systemd unit passes
``systemd-analyze verify``, and what they configure is what keyless reads (settings names, guard
configurations, the image's entry point)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from keyless.config import AuthoritySettings
from keyless.guard import load_config
from keyless.tls import ensure_local_tls

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.30.0"
# Every KEYLESS_ variable a deployment file sets must be one keyless reads.
KNOWN_VARIABLES = {f"KEYLESS_{name.upper()}" for name in AuthoritySettings.model_fields} | {
    "KEYLESS_LOG_FORMAT",
    "KEYLESS_LOG_LEVEL",
}


def _renderer() -> list[str] | None:
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return None


def _objects() -> list[dict[str, Any]]:
    """The rendered objects; without a kustomize renderer, the kustomization's resources as written."""
    renderer = _renderer()
    if renderer is not None:
        rendered = subprocess.run(
            [*renderer, str(K8S)], capture_output=True, text=True, timeout=60, check=True
        )
        return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [
        doc
        for name in kustomization["resources"]
        for doc in yaml.safe_load_all((K8S / name).read_text())
        if doc
    ]


def _by_kind_and_name(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


@pytest.mark.skipif(_renderer() is None, reason="no kustomize renderer (kubectl or kustomize) installed")
def test_kustomize_renders_the_manifests_with_generated_secret_and_image() -> None:
    objects = _by_kind_and_name(_objects())
    secrets = [name for kind, name in objects if kind == "Secret"]
    assert len(secrets) == 1 and secrets[0].startswith("keyless-authority-")  # name with content hash
    authority = objects[("Deployment", "keyless-authority")]
    container = authority["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": secrets[0]}}]
    assert container["image"].endswith("keyless:0.1.0")
    assert all(
        o["metadata"].get("namespace") == "keyless" for (kind, _), o in objects.items() if kind != "Namespace"
    )


def test_rendered_objects_pass_the_kubernetes_schema() -> None:
    objects = _objects()
    assert len(objects) >= 10
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_a_schema_error_in_a_manifest_is_caught() -> None:
    authority = _by_kind_and_name(_objects())[("Deployment", "keyless-authority")]
    authority["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(authority, KUBERNETES_VERSION, strict=True)


def test_the_authority_runs_two_probed_replicas_protected_by_a_disruption_budget() -> None:
    objects = _by_kind_and_name(_objects())
    authority = objects[("Deployment", "keyless-authority")]
    assert authority["spec"]["replicas"] == 2
    pod = authority["spec"]["template"]
    container = pod["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KEYLESS_TLS_CERT"].startswith("/etc/keyless/tls/")
    grace = int(env["KEYLESS_SHUTDOWN_GRACE"])
    assert pod["spec"]["terminationGracePeriodSeconds"] > grace
    budget = objects[("PodDisruptionBudget", "keyless-authority")]
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    service = objects[("Service", "keyless-authority")]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert env["KEYLESS_PUBLIC_URL"] == "https://keyless-authority.keyless.svc:8443"


def test_every_pod_runs_as_the_images_unprivileged_user_with_a_read_only_root() -> None:
    for obj in _objects():
        if obj["kind"] != "Deployment":
            continue
        spec = obj["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_the_guard_sidecar_fronts_an_api_listening_on_loopback_only(tmp_path: Path) -> None:
    objects = _by_kind_and_name(_objects())
    pod = objects[("Deployment", "blob-api")]["spec"]["template"]["spec"]
    api, guard = pod["containers"]
    assert "127.0.0.1" in api["command"]
    assert guard["args"][:2] == ["guard", "run"]
    assert guard["args"][guard["args"].index("--upstream") + 1] == "http://127.0.0.1:8080"
    config_map = next(
        o for (kind, name), o in objects.items() if kind == "ConfigMap" and name.startswith("blob-api-guard")
    )
    _check_guard_config(config_map["data"]["guard.yaml"], tmp_path)


def test_the_workload_gets_a_projected_token_for_the_exchange_audience() -> None:
    objects = _by_kind_and_name(_objects())
    pod = objects[("Deployment", "reporter")]["spec"]["template"]["spec"]
    projected = pod["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
    assert projected["audience"] == "api://AzureADTokenExchange"
    container = pod["containers"][0]
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == pod["volumes"][0]["name"])
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["AZURE_FEDERATED_TOKEN_FILE"] == f"{mount}/{projected['path']}"
    assert env["AZURE_AUTHORITY_HOST"] == "https://keyless-authority.keyless.svc:8443"
    assert "from keyless.credential import WorkloadIdentityCredential" in container["command"][2]
    compile(container["command"][2], "reporter", "exec")  # the inline program is valid Python


def test_every_keyless_variable_the_manifests_set_is_one_keyless_reads() -> None:
    for obj in _objects():
        if obj["kind"] != "Deployment":
            continue
        for container in obj["spec"]["template"]["spec"]["containers"]:
            names = {e["name"] for e in container.get("env", []) if e["name"].startswith("KEYLESS_")}
            assert names <= KNOWN_VARIABLES, names - KNOWN_VARIABLES
    secret_env = (K8S / "authority.env").read_text()
    names = set(re.findall(r"^(KEYLESS_\w+)=", secret_env, re.MULTILINE))
    assert names and names <= KNOWN_VARIABLES


def _check_guard_config(text: str, tmp_path: Path) -> None:
    """The guard configuration loads (its CA bundle path replaced by a real CA on this machine)."""
    ca = ensure_local_tls(tmp_path / "tls-data").ca_cert
    assert ca is not None
    data = yaml.safe_load(text)
    data["ca_bundle"] = str(ca)
    path = tmp_path / "guard.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(path)
    assert config.issuers and config.audiences == ("api://blob-api",)


# -- compose -----------------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _compose_schema() -> dict[str, Any]:
    schema = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    loaded: dict[str, Any] = json.loads(schema.read_text())
    return loaded


def test_compose_file_passes_the_compose_spec_schema() -> None:
    schema = _compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(_compose())
    ]
    assert not errors


def test_the_compose_spec_schema_catches_a_mistake() -> None:
    broken = _compose()
    broken["services"]["guard"]["helthcheck"] = broken["services"]["guard"].pop("healthcheck")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _compose_schema())


def test_compose_runs_two_authorities_on_postgres_and_a_guard_on_localhost_ports(tmp_path: Path) -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "authority-1", "authority-2", "demo-api", "guard"} <= services.keys()
    for name in ("authority-1", "authority-2"):
        node = services[name]
        assert node["environment"]["KEYLESS_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert node["command"][0] == "serve"
        assert "authority" in node["networks"]["default"]["aliases"]
        assert set(node["environment"]) <= KNOWN_VARIABLES
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no health check"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"
        for dependency in service.get("depends_on", {}):
            assert dependency in services
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts a missing {source}"
    build = services["authority-1"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    _check_guard_config((DEPLOY / "guard.yaml").read_text(), tmp_path)


# -- systemd -----------------------------------------------------------------------------------------


def _unit() -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in (DEPLOY / "systemd" / "keyless.service").read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            entries[key] = value
    return entries


def test_the_systemd_unit_serves_and_outwaits_the_drain() -> None:
    unit = _unit()
    assert unit["ExecStart"] == "/opt/keyless/bin/keyless serve"
    assert unit["KillSignal"] == "SIGTERM"
    settings = (DEPLOY / "systemd" / "keyless.service").read_text()
    grace = int(re.search(r"KEYLESS_SHUTDOWN_GRACE=(\d+)", settings).group(1))  # type: ignore[union-attr]
    assert int(unit["TimeoutStopSec"]) > grace
    names = set(re.findall(r"(KEYLESS_\w+)=", settings))
    assert names <= KNOWN_VARIABLES, names - KNOWN_VARIABLES


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this checkout's keyless for the check.
    keyless = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / "keyless"
    if not keyless.exists():
        keyless = Path(shutil.which("keyless") or "/nonexistent")
    unit = tmp_path / "keyless.service"
    unit.write_text(
        (DEPLOY / "systemd" / "keyless.service").read_text().replace("/opt/keyless/bin/keyless", str(keyless))
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "keyless.service" not in result.stderr, result.stderr
