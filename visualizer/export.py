"""Graph exports: JSON (the UI's data), GraphML (Gephi, yEd, networkx) and DOT (Graphviz).

Nodes are grouped by namespace (DOT clusters); edges carry port/protocol/connections and, when
policies were given, their verdict (allowed, denied, not-covered).
"""

from __future__ import annotations

import io
import json

import networkx as nx

from policygen.graph import graph_to_dict

VERDICT_COLORS = {"allowed": "#2e7d32", "denied": "#c62828", "not-covered": "#9e9e9e"}
KIND_SHAPES = {"workload": "box", "world": "ellipse", "node": "hexagon", "apiserver": "octagon", "node-local-dns": "ellipse"}


def to_json(graph: nx.MultiDiGraph) -> str:
    return json.dumps(graph_to_dict(graph), indent=2, sort_keys=True) + "\n"


def to_graphml(graph: nx.MultiDiGraph) -> str:
    clean = nx.MultiDiGraph()
    for node, data in graph.nodes(data=True):
        clean.add_node(node, **{k: v for k, v in data.items() if v is not None})
    for s, t, k, data in graph.edges(keys=True, data=True):
        clean.add_edge(s, t, key=k, **{k2: v for k2, v in data.items() if v is not None})
    buf = io.BytesIO()
    nx.write_graphml(clean, buf, encoding="utf-8")
    return buf.getvalue().decode("utf-8")


def _quote(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: nx.MultiDiGraph) -> str:
    lines = [
        "digraph netguard {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    by_ns: dict[str, list[tuple[str, dict]]] = {}
    for node, data in sorted(graph.nodes(data=True)):
        by_ns.setdefault(data.get("namespace") or "", []).append((node, data))
    for i, (namespace, members) in enumerate(sorted(by_ns.items())):
        indent = "  "
        if namespace:
            lines.append(f"  subgraph cluster_{i} {{")
            lines.append(f'    label={_quote("namespace " + namespace)}; style=rounded; color="#90a4ae";')
            indent = "    "
        for node, data in members:
            shape = KIND_SHAPES.get(data.get("kind", ""), "box")
            label = data.get("label") or node
            lines.append(f"{indent}{_quote(node)} [label={_quote(label)}, shape={shape}];")
        if namespace:
            lines.append("  }")
    for s, t, k, data in sorted(graph.edges(keys=True, data=True), key=lambda e: (e[0], e[1], e[2])):
        label = f"{k} ({data.get('connections', 0)})"
        attrs = [f"label={_quote(label)}"]
        verdict = data.get("verdict")
        if verdict:
            attrs.append(f"color={_quote(VERDICT_COLORS.get(verdict, '#000000'))}")
            if verdict == "denied":
                attrs.append("style=dashed")
        lines.append(f"  {_quote(s)} -> {_quote(t)} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


EXPORTERS = {"json": to_json, "graphml": to_graphml, "dot": to_dot}
