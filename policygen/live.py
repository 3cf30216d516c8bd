"""The review kept live, for the controller: work grows with what changed, not with the cluster.

Committed edges are merged into memory (the one EdgeStats.merge) and into the graph in place; the
workloads at either end are marked dirty. A workload's policy is synthesized again only when it is
asked for and dirty (its edges changed, or its or its peers' selectors changed with the inventory).
Each edge's verdicts (under the cluster's policies, and with the generated ones added) are cached and
computed again only when the policy of one of its ends changed. Everything a request needs for one
workload or one namespace is found through per-workload and per-namespace indexes.

Reads never wait behind a synthesis: the lock guards the indexes only; a policy is synthesized outside
it from a copy of its workload's edges (kept only when the workload was not marked again meanwhile), so
a commit (`add`, on the controller's event loop) and the reads of other workloads go on meanwhile.
`on_synthesized` is told of every policy kept, so the controller renders it in the background.

Pure: no I/O. The controller feeds it committed edges and inventories and serves what it returns.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import networkx as nx

from netguard.evaluate import PolicySet, Targets, cluster_policy_set
from netguard.inventory import Inventory
from netguard.model import Edge, EdgeKey, EdgeStats, Workload
from netguard.netpol import NetworkPolicy
from policygen.diff import diff_policies
from policygen.graph import edge_attrs, node_attrs, node_id
from policygen.synth import GeneratedPolicy, SynthesisOptions, Synthesizer


@dataclass(frozen=True)
class _Facts:
    """What the review takes from one inventory (made outside the lock, installed under it)."""

    inventory: Inventory
    synth: Synthesizer
    targets: Targets
    current: PolicySet  # the cluster's policies with the admin tiers (ANP, BANP)
    namespaced: PolicySet  # the NetworkPolicies alone, to find those selecting a pod
    sorted: list[Workload]
    pods: dict[Workload, list[dict]]

    @classmethod
    def of(cls, inventory: Inventory, options: SynthesisOptions) -> _Facts:
        pods: dict[Workload, list[dict]] = defaultdict(list)
        for pod in inventory.pods:
            pods[pod.workload].append({"name": pod.name, "ip": pod.ip, "node": pod.node})
        return cls(inventory, Synthesizer(inventory, options), Targets(inventory),
                   cluster_policy_set(inventory, inventory.policies), PolicySet(inventory.policies),
                   sorted(inventory.workloads), pods)


@dataclass
class Page:
    """One page of a list: the items, and where the next page starts (None: this was the last)."""

    items: list[GeneratedPolicy]
    next_after: Workload | None
    remaining: int


class LiveReview:
    """Edges, policies, verdicts and the graph of one controller, updated in place."""

    def __init__(self, inventory: Inventory, options: SynthesisOptions | None = None) -> None:
        self.options = options or SynthesisOptions()
        self.edges: dict[EdgeKey, EdgeStats] = {}
        self.baseline: set[EdgeKey] = set()
        self.graph = nx.MultiDiGraph()
        self._lock = threading.RLock()
        self._by_workload: dict[Workload, set[EdgeKey]] = defaultdict(set)
        self._nodes_by_namespace: dict[str, set[str]] = defaultdict(set)
        self._policies: dict[Workload, GeneratedPolicy | None] = {}
        self._dirty: set[Workload] = set()
        self._marks: dict[Workload, int] = defaultdict(int)  # bumped each time a workload is marked dirty
        self._with_baseline: set[Workload] = set()  # workloads with at least one baseline edge
        self._listed: list[Workload] | None = None  # the workloads that get a policy, in order (made on use)
        self.on_synthesized: Callable[[GeneratedPolicy], None] | None = None
        self.synthesized = 0  # policies kept so far
        self._generation: dict[Workload, int] = defaultdict(int)  # bumped when a workload's rules change
        self._verdict: dict[EdgeKey, str] = {}  # under the cluster's policies
        self._candidate: dict[EdgeKey, tuple[int, int, str]] = {}  # (src generation, dst generation, verdict)
        self.seq = 0  # the store's commit sequence this state includes (the controller's bookkeeping)
        self._set_inventory(inventory)

    # --- inputs ------------------------------------------------------------------------------------

    def _set_inventory(self, inventory: Inventory) -> None:
        self._install(_Facts.of(inventory, self.options))

    def _install(self, facts: _Facts) -> None:
        self.inventory = facts.inventory
        self._synth = facts.synth
        self._targets = facts.targets
        self._current = facts.current
        self._namespaced = facts.namespaced
        self._sorted = facts.sorted
        self._pods = facts.pods
        self._listed = None

    def set_inventory(self, inventory: Inventory) -> None:
        """A new inventory: workloads whose facts or selectors changed are dirty, and so are their peers
        (their rules name those selectors); a change of the cluster's policies makes every verdict stale.
        What the new inventory gives (its synthesizer, targets, policy sets: about a second at 10,000
        workloads) is made outside the lock; only the swap and the marking hold it, so commits and reads
        go on meanwhile. Call from one thread at a time."""
        old, old_selectors = self.inventory, self._synth.selectors
        facts = _Facts.of(inventory, self.options)
        changed = {w for w in set(old.workloads) | set(inventory.workloads)
                   if old.workloads.get(w) != inventory.workloads.get(w)
                   or old_selectors.get(w) != facts.synth.selectors.get(w)}
        if old.policies != inventory.policies:
            changed = set(inventory.workloads) | set(old.workloads)
        with self._lock:
            self._install(facts)
            dirty = set(changed)
            for workload in changed:
                for key in self._by_workload.get(workload, ()):
                    dirty.update(e.workload for e in (key.src, key.dst) if e.workload is not None)
            self._mark(dirty)
            self._verdict.clear()  # Targets (labels, named ports) may have changed
            self._candidate.clear()

    def add(self, edges: Iterable[tuple[Edge, bool]]) -> None:
        """Committed edges (each with whether it is baseline) merged in; their workloads are dirty."""
        with self._lock:
            for edge, in_baseline in edges:
                key = edge.key
                mine = self.edges.get(key)
                if mine is None:
                    mine = self.edges[key] = edge.stats.copy()
                    self._index(key)
                else:
                    mine.merge(edge.stats)
                if in_baseline:
                    self.baseline.add(key)
                src, dst = node_id(key.src), node_id(key.dst)
                attrs = self.graph.edges[src, dst, f"{key.port}/{key.protocol}"]
                attrs.update(edge_attrs(Edge(key, mine)), baseline=key in self.baseline)
                if key in self.baseline:
                    ends = [e.workload for e in (key.src, key.dst) if e.workload is not None]
                    self._mark(ends)
                    if not self._with_baseline.issuperset(ends):
                        self._with_baseline.update(ends)
                        self._listed = None

    def _mark(self, workloads: Iterable[Workload]) -> None:
        for workload in workloads:
            self._dirty.add(workload)
            self._marks[workload] += 1

    def _index(self, key: EdgeKey) -> None:
        for endpoint in (key.src, key.dst):
            node = node_id(endpoint)
            if node not in self.graph:
                self.graph.add_node(node, **node_attrs(endpoint))
            if endpoint.workload is not None:
                self._by_workload[endpoint.workload].add(key)
                self._nodes_by_namespace[endpoint.workload.namespace].add(node)
        self.graph.add_edge(node_id(key.src), node_id(key.dst), key=f"{key.port}/{key.protocol}")

    # --- policies ----------------------------------------------------------------------------------

    def policy(self, workload: Workload) -> GeneratedPolicy | None:
        """The workload's generated policy, synthesized again only if it is dirty. The synthesis runs
        outside the lock on a copy of the workload's edges; its result is kept only when the workload
        was not marked again meanwhile (then the next read synthesizes again)."""
        with self._lock:
            if workload in self._policies and workload not in self._dirty:
                return self._policies[workload]
            mark, synth = self._marks[workload], self._synth
            ins, outs = [], []
            for key in sorted(k for k in self._by_workload.get(workload, ()) if k in self.baseline):
                edge = Edge(key, self.edges[key].copy())  # merged into in place by later commits
                if key.dst.workload == workload:
                    ins.append(edge)
                if key.src.workload == workload:
                    outs.append(edge)
        generated = synth.policy_for(workload, ins, outs)
        with self._lock:
            if self._marks[workload] != mark or synth is not self._synth:
                return generated
            before = self._policies.get(workload)
            if (before.policy if before else None) != (generated.policy if generated else None):
                self._generation[workload] += 1
            self._policies[workload] = generated
            self._dirty.discard(workload)
            self.synthesized += 1
        if generated is not None and self.on_synthesized is not None:
            self.on_synthesized(generated)
        return generated

    def kept(self, workload: Workload) -> GeneratedPolicy | None:
        """The policy last kept for the workload, without synthesizing (None: none yet, or it has none)."""
        return self._policies.get(workload)

    def _has_policy(self, workload: Workload) -> bool:
        return self._synth.wants_policy(workload, workload in self._with_baseline)

    def page(self, namespace: str | None = None, after: Workload | None = None, limit: int = 0) -> Page:
        """Policies in workload order (of a namespace, or all), after `after`, at most `limit` (0: all).
        Found by bisection in the list of workloads that get one: a page costs its own items only."""
        listed = self._listed_in(namespace)
        i = bisect.bisect_right(listed, after) if after is not None else 0
        items: list[GeneratedPolicy] = []
        last: Workload | None = None
        while i < len(listed) and not (limit and len(items) == limit):
            generated = self.policy(listed[i])
            i += 1
            if generated is not None:
                items.append(generated)
                last = generated.workload
        if i < len(listed):
            return Page(items, last, len(listed) - i)
        return Page(items, None, 0)

    def _listed_in(self, namespace: str | None) -> list[Workload]:
        """The workloads that get a policy (of a namespace, or all), in order; the list is made again only
        when a workload gets its first baseline edge or the inventory changes."""
        with self._lock:
            if self._listed is None:
                self._listed = [w for w in self._sorted if self._has_policy(w)]
            return _namespace_slice(self._listed, namespace)

    def _in_scope(self, namespace: str | None) -> list[Workload]:
        return _namespace_slice(self._sorted, namespace)

    @property
    def warnings(self) -> list[str]:
        return list(self._synth.warnings)

    # --- verdicts ----------------------------------------------------------------------------------

    def verdicts(self, key: EdgeKey) -> tuple[str, str]:
        """(under the cluster's policies, with the generated ones added): allowed, denied or not-covered.
        Synthesis and evaluation run outside the lock; the results are kept when the inventory they were
        computed with is still the current one."""
        ends = [e.workload for e in (key.src, key.dst)]
        for w in ends:
            if w is not None:
                self.policy(w)
        with self._lock:
            targets, current_set = self._targets, self._current
            current = self._verdict.get(key)
            gens = tuple(self._generation[w] if w is not None else 0 for w in ends)
            cached = self._candidate.get(key)
            if current is not None and cached is not None and cached[:2] == gens:
                return current, cached[2]
            candidate_set = self.candidate_set(key)
        src, dst = targets.of(key.src), targets.of(key.dst)
        if current is None:
            current = current_set.evaluate(src, dst, key.port, key.protocol).decision.value
        candidate = candidate_set.evaluate(src, dst, key.port, key.protocol).decision.value
        with self._lock:
            if targets is self._targets:
                self._verdict[key] = current
                self._candidate[key] = (gens[0], gens[1], candidate)
        return current, candidate

    def candidate_set(self, key: EdgeKey) -> PolicySet:
        """The policies that decide this edge once the generated ones are added: those selecting either
        end (a generated policy replaces the cluster's policy of the same name), under the admin tiers."""
        generated = [g.policy for w in {key.src.workload, key.dst.workload} if w is not None
                     for g in (self._policies.get(w),) if g is not None]
        names = {p.ref for p in generated}
        current = {p.ref: p for e in (key.src, key.dst) for p in self._namespaced.selecting(self._targets.of(e))}
        return cluster_policy_set(self.inventory, [p for ref, p in sorted(current.items()) if ref not in names] + generated)

    # --- views (JSON shapes of policygen.review, for a workload, a namespace or all) ------------------

    def edge_keys(self, namespace: str | None = None, workload: Workload | None = None) -> list[EdgeKey]:
        with self._lock:
            if workload is not None:
                return sorted(self._by_workload.get(workload, ()))
            if namespace is not None:
                keys: set[EdgeKey] = set()
                for w in self._in_scope(namespace):
                    keys |= self._by_workload.get(w, set())
                keys |= {k for w, ks in self._by_workload.items() if w.namespace == namespace and w not in
                         self.inventory.workloads for k in ks}
                return sorted(keys)
            return sorted(self.edges)

    def graph_json(self, namespace: str | None = None, workload: Workload | None = None) -> dict:
        """The graph (or the part around a namespace or a workload) as Review.graph_json serves it."""
        keys = self.edge_keys(namespace, workload)
        edges: list[dict] = []
        nodes: set[str] = set()
        for key in keys:  # the lock is taken per edge: commits (the event loop) never wait for a whole graph
            current, candidate = self.verdicts(key)
            src, dst = node_id(key.src), node_id(key.dst)
            nodes.update((src, dst))
            with self._lock:
                data = dict(self.graph.edges[src, dst, f"{key.port}/{key.protocol}"])
            edges.append({"source": src, "target": dst, "key": f"{key.port}/{key.protocol}", **data,
                          "verdict": current, "candidate_verdict": candidate})
        with self._lock:
            node_docs = [self._node_json(n) for n in sorted(nodes)]
        edges.sort(key=lambda e: (e["source"], e["target"], e["key"]))
        return {
            "nodes": node_docs,
            "edges": edges,
            "namespaces": sorted({n["namespace"] for n in node_docs if n["namespace"]}),
            "stats": {
                "workloads": sum(1 for n in node_docs if n["kind"] == "workload"),
                "nodes": len(node_docs),
                "edges": len(edges),
                "connections": sum(e["connections"] for e in edges),
            },
        }

    def _node_json(self, node: str) -> dict:
        data = self.graph.nodes[node]
        doc = {"id": node, **data}
        if data["kind"] == "workload":
            workload = Workload(data["namespace"], data["workload_kind"], data["name"])
            info = self.inventory.workloads.get(workload)
            if info is not None:
                doc["labels"] = dict(info.labels)
                doc["pods"] = self._pods.get(workload, [])
                doc["ports"] = [f"{p.port}/{p.protocol}" + (f" ({p.name})" if p.name else "") for p in info.ports]
        return doc

    def diff_json(self, namespace: str | None = None, workload: Workload | None = None) -> dict:
        if workload is not None:
            generated = [g for g in (self.policy(workload),) if g is not None]
            refs = {g.policy.ref for g in generated}
            current: list[NetworkPolicy] = [p for p in self.inventory.policies if p.ref in refs]
        else:
            generated = self.page(namespace).items
            current = [p for p in self.inventory.policies if namespace is None or p.namespace == namespace]
        changes = diff_policies(current, [g.policy for g in generated])
        return {"changes": [{"ref": c.ref, "status": c.status, "diff": c.diff} for c in changes]}

    def impact_json(self, namespace: str | None = None, workload: Workload | None = None) -> dict:
        """The observed edges (around a workload, a namespace, or all) that the cluster's policies deny,
        and those the candidate set would: the graph's verdicts, with the evaluator's reasons."""
        # every edge the graph shows, learned or not: a lateral move the candidate policies would deny is
        # exactly what the impact must count (and the verdicts are the graph's: one function, `verdicts`)
        keys = self.edge_keys(namespace, workload)
        denied: dict[str, list[dict]] = {"current": [], "candidate": []}
        for key in keys:
            current, candidate = self.verdicts(key)
            for label, verdict in (("current", current), ("candidate", candidate)):
                if verdict == "denied":
                    denied[label].append(self._denied(key, label))
        return {label: {"denied": items, "edges": len(keys)} for label, items in denied.items()}

    def _denied(self, key: EdgeKey, label: str) -> dict:
        with self._lock:
            policy_set = self._current if label == "current" else self.candidate_set(key)
            verdict = policy_set.evaluate(self._targets.of(key.src), self._targets.of(key.dst), key.port, key.protocol)
            return {"source": str(key.src), "target": str(key.dst), "port": key.port, "protocol": key.protocol,
                    "connections": self.edges[key].connections, "reasons": verdict.reasons()}

    def namespaces_json(self) -> dict:
        """Every namespace with workloads or edges, with counts, and the traffic between namespaces
        summed (`links`, with the worst verdict known so far): what a client draws before it opens
        one namespace at a time."""
        with self._lock:  # a snapshot; the sums are made outside the lock (commits go on meanwhile)
            names = {w.namespace for w in self.inventory.workloads} | set(self._nodes_by_namespace)
            edges = [(key, stats.connections) for key, stats in self.edges.items()]
            verdicts, candidates = dict(self._verdict), dict(self._candidate)
            listed = set(self._listed_in(None))
            known = self.inventory.workloads
        touching: dict[str, int] = defaultdict(int)  # edges with an end among a namespace's workloads
        links: dict[tuple[str, str], dict] = {}
        for key, connections in edges:
            a, b = key.src.workload, key.dst.workload
            for ns in {w.namespace for w in (a, b) if w is not None and w in known}:
                touching[ns] += 1
            if a is None or b is None:
                continue
            link = links.get((a.namespace, b.namespace))
            if link is None:
                link = links[(a.namespace, b.namespace)] = {
                    "source": a.namespace, "target": b.namespace, "edges": 0, "connections": 0, "ports": set(),
                    "verdict": "allowed", "candidate_verdict": "allowed"}
            link["edges"] += 1
            link["connections"] += connections
            link["ports"].add(f"{key.port}/{key.protocol}")
            cached = (verdicts.get(key), (candidates.get(key) or (0, 0, None))[2])
            for field, verdict in zip(("verdict", "candidate_verdict"), cached, strict=True):
                worst = verdict or "not-covered"  # not evaluated yet: shown as unknown
                if _WORST[worst] > _WORST[link[field]]:
                    link[field] = worst
        for link in links.values():
            link["ports"] = sorted(link["ports"])
        out = [{"name": ns, "workloads": len(workloads), "edges": touching[ns],
                "policies": sum(1 for w in workloads if w in listed)}
               for ns in sorted(names) for workloads in (self._in_scope(ns),)]
        return {"namespaces": out, "links": [links[k] for k in sorted(links)]}


_WORST = {"allowed": 1, "not-covered": 2, "denied": 3}


def _namespace_slice(workloads: list[Workload], namespace: str | None) -> list[Workload]:
    """The part of a sorted list of workloads in `namespace` (None: all of it)."""
    if namespace is None:
        return workloads
    lo = bisect.bisect_left(workloads, Workload(namespace, "", ""))
    hi = bisect.bisect_left(workloads, Workload(namespace + "\0", "", ""))
    return workloads[lo:hi]
