"""The console in a real browser: Debian's Chromium driven by Playwright (no browser download).
Signs in, walks every page, creates and deletes a federated credential, opens a refusal's
explanation, explains a pasted token, checks that nothing loads from outside the server and that
no CSP violation happens, and runs axe-core (vendored) on the main pages. A failing test leaves a
screenshot of the page in ``test-artifacts/console``; ``KEYLESS_CONSOLE_SCREENSHOTS=DIR`` saves one
of every page (docs/images/console holds the ones docs/console.md shows)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests._support.authority_server import Federation, RunningAuthority
from tests._support.oidc_issuer import TestIssuer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = Path(__file__).parents[2] / "_support" / "vendor" / "axe" / "axe.min.js"
ARTIFACTS = Path("test-artifacts") / "console"
SCREENSHOTS = os.environ.get("KEYLESS_CONSOLE_SCREENSHOTS")

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="no Chromium here (apt-get install chromium): the console's browser tests are skipped",
)


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class Visit:
    """A browser page that records every request and every CSP complaint."""

    def __init__(self, browser: Any, authority: RunningAuthority, request: pytest.FixtureRequest) -> None:
        self.base = authority.base_url
        self.context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.problems: list[str] = []
        self.name = request.node.name
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            self.problems.append(message.text)

    def go(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        self.page.wait_for_load_state("networkidle")
        return response

    def shot(self, name: str) -> None:
        if SCREENSHOTS:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=False)

    def axe(self) -> list[dict[str, Any]]:
        """axe-core's serious and critical violations on the current page (WCAG 2 A/AA)."""
        self.page.evaluate(AXE.read_text())  # through DevTools: the page's CSP stays as it is
        result = self.page.evaluate(
            "async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'best-practice']})).violations"
        )
        return [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
            for v in result
            if v["impact"] in ("serious", "critical")
        ]

    def close(self, failed: bool) -> None:
        if failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(ARTIFACTS / f"{self.name}.png"), full_page=True)
        self.context.close()


@pytest.fixture
def visit(browser: Any, authority: RunningAuthority, request: pytest.FixtureRequest) -> Iterator[Visit]:
    v = Visit(browser, authority, request)
    yield v
    report = getattr(request.node, "rep_call", None)
    v.close(failed=report is not None and report.failed)


def sign_in(v: Visit, key: str) -> None:
    v.go("/console/overview")
    assert "/console/sign-in" in v.page.url
    v.shot("sign-in")
    v.page.get_by_label("Admin key").fill(key)
    v.page.get_by_role("button", name="Sign in").click()
    v.page.wait_for_url("**/console/overview")


def refuse_once(authority: RunningAuthority, federation: Federation, issuer: TestIssuer) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": federation.client.app_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": issuer.mint(sub="112233445566778899002"),
        "scope": federation.scope,
    }
    with httpx.Client(verify=authority.ssl_context()) as client:
        assert client.post(authority.token_url(federation.tenant_id), data=form).status_code == 401
        form["client_assertion"] = issuer.mint(sub="112233445566778899001")
        assert client.post(authority.token_url(federation.tenant_id), data=form).status_code == 200
    authority.authority.refusals.flush()


def test_sign_in_walk_every_page_and_load_nothing_from_elsewhere(
    visit: Visit, authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    refuse_once(authority, federation, issuer)
    sign_in(visit, authority.admin_key())
    assert visit.page.get_by_role("heading", name="Overview").is_visible()
    assert visit.page.locator("svg.chart").count() >= 2
    assert visit.axe() == []
    visit.shot("overview")
    visit.page.get_by_role("link", name="Trust: Contoso").click()
    visit.page.wait_for_load_state("networkidle")
    assert visit.page.locator("svg.graph").is_visible()
    assert visit.axe() == []
    visit.shot("trust-graph")
    visit.page.locator("svg.graph a.app").first.click()
    visit.page.wait_for_load_state("networkidle")
    assert visit.page.get_by_role("heading", level=1).inner_text() in ("blob-api", "cloud-run-caller")
    assert visit.axe() == []
    visit.go(f"/console/tenants/{federation.tenant_id}/apps/{federation.client.app_id}")
    visit.shot("application")
    visit.page.get_by_role("link", name="Refusals", exact=True).click()
    visit.page.wait_for_load_state("networkidle")
    assert "AADSTS700213" in visit.page.content()
    assert visit.axe() == []
    visit.shot("refusals")
    visit.page.locator("table").nth(1).locator("tbody a").first.click()
    visit.page.wait_for_load_state("networkidle")
    content = visit.page.content()
    assert "112233445566778899002" in content  # the verified sub the refused assertion presented
    assert "The token against each credential" in content and "Fix 1" in content
    assert visit.axe() == []
    visit.shot("refusal")
    visit.go("/admin/docs")
    visit.page.wait_for_selector(".swagger-ui .info", timeout=15_000)
    visit.shot("api-docs")
    assert all(url.startswith(authority.base_url) for url in visit.requests), visit.requests
    assert visit.problems == []


def test_create_and_delete_a_federated_credential_in_the_browser(
    visit: Visit, authority: RunningAuthority, federation: Federation
) -> None:
    sign_in(visit, authority.admin_key())
    visit.go(f"/console/tenants/{federation.tenant_id}/apps/{federation.client.app_id}")
    page = visit.page
    page.get_by_text("Add a federated credential").click()
    page.get_by_label("Name").fill("gh-releases")
    page.locator("#new-issuer").fill("https://token.actions.githubusercontent.com")
    page.locator("#new-expression").fill("claims['sub'] matches 'repo:contoso/*:ref:refs/heads/release/*'")
    page.locator("#new-condition").fill("claims.repository_owner == 'contoso'")
    page.get_by_role("button", name="Add credential").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("status").inner_text() == "Federated credential added."
    row = page.get_by_role("row").filter(has_text="gh-releases")
    assert "repo:contoso/*:ref:refs/heads/release/*" in row.inner_text()
    assert any(f.name == "gh-releases" for f in authority.admin.list_fics(federation.client))
    row.get_by_role("button", name="Delete gh-releases").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("status").inner_text() == "Federated credential deleted."
    assert all(f.name != "gh-releases" for f in authority.admin.list_fics(federation.client))
    assert visit.problems == []


def test_a_refused_form_shows_graphs_message_next_to_the_form(
    visit: Visit, authority: RunningAuthority, federation: Federation
) -> None:
    sign_in(visit, authority.admin_key())
    visit.go(f"/console/tenants/{federation.tenant_id}/apps/{federation.client.app_id}")
    page = visit.page
    page.get_by_text("Add a federated credential").click()
    page.get_by_label("Name").fill("everyone")
    page.locator("#new-issuer").fill("https://token.actions.githubusercontent.com")
    page.locator("#new-expression").fill("claims['sub'] matches 'repo:*'")
    page.get_by_role("button", name="Add credential").click()
    page.wait_for_load_state("networkidle")
    alert = page.get_by_role("alert").inner_text()
    assert "allowBroadMatch" in alert


def test_paste_a_token_into_the_explain_box(
    visit: Visit, authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    sign_in(visit, authority.admin_key())
    visit.go(f"/console/explain?tenant={federation.tenant_id}&app={federation.client.app_id}")
    page = visit.page
    page.get_by_label("Token").fill(issuer.mint(sub="112233445566778899001X"))
    page.get_by_role("button", name="Explain").click()
    page.wait_for_load_state("networkidle")
    content = page.content()
    assert "AADSTS700213" in content and "Fix 1" in content
    assert page.locator("ol.steps li.fail").count() >= 1
    assert visit.axe() == []
    visit.shot("explain")
    assert visit.problems == []


def test_a_missing_csrf_token_is_refused_in_the_browser(
    visit: Visit, authority: RunningAuthority, federation: Federation
) -> None:
    sign_in(visit, authority.admin_key())
    visit.go(f"/console/tenants/{federation.tenant_id}/apps/{federation.client.app_id}")
    visit.page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")
    visit.page.get_by_text("Add a federated credential").click()
    visit.page.get_by_label("Name").fill("no-csrf")
    visit.page.locator("#new-issuer").fill("https://a.example")
    visit.page.locator("#new-subject").fill("s")
    visit.page.get_by_role("button", name="Add credential").click()
    visit.page.wait_for_load_state("networkidle")
    assert "CSRF token is missing or wrong" in visit.page.content()
    assert all(f.name != "no-csrf" for f in authority.admin.list_fics(federation.client))


def test_keyboard_only_reaches_the_navigation_and_signs_in(visit: Visit, authority: RunningAuthority) -> None:
    visit.go("/console/sign-in")
    page = visit.page
    page.keyboard.type(authority.admin_key())  # the key field has the focus on load
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/overview")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Overview"


def test_an_expired_session_is_sent_back_to_sign_in(visit: Visit, authority: RunningAuthority) -> None:
    sign_in(visit, authority.admin_key())
    lifetime = authority.authority.settings.console_session_seconds
    later = authority.authority.clock() + lifetime + 1
    authority.authority.clock = lambda: later
    visit.go("/console/overview")
    assert "/console/sign-in" in visit.page.url
    assert visit.page.get_by_label("Admin key").is_visible()
