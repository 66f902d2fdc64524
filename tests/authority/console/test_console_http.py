"""The console over HTTP: nothing readable signed out, sign-in and its cookie, CSRF on every form,
expiry, security headers, and a change through a form audited with the console as its source."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx
import pytest
from tests._support.authority_server import Federation, RunningAuthority, run_authority
from tests._support.console import csrf_of, sign_in
from tests._support.oidc_issuer import TestIssuer

PAGES = ["/console/", "/console/overview", "/console/refusals", "/console/explain"]


def tenant_pages(federation: Federation) -> list[str]:
    base = f"/console/tenants/{federation.tenant_id}"
    return [f"{base}/graph", f"{base}/apps/{federation.client.app_id}"]


def test_nothing_of_the_console_is_readable_signed_out(
    browser_client: httpx.Client, federation: Federation
) -> None:
    for path in PAGES + tenant_pages(federation) + ["/console/refusals/some-trace", "/console/nowhere"]:
        response = browser_client.get(path)
        assert response.status_code in (303, 404), path
        assert federation.client.app_id not in response.text and "cloud-run-caller" not in response.text
        if response.status_code == 303:
            assert response.headers["location"].startswith("/console/sign-in?next=")


def test_a_signed_out_form_post_is_refused(browser_client: httpx.Client, federation: Federation) -> None:
    path = f"/console/tenants/{federation.tenant_id}/apps/{federation.client.app_id}/fics"
    response = browser_client.post(path, data={"name": "x", "issuer": "https://a.example", "subject": "s"})
    assert response.status_code == 403


def test_signing_in_sets_a_strict_session_cookie(
    browser_client: httpx.Client, authority: RunningAuthority
) -> None:
    response = sign_in(browser_client, authority.admin_key())
    assert response.status_code == 303 and response.headers["location"] == "/console/overview"
    cookie = next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("keyless_console=")
    )
    for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/console", "Max-Age=3600"):
        assert attribute.lower() in cookie.lower(), cookie
    assert authority.admin_key() not in cookie


def test_a_wrong_key_is_refused_and_audited(
    browser_client: httpx.Client, caplog: pytest.LogCaptureFixture, authority: RunningAuthority
) -> None:
    with caplog.at_level(logging.INFO, logger="keyless.audit"):
        response = sign_in(browser_client, "not-the-key")
    assert response.status_code == 401 and "not an admin key" in response.text
    events = [r.__dict__["audit"] for r in caplog.records if "audit" in r.__dict__]
    assert any(e["action"] == "sign-in" and e["outcome"] == "refused" for e in events)


def test_sign_in_without_its_csrf_cookie_is_refused(
    browser_client: httpx.Client, authority: RunningAuthority
) -> None:
    response = browser_client.post("/console/sign-in", data={"csrf": "guess", "key": authority.admin_key()})
    assert response.status_code == 403


def test_next_never_leaves_the_console(browser_client: httpx.Client, authority: RunningAuthority) -> None:
    form = browser_client.get("/console/sign-in")
    for target in ("https://evil.example/", "//evil.example/", "/console/../admin", "/elsewhere"):
        response = browser_client.post(
            "/console/sign-in",
            data={"csrf": csrf_of(form.text), "key": authority.admin_key(), "next": target},
        )
        assert response.headers["location"] == "/console/overview", target
        form = browser_client.get("/console/sign-in")


def test_every_page_answers_signed_in_with_strict_security_headers(
    console: httpx.Client, federation: Federation
) -> None:
    for path in PAGES + tenant_pages(federation):
        response = console.get(path, follow_redirects=True)
        assert response.status_code == 200, (path, response.text[:300])
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        assert "<script" not in response.text and " style=" not in response.text


def test_a_form_without_the_csrf_token_is_refused(console: httpx.Client, federation: Federation) -> None:
    path = f"/console/tenants/{federation.tenant_id}/apps/{federation.client.app_id}/fics"
    fields = {
        "name": "gh-main",
        "issuer": "https://token.actions.githubusercontent.com",
        "subject": "repo:c/a:ref:refs/heads/main",
        "audience": "api://AzureADTokenExchange",
    }
    assert console.post(path, data=fields).status_code == 403
    assert console.post(path, data={**fields, "csrf": "wrong"}).status_code == 403


def test_creating_and_deleting_a_credential_is_audited_with_the_console_as_source(
    console: httpx.Client,
    federation: Federation,
    authority: RunningAuthority,
    caplog: pytest.LogCaptureFixture,
) -> None:
    page = f"/console/tenants/{federation.tenant_id}/apps/{federation.client.app_id}"
    csrf = csrf_of(console.get(page).text)
    fields = {
        "csrf": csrf,
        "name": "gh-main",
        "issuer": "https://token.actions.githubusercontent.com",
        "subject": "repo:contoso/app:ref:refs/heads/main",
        "audience": "api://AzureADTokenExchange",
    }
    with caplog.at_level(logging.INFO, logger="keyless.audit"):
        created = console.post(f"{page}/fics", data=fields)
        assert created.status_code == 303
        stored = {f.name: f for f in authority.admin.list_fics(federation.client)}
        assert stored["gh-main"].subject == "repo:contoso/app:ref:refs/heads/main"
        deleted = console.post(f"{page}/fics/{stored['gh-main'].id}/delete", data={"csrf": csrf})
        assert deleted.status_code == 303
    assert "gh-main" not in {f.name for f in authority.admin.list_fics(federation.client)}
    events = [
        r.__dict__["audit"]
        for r in caplog.records
        if r.__dict__.get("audit", {}).get("event") == "directory.changed"
    ]
    assert [(e["source"], e["action"], e["outcome"]) for e in events] == [
        ("console", "create", "done"),
        ("console", "delete", "done"),
    ]
    assert all(e["actor"] and e["actor"] != authority.admin_key() for e in events)


def test_a_refused_change_shows_the_apis_messages(console: httpx.Client, federation: Federation) -> None:
    page = f"/console/tenants/{federation.tenant_id}/apps/{federation.client.app_id}"
    csrf = csrf_of(console.get(page).text)
    broad = {
        "csrf": csrf,
        "name": "x",
        "issuer": "https://token.actions.githubusercontent.com",
        "expression": "claims['sub'] matches 'repo:*'",
        "audience": "api://AzureADTokenExchange",
    }
    response = console.post(f"{page}/fics", data=broad)
    assert response.status_code == 400
    assert "name &#39;x&#39; must be 3-120 characters" in response.text
    assert "allowBroadMatch" in response.text


def test_an_expired_session_is_refused(tmp_path: Path) -> None:
    with (
        run_authority(tmp_path / "a", console_session_seconds=60) as running,
        httpx.Client(base_url=running.base_url, verify=running.ssl_context()) as client,
    ):
        assert sign_in(client, running.admin_key()).status_code == 303
        assert client.get("/console/overview").status_code == 200
        later = time.time() + 61
        running.authority.clock = lambda: later
        response = client.get("/console/overview")
        assert response.status_code == 303 and "sign-in" in response.headers["location"]


def test_deleting_the_admin_key_ends_its_sessions(console: httpx.Client, authority: RunningAuthority) -> None:
    assert console.get("/console/overview").status_code == 200
    from keyless.authority.store._tables import admin_keys

    with authority.authority.store.engine.begin() as conn:  # keyless has no command for it yet
        conn.execute(admin_keys.delete())
    assert console.get("/console/overview").status_code == 303


def test_sign_out_ends_the_session_in_the_browser(console: httpx.Client) -> None:
    csrf = csrf_of(console.get("/console/overview").text)
    response = console.post("/console/sign-out", data={"csrf": csrf})
    assert response.status_code == 303
    assert console.get("/console/overview").status_code == 303


def test_the_api_docs_load_only_from_this_server(console: httpx.Client) -> None:
    page = console.get("/admin/docs")
    assert page.status_code == 200
    assert "/console/static/swagger/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in (
        "/console/static/swagger/swagger-ui-bundle.js",
        "/console/static/swagger/swagger-ui.css",
        "/console/static/docs.js",
    ):
        assert console.get(asset).status_code == 200


def test_the_trust_graph_stays_readable_at_200_applications(
    console: httpx.Client, authority: RunningAuthority, federation: Federation
) -> None:
    admin = authority.admin
    for i in range(200):
        app = admin.create_application(federation.tenant_id, f"svc-{i:03}")
        admin.create_fic(
            app,
            name="github",
            issuer="https://token.actions.githubusercontent.com",
            subject=f"repo:contoso/svc-{i:03}:ref:refs/heads/main",
        )
    page = console.get(f"/console/tenants/{federation.tenant_id}/graph")
    assert page.status_code == 200
    assert "202 applications" in page.text and "show every credential" in page.text
    assert page.text.count('class="node fic"') == 0  # collapsed: one arrow per application and issuer
    assert page.text.count('class="node app"') == 202
    found = console.get(f"/console/tenants/{federation.tenant_id}/graph", params={"q": "svc-042"})
    assert "1 applications" in found.text and found.text.count('class="node fic"') == 1
    expanded = console.get(f"/console/tenants/{federation.tenant_id}/graph", params={"expand": "1"})
    assert expanded.text.count('class="node fic"') == 201


def test_a_credential_and_a_role_are_edited_through_the_forms(
    console: httpx.Client, authority: RunningAuthority, federation: Federation
) -> None:
    page = f"/console/tenants/{federation.tenant_id}/apps/{federation.client.app_id}"
    csrf = csrf_of(console.get(page).text)
    (fic,) = authority.admin.list_fics(federation.client)
    edit = {
        "csrf": csrf,
        "issuer": fic.issuer,
        "expression": "claims['sub'] matches '1122334455*'",
        "audience": "api://AzureADTokenExchange",
        "allow_broad_match": "1",
    }
    assert console.post(f"{page}/fics/{fic.id}", data=edit).headers["location"].endswith("done=fic-updated")
    (updated,) = authority.admin.list_fics(federation.client)
    assert (
        updated.subject is None
        and updated.claims_matching_expression == "claims['sub'] matches '1122334455*'"
    )
    held = authority.admin.list_role_assignments(federation.tenant_id)
    assert len(held) == 1
    removed = console.post(f"{page}/roles/{held[0].id}/delete", data={"csrf": csrf})
    assert removed.headers["location"].endswith("done=role-removed")
    assert authority.admin.list_role_assignments(federation.tenant_id) == []
    added = console.post(
        f"{page}/roles", data={"csrf": csrf, "resource": federation.resource.app_id, "role": "Blob.Write"}
    )
    assert added.headers["location"].endswith("done=role-assigned")
    wrong = console.post(
        f"{page}/roles", data={"csrf": csrf, "resource": federation.resource.app_id, "role": "Blob.Nope"}
    )
    assert wrong.status_code == 400 and "has no app role &#39;Blob.Nope&#39;" in wrong.text


def test_the_explain_box_takes_an_uploaded_file(
    console: httpx.Client, federation: Federation, issuer: TestIssuer
) -> None:
    page = console.get("/console/explain")
    token = issuer.mint(sub="112233445566778899001")
    response = console.post(
        "/console/explain",
        data={"csrf": csrf_of(page.text), "app": f"{federation.tenant_id}/{federation.client.app_id}"},
        files={"file": ("token.jwt", token.encode() + b"\n", "application/octet-stream")},
    )
    assert response.status_code == 200
    assert "Accepted: credential <strong>cloud-run</strong> matches" in response.text
    assert token not in response.text  # the token is not shown back
    empty = console.post("/console/explain", data={"csrf": csrf_of(page.text), "app": ""})
    assert empty.status_code == 400 and "Paste a token" in empty.text
