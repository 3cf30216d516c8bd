"""The review model: what a person looks at before policies are applied.

For one (inventory, observed edges, current cluster policies) it holds the generated candidates,
the graph with each edge's verdict under the current and the candidate policies, the diff and the
impact. The controller's API and the UI serve exactly these JSON shapes, so both stay in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx

from netguard.evaluate import Targets, cluster_policy_set
from netguard.inventory import Inventory
from netguard.model import Edge
from netguard.netpol import NetworkPolicy
from policygen.diff import diff_policies
from policygen.graph import annotate_verdicts, build_graph, graph_to_dict, node_id
from policygen.render import dump_yaml, explanation
from policygen.synth import GeneratedPolicy, SynthesisOptions, SynthesisResult, synthesize

DECISIONS = ("pending", "approved", "rejected")


@dataclass
class Review:
    inventory: Inventory
    edges: list[Edge]
    current: list[NetworkPolicy]
    synthesis: SynthesisResult
    graph: nx.MultiDiGraph = field(repr=False)

    @property
    def generated(self) -> list[GeneratedPolicy]:
        return self.synthesis.policies

    def candidate_policies(
        self, approvals: Mapping[str, str] | None = None, *, approved_only: bool = False
    ) -> list[NetworkPolicy]:
        """The cluster's policies with the generated ones added (all, or only the approved ones)."""
        approvals = approvals or {}
        chosen = [g.policy for g in self.generated if not approved_only or approvals.get(g.workload.key) == "approved"]
        names = {p.ref for p in chosen}
        return [p for p in self.current if p.ref not in names] + chosen

    def graph_json(self) -> dict:
        """The graph, each workload node with its pod labels, pods and ports (what the UI shows on
        click and filters by), so the controller and the UI's file mode serve the same fields."""
        graph = graph_to_dict(self.graph)
        infos = {f"{w.namespace}/{w.name}": info for w, info in self.inventory.workloads.items()}
        pods: dict = {}
        for pod in self.inventory.pods:
            pods.setdefault(pod.workload, []).append({"name": pod.name, "ip": pod.ip, "node": pod.node})
        for node in graph["nodes"]:
            info = infos.get(node["id"]) if node.get("kind") == "workload" else None
            if info is None:
                continue
            node["labels"] = dict(info.labels)
            node["pods"] = pods.get(info.workload, [])
            node["ports"] = [f"{p.port}/{p.protocol}" + (f" ({p.name})" if p.name else "") for p in info.ports]
        return graph

    def policies_json(self, approvals: Mapping[str, str] | None = None) -> dict:
        approvals = approvals or {}
        items = [policy_json(g, approvals.get(g.workload.key, "pending")) for g in self.generated]
        return {"policies": items, "warnings": list(self.synthesis.warnings)}

    def diff_json(self) -> dict:
        changes = diff_policies(self.current, [g.policy for g in self.generated])
        return {"changes": [{"ref": c.ref, "status": c.status, "diff": c.diff} for c in changes]}

    def impact_json(self, approvals: Mapping[str, str] | None = None) -> dict:
        """Which observed edges the current policies deny, and which the candidate set would: the graph's
        verdicts (annotate_verdicts, the one place they are computed), with the evaluator's reasons."""
        targets = Targets(self.inventory)
        sets = {label: cluster_policy_set(self.inventory, policies)
                for label, policies in (("current", self.current), ("candidate", self.candidate_policies(approvals)))}
        attrs = {"current": "verdict", "candidate": "candidate_verdict"}
        out = {}
        for label, policy_set in sets.items():
            denied = []
            for edge in self.edges:
                key = (node_id(edge.src), node_id(edge.dst), f"{edge.port}/{edge.protocol}")
                if self.graph.edges[key].get(attrs[label]) != "denied":
                    continue
                verdict = policy_set.evaluate(targets.of(edge.src), targets.of(edge.dst), edge.port, edge.protocol)
                denied.append({"source": str(edge.src), "target": str(edge.dst), "port": edge.port,
                               "protocol": edge.protocol, "connections": edge.connections, "reasons": verdict.reasons()})
            out[label] = {"denied": denied, "edges": len(self.edges)}
        return out


def policy_json(g: GeneratedPolicy, status: str) -> dict:
    """One generated policy as the API and the UI show it (whole lists, pages and single workloads)."""
    item, _ = policy_parts(g)
    return {**{k: item[k] for k in ("workload", "namespace", "name", "kind", "path")}, "status": status, **item}


def policy_parts(g: GeneratedPolicy) -> tuple[dict, str]:
    """policy_json without the status, and the canonical text approvals bind to (approval.canonical_text):
    the policy object is converted and emitted once for both, the YAML below the comments being that text."""
    policy = g.policy.to_dict()
    canonical = dump_yaml(policy)
    worded = ([list(j.lines) for j in g.ingress_why], [list(j.lines) for j in g.egress_why])  # worded once
    item = {
        "workload": g.workload.key,
        "namespace": g.workload.namespace,
        "name": g.policy.name,
        "kind": g.workload.kind,
        "path": g.path,
        "connections": g.connections,
        "yaml": explanation(g, worded) + canonical,
        "policy": policy,
        "ingress_why": worded[0],
        "egress_why": worded[1],
        "notes": list(g.notes),
    }
    return item, canonical


def build_review(
    inventory: Inventory, edges: list[Edge], current: list[NetworkPolicy] | None = None, options: SynthesisOptions | None = None
) -> Review:
    current = list(inventory.policies if current is None else current)
    synthesis = synthesize(inventory, edges, options)
    graph = build_graph(edges)
    annotate_verdicts(graph, inventory, edges, current, attr="verdict")
    names = {g.policy.ref for g in synthesis.policies}
    candidate = [p for p in current if p.ref not in names] + [g.policy for g in synthesis.policies]
    annotate_verdicts(graph, inventory, edges, candidate, attr="candidate_verdict")
    return Review(inventory, edges, current, synthesis, graph)
