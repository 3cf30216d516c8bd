"""The service communication graph: workloads (and outside peers) as nodes, one edge per
(destination port, protocol) with its counters. Views (per namespace) are derived, never stored."""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

import networkx as nx

from netguard.model import STAT_FIELDS, Edge, Endpoint


def node_id(endpoint: Endpoint) -> str:
    return str(endpoint)


def node_attrs(endpoint: Endpoint) -> dict[str, str]:
    if endpoint.workload is not None:
        w = endpoint.workload
        return {"kind": "workload", "namespace": w.namespace, "name": w.name, "workload_kind": w.kind, "label": w.name}
    return {"kind": endpoint.kind.value, "namespace": "", "name": endpoint.address, "workload_kind": "", "label": str(endpoint)}


_STAT_NAMES = tuple(f.name for f in STAT_FIELDS)
_STAT_VALUES = operator.attrgetter(*_STAT_NAMES)
_LISTS = tuple(f.name for f in STAT_FIELDS if str(f.type).startswith("tuple"))  # JSON lists (DNS names)


def edge_attrs(edge: Edge) -> dict[str, Any]:
    """A graph edge's attributes: the port and protocol, and every field of the edge's stats by its name
    (so what the Edge record holds, the graph, its JSON and the UI show; tuples become lists). On the
    ingest path (the live review updates its graph per committed edge): one attrgetter, no per-field calls."""
    attrs: dict[str, Any] = {"port": edge.port, "protocol": edge.protocol}
    attrs.update(zip(_STAT_NAMES, _STAT_VALUES(edge.stats), strict=True))
    for name in _LISTS:
        attrs[name] = list(attrs[name])
    return attrs


def build_graph(edges: Iterable[Edge]) -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    for edge in edges:
        src, dst = node_id(edge.src), node_id(edge.dst)
        if src not in graph:
            graph.add_node(src, **node_attrs(edge.src))
        if dst not in graph:
            graph.add_node(dst, **node_attrs(edge.dst))
        graph.add_edge(src, dst, key=f"{edge.port}/{edge.protocol}", **edge_attrs(edge))
    return graph


def namespace_view(graph: nx.MultiDiGraph) -> nx.DiGraph:
    """Namespaces (and outside peers) as nodes; edges summed across workloads."""
    view = nx.DiGraph()
    for _, data in graph.nodes(data=True):
        view.add_node(data["namespace"] or data["kind"])
    for src, dst, data in graph.edges(data=True):
        a = graph.nodes[src]["namespace"] or graph.nodes[src]["kind"]
        b = graph.nodes[dst]["namespace"] or graph.nodes[dst]["kind"]
        if view.has_edge(a, b):
            view[a][b]["connections"] += data["connections"]
        else:
            view.add_edge(a, b, connections=data["connections"])
    return view


def annotate_verdicts(graph: nx.MultiDiGraph, inventory, edges: Iterable[Edge], policies, attr: str = "verdict") -> None:
    """Set `attr` on each graph edge to the core evaluator's Decision under `policies`: allowed, denied
    (would be denied) or not-covered (no policy isolates either end)."""
    from netguard.evaluate import Targets, cluster_policy_set

    policy_set = cluster_policy_set(inventory, policies)
    targets = Targets(inventory)
    for edge in edges:
        verdict = policy_set.evaluate(targets.of(edge.src), targets.of(edge.dst), edge.port, edge.protocol)
        value = verdict.decision.value  # plain str: GraphML and JSON writers key on the exact type
        key = f"{edge.port}/{edge.protocol}"
        src, dst = node_id(edge.src), node_id(edge.dst)
        if graph.has_edge(src, dst, key):
            graph.edges[src, dst, key][attr] = value


def graph_to_dict(graph: nx.MultiDiGraph) -> dict:
    """The graph as plain JSON data: what `graph export --format json`, the controller and the UI serve."""
    nodes = [{"id": n, **data} for n, data in sorted(graph.nodes(data=True))]
    edges = [
        {"source": s, "target": t, "key": k, **data}
        for s, t, k, data in sorted(graph.edges(keys=True, data=True), key=lambda e: (e[0], e[1], e[2]))
    ]
    namespaces = sorted({d["namespace"] for _, d in graph.nodes(data=True) if d["namespace"]})
    return {
        "nodes": nodes,
        "edges": edges,
        "namespaces": namespaces,
        "stats": {
            "workloads": sum(1 for _, d in graph.nodes(data=True) if d["kind"] == "workload"),
            "nodes": graph.number_of_nodes(),
            "edges": graph.number_of_edges(),
            "connections": sum(d["connections"] for _, _, d in graph.edges(data=True)),
        },
    }
