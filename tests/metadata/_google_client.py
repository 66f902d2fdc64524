"""Run unmodified google-auth against the emulator in a fresh process and print JSON results.

google-auth reads ``GCE_METADATA_HOST`` when ``google.auth`` is first imported, so each scenario
runs in its own interpreter with the environment set by :func:`run_google_auth`::

    python tests/metadata/_google_client.py '[{"op": "fetch_id_token", "audience": "api://x"}]'

Each step's result (or ``{"error": ExceptionName, "message": ...}``) is one item of the JSON
list printed on stdout.
"""

from __future__ import annotations

import calendar
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


def run_google_auth(
    host_port: str, steps: Sequence[Mapping[str, Any]], *, home: Path, timeout: float = 30
) -> list[dict[str, Any]]:
    """Run ``steps`` in a subprocess whose google-auth talks to the emulator at ``host_port``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GOOGLE_APPLICATION_CREDENTIALS", "NO_GCE_CHECK", "GCE_METADATA_ROOT")
    }
    env.update(
        GCE_METADATA_HOST=host_port,
        GCE_METADATA_IP=host_port,
        CLOUDSDK_CONFIG=str(home / "gcloud"),  # never pick up a developer's gcloud credentials
        HOME=str(home),
    )
    done = subprocess.run(
        [sys.executable, str(HERE), json.dumps(list(steps))],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"google-auth client failed ({done.returncode}):\n{done.stderr}")
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def _timestamp(expiry: Any) -> int:
    return calendar.timegm(expiry.utctimetuple())


def _step(step: Mapping[str, Any], request: Any) -> dict[str, Any]:
    import google.auth
    from google.auth import compute_engine
    from google.auth.compute_engine import _metadata
    from google.oauth2 import id_token

    op = step["op"]
    if op == "ping":
        return {"on_gce": _metadata.ping(request)}
    if op == "fetch_id_token":
        return {"token": id_token.fetch_id_token(request, step["audience"])}
    if op == "id_token_credentials":
        id_creds = compute_engine.IDTokenCredentials(
            request, step["audience"], use_metadata_identity_endpoint=True
        )
        id_creds.refresh(request)
        return {
            "token": id_creds.token,
            "expiry": _timestamp(id_creds.expiry),
            "email": id_creds.service_account_email,
        }
    if op == "access_token":
        creds = compute_engine.Credentials(scopes=step.get("scopes"))
        creds.refresh(request)
        return {
            "token": creds.token,
            "expiry": _timestamp(creds.expiry),
            "email": creds.service_account_email,
            "scopes": creds.scopes,
        }
    if op == "default":
        credentials, project = google.auth.default()
        return {"type": type(credentials).__name__, "project": project}
    if op == "verify":
        claims = id_token.verify_token(
            step["token"], request, audience=step.get("audience"), certs_url=step["certs_url"]
        )
        return {"claims": dict(claims)}
    raise ValueError(f"unknown step {op!r}")


def main() -> None:
    import google.auth.transport.requests

    request = google.auth.transport.requests.Request()
    results: list[dict[str, Any]] = []
    for step in json.loads(sys.argv[1]):
        try:
            results.append(_step(step, request))
        except Exception as exc:
            results.append({"error": type(exc).__name__, "message": str(exc)})
    sys.stdout.write(json.dumps(results))


if __name__ == "__main__":
    main()
