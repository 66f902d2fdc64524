"""Who trusts whom in one tenant, as a graph: tenant -> applications -> federated credentials ->
external issuers (and the subjects or expressions they accept), and app roles held, as edges from
client to resource. One model behind the console's picture and ``keyless export --format
dot|mermaid``; built from the directory snapshot, so it costs no query."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from keyless.authority.directory.snapshot import TenantView

__all__ = ["Edge", "Node", "TrustGraph", "build_trust_graph", "to_dot", "to_mermaid"]


@dataclass(frozen=True, slots=True)
class Node:
    id: str  # stable and unique within the graph
    kind: str  # tenant | application | credential | issuer
    label: str
    detail: str = ""  # the subject or expression of a credential


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    kind: str  # owns | trusts | issued-by | holds-role
    label: str = ""


@dataclass
class TrustGraph:
    tenant: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)

    def of_kind(self, kind: str) -> list[Node]:
        return [n for n in self.nodes if n.kind == kind]


def _matches(query: str, *texts: str) -> bool:
    return any(query in t.lower() for t in texts)


def build_trust_graph(view: TenantView, query: str = "") -> TrustGraph:
    """The tenant's graph; with ``query``, only applications whose name, appId, credentials or
    issuers contain it (case-insensitively), and the resources they hold roles on."""
    q = query.strip().lower()
    graph = TrustGraph(view.tenant.display_name)
    tenant_id = f"t:{view.id}"
    graph.nodes.append(Node(tenant_id, "tenant", view.tenant.display_name, view.id))
    apps = sorted(
        {v.app.object_id: v for v in view.apps_by_app_id.values()}.values(), key=lambda v: v.app.display_name
    )
    by_sp = {v.app.service_principal_id: v for v in apps}
    shown: set[str] = set()
    for app_view in apps:
        app = app_view.app
        texts = [
            app.display_name,
            app.app_id,
            *(f.issuer for f in app_view.fics),
            *(f.rule for f in app_view.fics),
        ]
        if not q or _matches(q, *texts):
            shown.add(app.object_id)
    if q:  # keep the other end of every role edge of a shown application
        for client_sp, resource_sp in view.roles_by_pair:
            client, resource = by_sp.get(client_sp), by_sp.get(resource_sp)
            if client and resource and (client.app.object_id in shown or resource.app.object_id in shown):
                shown.update((client.app.object_id, resource.app.object_id))
    issuers: dict[str, str] = {}
    for app_view in apps:
        app = app_view.app
        if app.object_id not in shown:
            continue
        app_node = f"a:{app.object_id}"
        graph.nodes.append(Node(app_node, "application", app.display_name, app.app_id))
        graph.edges.append(Edge(tenant_id, app_node, "owns"))
        for fic in app_view.fics:
            fic_node = f"f:{fic.id}"
            detail = fic.rule + (f" if {fic.condition}" if fic.condition else "")
            graph.nodes.append(Node(fic_node, "credential", fic.name, detail))
            graph.edges.append(Edge(app_node, fic_node, "trusts"))
            issuer_node = issuers.setdefault(fic.issuer, f"i:{len(issuers)}")
            graph.edges.append(Edge(fic_node, issuer_node, "issued-by"))
    for issuer, node_id in issuers.items():
        graph.nodes.append(Node(node_id, "issuer", issuer))
    for (client_sp, resource_sp), roles in sorted(view.roles_by_pair.items()):
        client, resource = by_sp.get(client_sp), by_sp.get(resource_sp)
        if client is None or resource is None:
            continue
        if client.app.object_id in shown and resource.app.object_id in shown:
            label = ", ".join(roles)
            graph.edges.append(
                Edge(f"a:{client.app.object_id}", f"a:{resource.app.object_id}", "holds-role", label)
            )
    return graph


# -- text formats ------------------------------------------------------------------------------------

_SHAPES = {"tenant": "house", "application": "box", "credential": "note", "issuer": "ellipse"}


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def _dot_id(node_id: str) -> str:
    return '"' + _dot_text(node_id) + '"'


def to_dot(graph: TrustGraph) -> str:
    """Graphviz: ``dot -Tsvg``. Credentials show their subject or expression under the name."""
    lines = [f'digraph "{_dot_text(graph.tenant)}" {{', "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for node in graph.nodes:
        label = _dot_text(node.label)
        if node.kind == "credential" and node.detail:
            label += "\\n" + _dot_text(node.detail)
        lines.append(f'  {_dot_id(node.id)} [label="{label}", shape={_SHAPES[node.kind]}];')
    for edge in graph.edges:
        attributes = [f'label="{_dot_text(edge.label)}"'] if edge.label else []
        if edge.kind == "holds-role":
            attributes += ["style=dashed", 'color="#1f6feb"']
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"  {_dot_id(edge.source)} -> {_dot_id(edge.target)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


_MERMAID_UNSAFE = re.compile(r'["\[\]{}()<>|#;`]')


def _mermaid_text(text: str) -> str:
    return _MERMAID_UNSAFE.sub(lambda m: f"#{ord(m.group(0))};", text)


def _mermaid_ids(nodes: Iterable[Node]) -> dict[str, str]:
    return {n.id: f"n{i}" for i, n in enumerate(nodes)}


def to_mermaid(graph: TrustGraph) -> str:
    """A Mermaid flowchart, for Markdown documents (GitHub renders it)."""
    ids = _mermaid_ids(graph.nodes)
    shapes = {
        "tenant": ("[/", "\\]"),
        "application": ("[", "]"),
        "credential": ("[[", "]]"),
        "issuer": ("([", "])"),
    }
    lines = ["flowchart LR"]
    for node in graph.nodes:
        opening, closing = shapes[node.kind]
        text = _mermaid_text(node.label)
        if node.kind == "credential":
            text += "<br/>" + _mermaid_text(node.detail)
        lines.append(f'  {ids[node.id]}{opening}"{text}"{closing}')
    for edge in graph.edges:
        arrow = "-.->" if edge.kind == "holds-role" else "-->"
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"  {ids[edge.source]} {arrow}{label} {ids[edge.target]}")
    return "\n".join(lines) + "\n"
