"""The console's pages: sign-in, overview, trust graph, application, refusals, explain.

Reads come from the directory snapshot (no query per application, so a page stays fast at
thousands of applications); writes go through ``DirectoryAdmin``, the admin API's own path, so
validation and messages are the API's (Graph's rules). Every change is an audit event with
``source: console`` and the admin key's id.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import anyio.to_thread
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from keyless.authority import audit
from keyless.authority._paths import ADMIN_KEY_FILE
from keyless.authority._service import Authority
from keyless.authority.directory.snapshot import AppView, TenantView
from keyless.authority.directory.trustgraph import build_trust_graph
from keyless.authority.explain.dry_run import compare_credentials
from keyless.authority.explain.fixes import suggest_fixes
from keyless.authority.explain.report import Comparison, Fix
from keyless.authority.http.admin.explain import explain_live
from keyless.authority.http.console.charts import Bar, bar_chart, key_timeline
from keyless.authority.http.console.graph_svg import COLLAPSE_ABOVE, render_graph
from keyless.authority.http.console.session import COOKIE, PRE_COOKIE, Session, SessionCodec, same_token
from keyless.authority.model import FIC_AUDIENCE_DEFAULT, Application, Refusal
from keyless.authority.token.aadsts import CATALOGUE
from keyless.errors import AlreadyExists, ConfigurationError, NotFound, OAuthError
from keyless.jose import DEFAULT_MAX_TOKEN

__all__ = ["Pages"]

Handler = Callable[[Request, Session], Awaitable[Response]]
_DONE = {
    "fic-created": "Federated credential added.",
    "fic-updated": "Federated credential saved.",
    "fic-deleted": "Federated credential deleted.",
    "role-assigned": "App role assigned.",
    "role-removed": "App role removed.",
}
_HOURS = (1, 6, 24, 168)


def _hhmm(t: float) -> str:
    return time.strftime("%H:%M", time.gmtime(t))


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def _day(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(t))


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("keyless.authority.http.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(hhmm=_hhmm, when=_when, day=_day)
    return env


def _apps(view: TenantView) -> list[AppView]:
    """Each application once (the snapshot indexes them by appId), by display name."""
    return sorted(
        {v.app.object_id: v for v in view.apps_by_app_id.values()}.values(), key=lambda v: v.app.display_name
    )


class Pages:
    def __init__(self, authority: Authority) -> None:
        self.authority = authority
        self.codec = SessionCodec(authority.kek, authority.settings.console_session_seconds)
        self.env = _environment()

    # -- plumbing --------------------------------------------------------------------------------------
    def render(self, request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        directory = self.authority.directory()
        context = {
            "root": request.scope.get("root_path", ""),
            "tenants": sorted((t.tenant for t in directory.all_tenants()), key=lambda t: t.display_name),
            "session": None,
            "title": "",
            **values,
        }
        body = self.env.get_template(template).render(context)
        return HTMLResponse(body, status_code=status)

    def page(self, request: Request, template: str, session: Session, **values: Any) -> HTMLResponse:
        done = _DONE.get(request.query_params.get("done", ""))
        return self.render(request, template, session=session, flash=done, **values)

    def message(
        self, request: Request, status: int, title: str, message: str, session: Session | None
    ) -> HTMLResponse:
        return self.render(request, "message.html", status, title=title, message=message, session=session)

    async def session_of(self, request: Request) -> Session | None:
        session = self.codec.read(request.cookies.get(COOKIE), self.authority.clock())
        if session is None:
            return None
        exists = await anyio.to_thread.run_sync(self.authority.admin_key_exists, session.key_id)
        return session if exists else None

    def signed_in(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Pages need a session (else the sign-in page); forms also the session's CSRF token."""

        @functools.wraps(handler)
        async def guarded(request: Request) -> Response:
            session = await self.session_of(request)
            root = request.scope.get("root_path", "")
            if session is None:
                if request.method != "GET":
                    return self.message(
                        request, 403, "Signed out", "Your session has ended: sign in again.", None
                    )
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"{root}/sign-in?{urlencode({'next': target})}", status_code=303)
            if request.method != "POST":
                return await handler(request, session)
            form = await request.form(max_files=1, max_fields=40, max_part_size=DEFAULT_MAX_TOKEN + 1024)
            try:
                if not same_token(_text(form, "csrf"), session.csrf):
                    return self.message(
                        request,
                        403,
                        "Refused",
                        "The form's CSRF token is missing or wrong: reload the page.",
                        session,
                    )
                return await handler(request, session)
            finally:
                await form.close()  # an uploaded file's temporary file

        return guarded

    def change(self, session: Session, action: str, target: str, problems: list[str] | None = None) -> None:
        audit.changed(
            source="console",
            action=action,
            target=target,
            actor=session.key_id,
            outcome="refused" if problems else "done",
            detail="; ".join(problems or []),
        )

    # -- sign-in and out ----------------------------------------------------------------------------------
    async def sign_in_form(self, request: Request) -> Response:
        token = self.codec.new("sign-in", self.authority.clock())[0].csrf
        next_path = _safe_next(request.query_params.get("next"), request.scope.get("root_path", ""))
        key_file = str(Path(self.authority.settings.data_dir) / ADMIN_KEY_FILE)
        response = self.render(
            request, "sign_in.html", title="Sign in", csrf=token, next=next_path, key_file=key_file
        )
        root = request.scope.get("root_path", "") or "/"
        response.set_cookie(
            PRE_COOKIE, token, max_age=600, path=root, secure=True, httponly=True, samesite="strict"
        )
        return response

    async def sign_in(self, request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=10)
        root = request.scope.get("root_path", "")
        if not same_token(_text(form, "csrf"), request.cookies.get(PRE_COOKIE, "") or "\0"):
            return self.message(
                request, 403, "Refused", "The sign-in form's CSRF token is missing or wrong: reload it.", None
            )
        key = _text(form, "key") or ""
        key_id = await anyio.to_thread.run_sync(self.authority.admin_key_id, key) if key else None
        if key_id is None:
            audit.changed(source="console", action="sign-in", target="console", actor=None, outcome="refused")
            return self.render(
                request,
                "sign_in.html",
                401,
                title="Sign in",
                csrf=request.cookies.get(PRE_COOKIE, ""),
                next=_safe_next(_text(form, "next"), root),
                key_file=str(Path(self.authority.settings.data_dir) / ADMIN_KEY_FILE),
                problems=["That is not an admin key of this authority."],
            )
        _, cookie = self.codec.new(key_id, self.authority.clock())
        audit.changed(source="console", action="sign-in", target="console", actor=key_id, outcome="done")
        redirect = RedirectResponse(_safe_next(_text(form, "next"), root), status_code=303)
        redirect.set_cookie(
            COOKIE,
            cookie,
            max_age=int(self.codec.lifetime),
            path=root or "/",
            secure=True,
            httponly=True,
            samesite="strict",
        )
        redirect.delete_cookie(PRE_COOKIE, path=root or "/")
        return redirect

    async def sign_out(self, request: Request, session: Session) -> Response:
        root = request.scope.get("root_path", "")
        audit.changed(
            source="console", action="sign-out", target="console", actor=session.key_id, outcome="done"
        )
        response = RedirectResponse(f"{root}/sign-in", status_code=303)
        response.delete_cookie(COOKIE, path=root or "/", secure=True, httponly=True, samesite="strict")
        return response

    # -- overview --------------------------------------------------------------------------------------
    async def overview(self, request: Request, session: Session) -> Response:
        authority = self.authority
        directory = authority.directory()
        now = authority.clock()
        counts, key_rows = [], []
        for view in sorted(directory.all_tenants(), key=lambda v: v.tenant.display_name):
            apps = _apps(view)
            counts.append(
                {
                    "id": view.id,
                    "name": view.tenant.display_name,
                    "apps": len(apps),
                    "fics": sum(len(a.fics) for a in apps),
                    "secrets": sum(len(a.secrets) for a in apps),
                    "certificates": sum(len(a.certificates) for a in apps),
                    "roles": sum(len(r) for r in view.roles_by_pair.values()),
                }
            )
            records = [k.record for k in view.signing_keys]
            timeline = key_timeline(records, now=now, token_lifetime=authority.settings.token_lifetime_max)
            key_rows.append({"name": view.tenant.display_name, "timeline": timeline})
        hours, bucket = 6, 600.0
        issued = authority.activity.issued_per_bucket(now, hours=hours, bucket=bucket)
        refusals = await anyio.to_thread.run_sync(
            functools.partial(authority.refusals.recent, None, limit=10_000)
        )
        refused = Counter(
            int((r.time - (now - hours * 3600)) // bucket) for r in refusals if r.time >= now - hours * 3600
        )
        bars = [Bar(start, count, float(refused.get(i, 0))) for i, (start, count) in enumerate(issued)]
        chart = bar_chart(bars, title=f"Tokens issued and refused, last {hours} hours")
        return self.page(
            request,
            "overview.html",
            session,
            title="Overview",
            page="overview",
            counts=counts,
            key_rows=key_rows,
            revision=directory.revision,
            chart=chart,
            bars=bars,
            hours=hours,
            bucket_minutes=int(bucket // 60),
            issued_total=int(sum(b.issued for b in bars)),
            refused_total=int(sum(b.refused for b in bars)),
        )

    # -- trust graph -----------------------------------------------------------------------------------
    def tenant_view(self, ref: str) -> TenantView:
        view = self.authority.directory().tenant(ref)
        if view is None:
            raise NotFound(f"No tenant {ref!r}.")
        return view

    async def graph(self, request: Request, session: Session) -> Response:
        view = self.tenant_view(request.path_params["tenant"])
        root = request.scope.get("root_path", "")
        query = request.query_params.get("q", "")[:200]
        expand = request.query_params.get("expand") == "1"
        graph = build_trust_graph(view, query)
        apps = graph.of_kind("application")
        links = {n.id: f"{root}/tenants/{view.id}/apps/{quote(n.detail)}" for n in apps}
        picture = render_graph(graph, app_links=links, expanded=True if expand else None)
        shown = {n.detail for n in apps}
        rows = [
            {
                "app": a.app.display_name,
                "link": f"{root}/tenants/{view.id}/apps/{a.app.app_id}",
                "name": f.name,
                "issuer": f.issuer,
                "rule": f.rule,
            }
            for a in _apps(view)
            if a.app.app_id in shown
            for f in a.fics
        ]
        by_sp = {a.app.service_principal_id: a.app for a in _apps(view)}
        roles = [
            {"client": by_sp[c].display_name, "resource": by_sp[r].display_name, "roles": ", ".join(values)}
            for (c, r), values in sorted(view.roles_by_pair.items())
            if c in by_sp and r in by_sp and (by_sp[c].app_id in shown or by_sp[r].app_id in shown)
        ]
        expand_link = f"{root}/tenants/{view.id}/graph?{urlencode({'q': query, 'expand': '1'})}"
        return self.page(
            request,
            "graph.html",
            session,
            title=f"Trust: {view.tenant.display_name}",
            page="graph",
            tenant=view.tenant,
            q=query,
            picture=picture,
            apps=len(apps),
            fics=len(graph.of_kind("credential")),
            issuers=len(graph.of_kind("issuer")),
            collapsed=len(apps) > COLLAPSE_ABOVE and not expand,
            expand_link=expand_link,
            rows=rows,
            roles=roles,
        )

    # -- an application --------------------------------------------------------------------------------
    def app_view(self, view: TenantView, ref: str) -> AppView:
        found = view.application(ref)
        if found is None:
            raise NotFound(f"No application {ref!r} in tenant {view.tenant.display_name!r}.")
        return found

    async def application(
        self,
        request: Request,
        session: Session,
        problems: list[str] | None = None,
        form: Mapping[str, str] | None = None,
    ) -> Response:
        view = self.tenant_view(request.path_params["tenant"])
        app_view = self.app_view(view, request.path_params["app"])
        app = app_view.app
        root = request.scope.get("root_path", "")
        assignments = await anyio.to_thread.run_sync(self.authority.admin.list_role_assignments, view.id)
        by_sp = {a.app.service_principal_id: a.app for a in _apps(view)}

        def role_value(resource: Application, role_id: str) -> str:
            return next((r.value for r in resource.app_roles if r.id == role_id), role_id)

        def link(target: Application) -> str:
            return f"{root}/tenants/{view.id}/apps/{target.app_id}"

        held = [
            {
                "id": a.id,
                "resource": by_sp[a.resource_id].display_name,
                "link": link(by_sp[a.resource_id]),
                "role": role_value(by_sp[a.resource_id], a.app_role_id),
            }
            for a in assignments
            if a.principal_id == app.service_principal_id and a.resource_id in by_sp
        ]
        granted = [
            {
                "client": by_sp[a.principal_id].display_name,
                "link": link(by_sp[a.principal_id]),
                "role": role_value(app, a.app_role_id),
            }
            for a in assignments
            if a.resource_id == app.service_principal_id and a.principal_id in by_sp
        ]
        resources = [
            {
                "app_id": a.app.app_id,
                "display_name": a.app.display_name,
                "roles": ", ".join(r.value for r in a.app.app_roles),
            }
            for a in _apps(view)
            if a.app.app_roles
        ]
        response = self.page(
            request,
            "app.html",
            session,
            title=app.display_name,
            page="app",
            tenant=view.tenant,
            app=app,
            fics=app_view.fics,
            secrets=app_view.secrets,
            certificates=app_view.certificates,
            held=held,
            granted=granted,
            resources=resources,
            default_audience=FIC_AUDIENCE_DEFAULT,
            problems=problems,
            form=form or {},
        )
        return self._with_status(response, 400) if problems else response

    @staticmethod
    def _with_status(response: HTMLResponse, status: int) -> HTMLResponse:
        response.status_code = status
        return response

    async def _write(
        self,
        request: Request,
        session: Session,
        action: str,
        target: str,
        write: Callable[[], object],
        done: str,
    ) -> Response:
        """Run ``write`` (a DirectoryAdmin call) in a thread; on a refusal, the application page with
        the API's messages (400); either way an audit event."""
        try:
            await anyio.to_thread.run_sync(write)
        except (ConfigurationError, AlreadyExists, NotFound) as exc:
            problems = exc.problems if isinstance(exc, ConfigurationError) else [str(exc)]
            self.change(session, action, target, problems)
            form = await request.form()
            return await self.application(
                request, session, problems, {k: v for k, v in form.items() if isinstance(v, str)}
            )
        self.change(session, action, target)
        root = request.scope.get("root_path", "")
        tenant, app = request.path_params["tenant"], request.path_params["app"]
        return RedirectResponse(f"{root}/tenants/{tenant}/apps/{app}?done={done}", status_code=303)

    def _target(self, request: Request, *rest: str) -> str:
        parts = [
            f"tenants/{request.path_params['tenant']}",
            f"applications/{request.path_params['app']}",
            *rest,
        ]
        return "/".join(parts)

    async def create_fic(self, request: Request, session: Session) -> Response:
        view = self.tenant_view(request.path_params["tenant"])
        app = self.app_view(view, request.path_params["app"]).app
        form = await request.form()
        name = _text(form, "name") or ""
        rule = _rule(form)

        def write() -> object:
            return self.authority.admin.create_fic(app, name=name, **rule)

        target = self._target(request, f"federatedIdentityCredentials/{name}")
        return await self._write(request, session, "create", target, write, "fic-created")

    async def update_fic(self, request: Request, session: Session) -> Response:
        view = self.tenant_view(request.path_params["tenant"])
        app = self.app_view(view, request.path_params["app"]).app
        form = await request.form()
        rule = _rule(form)
        fic_id = request.path_params["fic"]

        def write() -> object:
            current = self.authority.admin.find_fic(app, fic_id)
            return self.authority.admin.update_fic(
                dataclasses.replace(current, **{**rule, "audiences": tuple(rule["audiences"])})
            )

        target = self._target(request, f"federatedIdentityCredentials/{fic_id}")
        return await self._write(request, session, "update", target, write, "fic-updated")

    async def delete_fic(self, request: Request, session: Session) -> Response:
        view = self.tenant_view(request.path_params["tenant"])
        app = self.app_view(view, request.path_params["app"]).app
        fic_id = request.path_params["fic"]
        target = self._target(request, f"federatedIdentityCredentials/{fic_id}")
        return await self._write(
            request,
            session,
            "delete",
            target,
            lambda: self.authority.admin.delete_fic(app, fic_id),
            "fic-deleted",
        )

    async def assign_role(self, request: Request, session: Session) -> Response:
        view = self.tenant_view(request.path_params["tenant"])
        client = self.app_view(view, request.path_params["app"]).app
        form = await request.form()
        resource_ref, role = _text(form, "resource") or "", _text(form, "role") or ""

        def write() -> object:
            resource = self.authority.admin.find_application(view.id, resource_ref)
            return self.authority.admin.assign_role(client, resource, role)

        target = self._target(request, f"appRoleAssignments/{resource_ref}/{role}")
        return await self._write(request, session, "create", target, write, "role-assigned")

    async def remove_role(self, request: Request, session: Session) -> Response:
        view = self.tenant_view(request.path_params["tenant"])
        assignment = request.path_params["assignment"]
        target = self._target(request, f"appRoleAssignments/{assignment}")
        return await self._write(
            request,
            session,
            "delete",
            target,
            lambda: self.authority.admin.unassign_role(assignment, view.tenant),
            "role-removed",
        )

    # -- refusals --------------------------------------------------------------------------------------
    async def refusals(self, request: Request, session: Session) -> Response:
        params = request.query_params
        root = request.scope.get("root_path", "")
        tenant_ref = params.get("tenant", "")
        hours = (
            int(params["hours"])
            if params.get("hours", "").isdigit() and int(params["hours"]) in _HOURS
            else 24
        )
        code = params.get("code", "").strip()
        app = params.get("app", "").strip().lower()
        view = self.authority.directory().tenant(tenant_ref) if tenant_ref else None
        refs = [view.id, *view.tenant.domains] if view is not None else None
        found = await anyio.to_thread.run_sync(
            functools.partial(self.authority.refusals.recent, refs, limit=10_000)
        )
        since = self.authority.clock() - hours * 3600
        rows = [
            r
            for r in found
            if r.time >= since
            and (not code or str(r.aadsts) == code)
            and (not app or (r.client_id or "").lower() == app)
        ]
        app_names = {
            v.app.app_id: v.app.display_name
            for t in self.authority.directory().all_tenants()
            for v in t.apps_by_app_id.values()
        }
        grouped: dict[tuple[int | None, str], list[Refusal]] = {}
        for r in rows:
            grouped.setdefault((r.aadsts, r.client_id or ""), []).append(r)
        groups = [
            {
                "code": key[0] or "",
                "app": app_names.get(key[1], key[1] or "(none)"),
                "count": len(items),
                "last": items[0].time,
                "link": f"{root}/refusals?"
                + urlencode({"tenant": tenant_ref, "app": key[1], "code": key[0] or "", "hours": hours}),
            }
            for key, items in sorted(grouped.items(), key=lambda kv: -len(kv[1]))
        ]
        filters = {"tenant": view.id if view else "", "app": app, "code": code, "hours": hours}
        return self.page(
            request,
            "refusals.html",
            session,
            title="Refusals",
            page="refusals",
            rows=rows[:500],
            groups=groups,
            filters=filters,
            app_names=app_names,
        )

    async def refusal(self, request: Request, session: Session) -> Response:
        trace = request.path_params["trace"]
        root = request.scope.get("root_path", "")
        found = await anyio.to_thread.run_sync(
            functools.partial(self.authority.refusals.recent, None, limit=10_000)
        )
        refusal = next((r for r in found if r.trace_id == trace), None)
        if refusal is None:
            return self.message(
                request, 404, "Not found", "No such refusal among the newest 10,000.", session
            )
        view = self.authority.directory().tenant(refusal.tenant) if refusal.tenant else None
        app_view = view.application(refusal.client_id) if view is not None and refusal.client_id else None
        fics = []
        if app_view is not None:
            for f in app_view.fics:
                nearest = f.name in refusal.reason or (f.subject is not None and f.subject in refusal.reason)
                fics.append(
                    {
                        "name": f.name,
                        "issuer": f.issuer,
                        "rule": f.rule,
                        "audiences": f.audiences,
                        "nearest": nearest,
                    }
                )
        comparisons, fixes = _compared(refusal, app_view, view.id if view else "")
        entry = CATALOGUE.get(refusal.aadsts or 0)
        explain_link = f"{root}/explain?" + urlencode(
            {"tenant": view.id if view else "", "app": app_view.app.app_id if app_view else ""}
        )
        return self.page(
            request,
            "refusal.html",
            session,
            title=f"Refusal AADSTS{refusal.aadsts or ''}",
            page="refusals",
            refusal=refusal,
            meaning=entry.summary if entry else "",
            fics=fics,
            app_name=app_view.app.display_name if app_view else "",
            app_link=f"{root}/tenants/{view.id}/apps/{app_view.app.app_id}" if view and app_view else "",
            explain_link=explain_link,
            comparisons=comparisons,
            fixes=fixes,
        )

    # -- explain ---------------------------------------------------------------------------------------
    def _app_choices(self, tenant: str, app: str) -> list[dict[str, Any]]:
        choices = []
        for view in sorted(self.authority.directory().all_tenants(), key=lambda v: v.tenant.display_name):
            for a in _apps(view):
                selected = view.id == tenant and a.app.app_id == app
                choices.append(
                    {
                        "tenant_id": view.id,
                        "tenant": view.tenant.display_name,
                        "app_id": a.app.app_id,
                        "name": a.app.display_name,
                        "selected": selected,
                    }
                )
        return choices

    async def explain_form(self, request: Request, session: Session) -> Response:
        params = request.query_params
        choices = self._app_choices(params.get("tenant", ""), params.get("app", ""))
        return self.page(
            request, "explain.html", session, title="Explain a token", page="explain", apps=choices
        )

    async def explain(self, request: Request, session: Session) -> Response:
        form = await request.form()
        tenant, _, app_id = (_text(form, "app") or "").partition("/")
        token = (_text(form, "token") or "").strip()
        upload = form.get("file")
        if isinstance(upload, UploadFile) and upload.filename:
            raw = await upload.read(DEFAULT_MAX_TOKEN + 1)
            try:
                token = raw.decode("utf-8").strip() or token
            except UnicodeDecodeError:
                token = ""
        choices = self._app_choices(tenant, app_id)
        problems = []
        if not token:
            problems.append("Paste a token or choose a file holding one (UTF-8 text).")
        elif len(token) > DEFAULT_MAX_TOKEN:
            problems.append(f"That is longer than the {DEFAULT_MAX_TOKEN:,} characters a token may have.")
        view = self.authority.directory().tenant(tenant) if tenant else None
        app_view = view.application(app_id) if view is not None and app_id else None
        if app_view is None:
            problems.append("Choose an application.")
        if problems or app_view is None or view is None:
            response = self.page(
                request,
                "explain.html",
                session,
                title="Explain a token",
                page="explain",
                apps=choices,
                problems=problems,
            )
            return self._with_status(response, 400)
        explanation = await explain_live(self.authority, app_view.app, view.id, token)
        refusal = explanation.refusal
        refusal_line = (refusal.error_description or "").split("\r\n", 1)[0] if refusal else ""
        return self.page(
            request,
            "explain.html",
            session,
            title="Explain a token",
            page="explain",
            apps=choices,
            explanation=explanation,
            refusal_line=refusal_line,
            app_label=f"{app_view.app.display_name} ({app_view.app.app_id}) in {view.tenant.display_name}",
        )


def _compared(refusal: Refusal, app_view: AppView | None, tenant: str) -> tuple[list[Comparison], list[Fix]]:
    """The refused assertion's verified iss/sub/aud against the application's credentials as they
    are now, and the fixes: the explain dry run's own comparison and fixes, without the token."""
    presented = refusal.presented
    if app_view is None or not presented:
        return [], []
    iss, sub = str(presented.get("iss", "")), str(presented.get("sub", ""))
    audiences = [str(a) for a in presented.get("aud", []) or []]
    claims = {"iss": iss, "sub": sub, "aud": audiences}
    comparisons = compare_credentials(app_view.fics, iss, sub, audiences, claims)
    error = OAuthError(refusal.error, refusal.reason, aadsts=refusal.aadsts, detail=refusal.reason)
    fixes = suggest_fixes(
        error,
        app_view.fics,
        comparisons,
        iss=iss,
        sub=sub,
        audiences=audiences,
        claims=claims,
        app=app_view.app.app_id,
        tenant=tenant,
    )
    return comparisons, fixes


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _rule(form: FormData) -> dict[str, Any]:
    """A credential's matching fields from a form: empty inputs are absent values."""

    def optional(name: str) -> str | None:
        value = (_text(form, name) or "").strip()
        return value or None

    return {
        "issuer": (_text(form, "issuer") or "").strip(),
        "subject": optional("subject"),
        "claims_matching_expression": optional("expression"),
        "condition": optional("condition"),
        "allow_broad_match": _text(form, "allow_broad_match") == "1",
        "audiences": [optional("audience") or FIC_AUDIENCE_DEFAULT],
        "description": optional("description"),
    }


def _safe_next(value: str | None, root: str) -> str:
    """Where to go after signing in: a console path only (never another site: no open redirect)."""
    if not value or not value.startswith(f"{root}/") or len(value) > 2000:
        return f"{root}/overview"
    path = value.split("?", 1)[0]
    segments = path.split("/")
    if any(s in (".", "..") or "%" in s for s in segments) or "//" in value or "\\" in value:
        return f"{root}/overview"
    return value
