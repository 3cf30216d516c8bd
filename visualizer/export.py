"""Graph exports: JSON (the UI's data), GraphML (Gephi, yEd, networkx) and DOT (Graphviz).

Nodes are grouped by namespace (DOT clusters); edges carry port/protocol/connections and, when
policies were given, their verdict (allowed, denied, not-covered).
"""

from __future__ import annotations

import io
import json

import networkx as nx

from netguard.evaluate import Decision
from policygen.graph import graph_to_dict

VERDICT_COLORS = {Decision.ALLOWED: "#2e7d32", Decision.DENIED: "#c62828", Decision.NOT_COVERED: "#9e9e9e"}
KIND_SHAPES = {
    "workload": "box",
    "namespace": "folder",
    "world": "ellipse",
    "node": "hexagon",
    "apiserver": "octagon",
    "node-local-dns": "ellipse",
}


def to_json(graph: nx.MultiDiGraph) -> str:
    return json.dumps(graph_to_dict(graph), indent=2, sort_keys=True) + "\n"


def _graphml_value(value):
    """GraphML attributes are scalars: a list (an edge's dst_names) becomes one comma-separated string."""
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else value


def to_graphml(graph: nx.MultiDiGraph) -> str:
    clean = nx.MultiDiGraph()
    for node, data in graph.nodes(data=True):
        clean.add_node(node, **{k: _graphml_value(v) for k, v in data.items() if v is not None})
    for s, t, k, data in graph.edges(keys=True, data=True):
        clean.add_edge(s, t, key=k, **{k2: _graphml_value(v) for k2, v in data.items() if v is not None})
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
            if verdict == Decision.DENIED:
                attrs.append("style=dashed")
        lines.append(f"  {_quote(s)} -> {_quote(t)} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


EXPORTERS = {"json": to_json, "graphml": to_graphml, "dot": to_dot}


# --- rendered pictures (server-side, headless): Graphviz lays out the DOT above -------------------

RENDER_TIMEOUT = 120.0


class RenderError(RuntimeError):
    """Graphviz is missing, failed or took too long."""


MAX_DRAWN_NODES = 300  # past this, pictures show one box per namespace (Graphviz's layout is superlinear)
_VERDICT_RANK: dict[str, int] = {Decision.DENIED: 3, Decision.NOT_COVERED: 2, Decision.ALLOWED: 1}


def aggregate_namespaces(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """One node per namespace (outside peers stay themselves), one edge per pair of them with the
    connections summed and the worst verdict of the edges it stands for."""

    def group(node: str) -> str:
        namespace = graph.nodes[node].get("namespace") or ""
        return f"namespace:{namespace}" if namespace else node

    out = nx.MultiDiGraph()
    members: dict[str, int] = {}
    for node, data in graph.nodes(data=True):
        g = group(node)
        members[g] = members.get(g, 0) + 1
        if g not in out:
            namespace = data.get("namespace")
            attrs = dict(data) if g == node else {"kind": "namespace", "namespace": namespace, "name": namespace}
            out.add_node(g, **attrs)
    for g, count in members.items():
        if out.nodes[g].get("kind") == "namespace":
            out.nodes[g]["label"] = f"{out.nodes[g]['name']} ({count} workloads)"
    sums: dict[tuple[str, str], dict] = {}
    for s, t, data in graph.edges(data=True):
        a, b = group(s), group(t)
        entry = sums.setdefault((a, b), {"connections": 0, "edges": 0, "verdict": None})
        entry["connections"] += data.get("connections") or 0
        entry["edges"] += 1
        verdict = data.get("verdict")
        if verdict and _VERDICT_RANK.get(verdict, 0) > _VERDICT_RANK.get(entry["verdict"] or "", 0):
            entry["verdict"] = verdict
    for (a, b), entry in sums.items():
        if a == b and out.nodes[a].get("kind") == "namespace":
            out.nodes[a]["inside"] = entry["edges"]
            continue
        out.add_edge(a, b, key=f"{entry['edges']} edges", connections=entry["connections"], verdict=entry["verdict"])
    return out


def namespaces_dot(graph: nx.MultiDiGraph) -> str:
    """DOT for the one-box-per-namespace picture: no edge labels, width by connections."""
    import math

    lines = [
        "digraph netguard {",
        "  graph [overlap=prism, splines=false, outputorder=edgesfirst, pad=0.3];",
        '  node [fontname="Helvetica", fontsize=11, shape=box, style="rounded,filled", fillcolor="#e3f2fd", color="#1e88e5"];',
        '  edge [arrowsize=0.5, color="#90a4ae80"];',
    ]
    for node, data in sorted(graph.nodes(data=True)):
        if data.get("kind") == "namespace":
            # two lines: DOT's \n inside the quoted label
            label = _quote(data.get("label") or node)[:-1] + f"\\n{data.get('inside', 0)} edges inside" + '"'
            lines.append(f"  {_quote(node)} [label={label}];")
        else:
            shape = KIND_SHAPES.get(data.get("kind", ""), "box")
            label = _quote(data.get("label") or node)
            lines.append(f'  {_quote(node)} [label={label}, shape={shape}, fillcolor="#fffde7", color="#c0a000"];')
    for s, t, data in sorted(graph.edges(data=True), key=lambda e: (e[0], e[1])):
        width = 0.5 + math.log10(1 + (data.get("connections") or 0)) * 0.6
        attrs = [f"penwidth={width:.2f}"]
        verdict = data.get("verdict")
        if verdict in VERDICT_COLORS:
            attrs.append(f"color={_quote(VERDICT_COLORS[verdict] + '99')}")
        lines.append(f"  {_quote(s)} -> {_quote(t)} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(graph: nx.MultiDiGraph, fmt: str, *, timeout: float = RENDER_TIMEOUT) -> bytes:
    """The graph drawn by Graphviz's `dot` as `svg` or `png` bytes; a graph of more than
    MAX_DRAWN_NODES nodes is drawn one box per namespace."""
    text = to_dot(graph)
    layout = "dot"
    if graph.number_of_nodes() > MAX_DRAWN_NODES:
        # a namespace graph is dense: a force layout reads better than dot's ranks
        text = namespaces_dot(aggregate_namespaces(graph))
        layout = "sfdp"
    return run_graphviz(text, fmt, layout=layout, timeout=timeout)


def run_graphviz(text: str, fmt: str, *, layout: str = "dot", timeout: float = RENDER_TIMEOUT) -> bytes:
    """DOT text drawn by Graphviz as `svg` or `png` bytes (the one place netguard runs Graphviz)."""
    import shutil
    import subprocess

    if fmt not in ("svg", "png"):
        raise ValueError(f"unknown picture format {fmt!r}")
    dot = shutil.which("dot")
    if dot is None:
        raise RenderError("Graphviz's `dot` is not installed (Debian: apt-get install graphviz; see scripts/system-deps.sh)")
    args = [dot, f"-K{layout}", f"-T{fmt}"]
    if fmt == "png":
        args.append("-Gdpi=110")
    try:
        done = subprocess.run(args, input=text.encode("utf-8"), capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"Graphviz took more than {timeout:.0f}s; export dot, json or graphml instead") from exc
    if done.returncode != 0:
        raise RenderError(f"Graphviz failed: {done.stderr.decode('utf-8', 'replace').strip()[:300]}")
    return done.stdout


def to_svg(graph: nx.MultiDiGraph) -> str:
    return render(graph, "svg").decode("utf-8")


def to_png(graph: nx.MultiDiGraph) -> bytes:
    return render(graph, "png")


def graph_from_dict(data: dict, verdict: str = "verdict") -> nx.MultiDiGraph:
    """The inverse of graph_to_dict (what the UI holds, from a local Review or the controller). With
    verdict="candidate_verdict" the edges are colored by their verdict under the candidate policies."""
    graph = nx.MultiDiGraph()
    for node in data.get("nodes", []):
        attrs = {k: v for k, v in node.items() if k != "id" and not isinstance(v, dict | list)}
        graph.add_node(node["id"], **attrs)
    for edge in data.get("edges", []):
        attrs = {k: v for k, v in edge.items() if k not in ("source", "target", "key")}
        if verdict != "verdict":
            attrs["verdict"] = edge.get(verdict)
        graph.add_edge(edge["source"], edge["target"], key=edge["key"], **attrs)
    return graph


EXPORTERS["svg"] = to_svg
BINARY_EXPORTERS = {"png": to_png}
