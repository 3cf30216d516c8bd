"""The service communication graph: workloads (and outside peers) as nodes, one edge per
(destination port, protocol) with its counters. Views (per namespace) are derived, never stored."""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from netguard.model import Edge, Endpoint


def node_id(endpoint: Endpoint) -> str:
    return str(endpoint)


def node_attrs(endpoint: Endpoint) -> dict[str, str]:
    if endpoint.workload is not None:
        w = endpoint.workload
        return {"kind": "workload", "namespace": w.namespace, "name": w.name, "workload_kind": w.kind, "label": w.name}
    return {"kind": endpoint.kind.value, "namespace": "", "name": endpoint.address, "workload_kind": "",
            "label": str(endpoint)}


def build_graph(edges: Iterable[Edge]) -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    for edge in edges:
        src, dst = node_id(edge.src), node_id(edge.dst)
        if src not in graph:
            graph.add_node(src, **node_attrs(edge.src))
        if dst not in graph:
            graph.add_node(dst, **node_attrs(edge.dst))
        graph.add_edge(
            src,
            dst,
            key=f"{edge.port}/{edge.protocol}",
            port=edge.port,
            protocol=edge.protocol,
            connections=edge.connections,
            bytes=edge.bytes,
            packets=edge.packets,
            first_seen=edge.first_seen,
            last_seen=edge.last_seen,
            port_name=edge.port_name,
            via_service=edge.via_service,
        )
    return graph


def namespace_view(graph: nx.MultiDiGraph) -> nx.DiGraph:
    """Namespaces (and outside peers) as nodes; edges summed across workloads."""
    view = nx.DiGraph()
    for node, data in graph.nodes(data=True):
        view.add_node(data["namespace"] or data["kind"])
    for src, dst, data in graph.edges(data=True):
        a = graph.nodes[src]["namespace"] or graph.nodes[src]["kind"]
        b = graph.nodes[dst]["namespace"] or graph.nodes[dst]["kind"]
        if view.has_edge(a, b):
            view[a][b]["connections"] += data["connections"]
        else:
            view.add_edge(a, b, connections=data["connections"])
    return view
