"""The trust graph as SVG, laid out in columns: applications, (their federated credentials,) the
external issuers they trust. Role assignments are arcs between applications, from the client to
the resource. With many applications the credentials collapse into one edge per application and
issuer, labelled with their number, so 200 applications stay one readable column; the search box
narrows the graph (``build_trust_graph(query=...)``) and an application's page shows its details."""

from __future__ import annotations

from collections import Counter, defaultdict

from markupsafe import Markup, escape

from keyless.authority.directory.trustgraph import TrustGraph

__all__ = ["COLLAPSE_ABOVE", "render_graph"]

COLLAPSE_ABOVE = 30  # applications; above this the credentials are collapsed
_ROW = 26
_APP_X, _FIC_X, _ISSUER_X = 120, 440, 760
_BOX_W = 240


def _short(text: str, limit: int = 34) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _curve(x1: float, y1: float, x2: float, y2: float) -> str:
    """A horizontal S-curve from (x1, y1) to (x2, y2)."""
    mid = (x1 + x2) / 2
    return f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"


def render_graph(graph: TrustGraph, *, app_links: dict[str, str], expanded: bool | None = None) -> Markup:
    apps = graph.of_kind("application")
    issuers = graph.of_kind("issuer")
    fics = graph.of_kind("credential")
    show_fics = expanded if expanded is not None else len(apps) <= COLLAPSE_ABOVE
    fics_of: dict[str, list[str]] = defaultdict(list)
    issuer_of: dict[str, str] = {}
    for edge in graph.edges:
        if edge.kind == "trusts":
            fics_of[edge.source].append(edge.target)
        elif edge.kind == "issued-by":
            issuer_of[edge.source] = edge.target
    rows_left = sum(max(len(fics_of[a.id]), 1) for a in apps) if show_fics else len(apps)
    height = 40 + _ROW * max(rows_left, len(issuers), 1)
    width = _ISSUER_X + _BOX_W + 20 if show_fics else _FIC_X + _BOX_W + 20
    issuer_x = _ISSUER_X if show_fics else _FIC_X
    parts = [
        f'<svg class="graph" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="group" '
        'aria-labelledby="graph-t graph-d">',
        f'<title id="graph-t">Trust graph of {escape(graph.tenant)}</title>',
        f'<desc id="graph-d">{len(apps)} applications, {len(fics)} federated credentials, {len(issuers)} '
        "external issuers; the table below lists the same.</desc>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>',
        f'<text class="colhead" x="{_APP_X}" y="18">applications</text>',
        f'<text class="colhead" x="{issuer_x}" y="18">external issuers</text>',
    ]
    if show_fics:
        parts.append(f'<text class="colhead" x="{_FIC_X}" y="18">federated credentials</text>')
    issuer_y = {node.id: 30 + i * _ROW for i, node in enumerate(issuers)}
    app_y: dict[str, float] = {}
    y = 30.0
    for app in apps:
        count = max(len(fics_of[app.id]), 1) if show_fics else 1
        app_y[app.id] = y + (count - 1) * _ROW / 2
        y += count * _ROW
    for node in issuers:
        iy = issuer_y[node.id]
        parts.append(
            f'<g class="node issuer"><rect x="{issuer_x}" y="{iy}" width="{_BOX_W}" height="20" rx="10"/>'
            f'<text x="{issuer_x + 8}" y="{iy + 14}">{escape(_short(node.label))}<title>{escape(node.label)}'
            "</title></text></g>"
        )
    y = 30.0
    for app in apps:
        ay = app_y[app.id]
        link = app_links.get(app.id)
        tip = f"<title>{escape(app.label)} ({escape(app.detail)})</title>"
        label = f'<text x="{_APP_X + 8}" y="{ay + 14}">{escape(_short(app.label, 30))}{tip}</text>'
        box = f'<rect x="{_APP_X}" y="{ay}" width="{_BOX_W}" height="20" rx="3"/>{label}'
        parts.append(
            f'<a href="{escape(link)}" class="node app">{box}</a>'
            if link
            else f'<g class="node app">{box}</g>'
        )
        if show_fics:
            for j, fic_id in enumerate(fics_of[app.id]):
                fy = y + j * _ROW
                fic = graph.node(fic_id)
                parts.append(
                    f'<path class="edge" d="{_curve(_APP_X + _BOX_W, ay + 10, _FIC_X, fy + 10)}"/>'
                    f'<g class="node fic"><rect x="{_FIC_X}" y="{fy}" width="{_BOX_W}" height="20" rx="3"/>'
                    f'<text x="{_FIC_X + 8}" y="{fy + 14}">{escape(_short(fic.label + ": " + fic.detail))}'
                    f"<title>{escape(fic.label)}: {escape(fic.detail)}</title></text></g>"
                )
                iy = issuer_y[issuer_of[fic_id]]
                parts.append(
                    f'<path class="edge" d="{_curve(_FIC_X + _BOX_W, fy + 10, _ISSUER_X, iy + 10)}" '
                    'marker-end="url(#arrow)"/>'
                )
            y += max(len(fics_of[app.id]), 1) * _ROW
        else:
            per_issuer = Counter(issuer_of[f] for f in fics_of[app.id])
            for issuer_id, n in per_issuer.items():
                iy = issuer_y[issuer_id]
                parts.append(
                    f'<path class="edge" d="{_curve(_APP_X + _BOX_W, ay + 10, _FIC_X, iy + 10)}" '
                    'marker-end="url(#arrow)">'
                    f"<title>{n} credential(s)</title></path>"
                )
    for edge in graph.edges:
        if edge.kind != "holds-role" or edge.source not in app_y or edge.target not in app_y:
            continue
        sy, ty = app_y[edge.source] + 10, app_y[edge.target] + 10
        bend = _APP_X - 20 - min(abs(ty - sy) / 4, _APP_X - 30)
        parts.append(
            f'<path class="role" d="M{_APP_X},{sy} C{bend},{sy} {bend},{ty} {_APP_X},{ty}" '
            'marker-end="url(#arrow)">'
            f"<title>holds {escape(edge.label)}</title></path>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 every text above is escaped, every number formatted
