"""Verification: does a policy set allow every observed edge, and what does it allow beyond them?

Two measured properties of a generated set:
- soundness: every observed edge is allowed (the share of connections allowed, 100% expected);
- least privilege: (src workload, dst workload, port) triples allowed but never observed, inside the
  cluster. DNS to kube-system on port 53 is counted apart: it is granted on purpose (UDP and TCP).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from netguard.adminpol import AdminPort
from netguard.evaluate import AnyPolicy, PolicySet, Targets, Tier, Verdict, cluster_policy_set
from netguard.inventory import Inventory
from netguard.model import PROTOCOLS, Edge, Workload
from netguard.netpol import Action, Direction, PolicyPeer, PolicyPort, Target
from policygen.index import WorkloadIndex

Triple = tuple[Workload, Workload, int, str]


@dataclass
class EdgeResult:
    edge: Edge
    verdict: Verdict


@dataclass
class VerifyReport:
    edges: int = 0
    connections: int = 0
    allowed_edges: int = 0
    allowed_connections: int = 0
    denied: list[EdgeResult] = field(default_factory=list)
    denied_by_admin: list[EdgeResult] = field(default_factory=list)  # denied by an ANP/BANP rule: no NetworkPolicy can help
    extra: list[Triple] = field(default_factory=list)  # allowed in-cluster triples never observed
    extra_dns: list[Triple] = field(default_factory=list)
    not_covered: int = 0  # observed in-cluster pairs where neither side is isolated

    @property
    def ok(self) -> bool:
        return not self.denied


def verify(
    inventory: Inventory, edges: Iterable[Edge], policies: Iterable[AnyPolicy], *, least_privilege: bool = True
) -> VerifyReport:
    policy_set = cluster_policy_set(inventory, policies)
    targets = Targets(inventory)
    report = VerifyReport()
    observed: dict[Triple, bool] = {}  # in-cluster triples seen, and whether they are allowed
    for edge in edges:
        src, dst = targets.of(edge.src), targets.of(edge.dst)
        verdict = policy_set.evaluate(src, dst, edge.port, edge.protocol)
        report.edges += 1
        report.connections += edge.connections
        if verdict.allowed:
            report.allowed_edges += 1
            report.allowed_connections += edge.connections
        else:
            report.denied.append(EdgeResult(edge, verdict))
            if verdict.denied_by_admin is not None:
                report.denied_by_admin.append(report.denied[-1])
        if edge.src.workload is not None and edge.dst.workload is not None:
            observed[(edge.src.workload, edge.dst.workload, edge.port, edge.protocol)] = verdict.allowed
            if not verdict.covered:
                report.not_covered += 1
    if least_privilege:
        for triple in sorted(allowed_triples(inventory, policy_set, targets, observed) - observed.keys()):
            is_dns = triple[2] == 53 and triple[1].namespace == "kube-system"
            (report.extra_dns if is_dns else report.extra).append(triple)
    return report


def _concrete_ports(
    rule_ports: tuple[PolicyPort, ...], dst: Workload, inventory: Inventory, known: set[tuple[int, str]]
) -> set[tuple[int, str]]:
    """The (port, protocol) pairs of `dst` a rule's ports admit: declared container ports, observed
    ports, and every explicitly numbered port."""
    info = inventory.workloads[dst]
    candidates = {(p.port, p.protocol) for p in info.ports} | known
    if not rule_ports:
        return candidates
    out: set[tuple[int, str]] = set()
    for rp in rule_ports:
        if isinstance(rp.port, int) and rp.end_port is None:
            out.add((rp.port, rp.protocol))
        elif isinstance(rp.port, str):
            port = info.named_ports.get((rp.port, rp.protocol))
            if port:
                out.add((port, rp.protocol))
        else:
            out |= {
                (p, proto)
                for p, proto in candidates
                if proto == rp.protocol and (rp.port is None or rp.port <= p <= (rp.end_port or rp.port))
            }
    return out


def allowed_triples(inventory: Inventory, policy_set: PolicySet, targets: Targets, observed: dict[Triple, bool]) -> set[Triple]:
    """Every in-cluster (src, dst, port, protocol) the policies allow where at least one side is
    isolated. Candidates come from the rules themselves (index lookups), then each is evaluated
    (observed ones were evaluated already)."""
    index = WorkloadIndex(inventory)
    known: dict[Workload, set[tuple[int, str]]] = {}
    for _, dst, port, proto in observed:
        known.setdefault(dst, set()).add((port, proto))
    all_workloads = [w for w, info in inventory.workloads.items() if not info.host_network]
    candidates: set[Triple] = set()
    for workload in all_workloads:
        target = targets.workload(workload)
        for policy in policy_set.selecting(target):
            if policy.isolates(Direction.INGRESS):
                for rule in policy.ingress:
                    sources = index.rule_workloads(rule.peers, policy.namespace)
                    ports = _concrete_ports(rule.ports, workload, inventory, known.get(workload, set()))
                    for src in all_workloads if sources is None else sources:
                        candidates.update((src, workload, p, proto) for p, proto in ports)
            if policy.isolates(Direction.EGRESS):
                for rule in policy.egress:
                    dests = index.rule_workloads(rule.peers, policy.namespace)
                    for dst in all_workloads if dests is None else dests:
                        ports = _concrete_ports(rule.ports, dst, inventory, known.get(dst, set()))
                        candidates.update((workload, dst, p, proto) for p, proto in ports)
        candidates |= _admin_candidates(inventory, policy_set, index, workload, target, all_workloads, known)
    return {
        (s, d, p, proto)
        for s, d, p, proto in candidates
        if observed.get((s, d, p, proto))
        or ((s, d, p, proto) not in observed and policy_set.allowed(targets.workload(s), targets.workload(d), p, proto))
    }


def _admin_candidates(inventory: Inventory, policy_set: PolicySet, index: WorkloadIndex, workload: Workload,
                      target: Target, all_workloads: list[Workload], known: dict[Workload, set[tuple[int, str]]]) -> set[Triple]:
    """The triples the Allow rules of the ANPs selecting `workload` name (an ANP Allow opens them whatever
    the NetworkPolicies say); each is evaluated afterwards like the others."""
    out: set[Triple] = set()
    for admin in policy_set.admin_for(target):
        for direction in Direction:
            for rule in admin.rules(direction):
                if rule.action is not Action.ALLOW:
                    continue
                ports = _policy_ports(rule.ports)
                others: set[Workload] = set()
                for peer in rule.peers:
                    if peer.namespaces is not None:
                        others |= index.peer_workloads(PolicyPeer(namespace_selector=peer.namespaces), "")
                    elif peer.pods is not None:
                        others |= index.peer_workloads(PolicyPeer(peer.pods, peer.pod_namespaces), "")
                for other in others & set(all_workloads):
                    src, dst = (other, workload) if direction is Direction.INGRESS else (workload, other)
                    out.update((src, dst, p, proto) for p, proto in _concrete_ports(ports, dst, inventory, known.get(dst, set())))
    return out


def _policy_ports(ports: tuple[AdminPort, ...]) -> tuple[PolicyPort, ...]:
    """An admin rule's ports in NetworkPolicy terms (a namedPort for each protocol)."""
    out: list[PolicyPort] = []
    for p in ports:
        if p.name is not None:
            out += [PolicyPort(proto, p.name) for proto in PROTOCOLS]
        else:
            out.append(PolicyPort(p.protocol, p.start, p.end))
    return tuple(out)


def admin_warnings(inventory: Inventory, edges: Iterable[Edge], generated: Iterable) -> list[str]:
    """What the cluster's admin tiers do to generated NetworkPolicies: observed flows an admin rule denies
    (no NetworkPolicy can allow them), and generated rules an admin rule always decides before them (they
    can never take effect). Empty when the cluster has no AdminNetworkPolicy or BaselineAdminNetworkPolicy."""
    if not inventory.admin_policies:
        return []
    generated = list(generated)
    policy_set = cluster_policy_set(inventory, [g.policy for g in generated])
    targets = Targets(inventory)
    warnings = []
    for edge in edges:
        verdict = policy_set.evaluate(targets.of(edge.src), targets.of(edge.dst), edge.port, edge.protocol)
        rule = verdict.denied_by_admin
        if rule is not None:
            warnings.append(f"observed {edge.src} -> {edge.dst} {edge.port}/{edge.protocol} is denied by {rule}: "
                            "no NetworkPolicy can allow it")
    for g in generated:
        for direction, whys in ((Direction.INGRESS, g.ingress_why), (Direction.EGRESS, g.egress_why)):
            for i, why in enumerate(whys):
                deciders = set()
                for edge in why.edges:
                    src, dst = targets.of(edge.src), targets.of(edge.dst)
                    pod, peer = (dst, src) if direction is Direction.INGRESS else (src, dst)
                    side = policy_set.direction(pod, peer, dst, edge.port, edge.protocol, direction)
                    deciders.add(side.admin if side.tier is Tier.ADMIN else None)
                if why.edges and None not in deciders:
                    names = ", ".join(sorted(str(d) for d in deciders))
                    warnings.append(f"{g.policy.ref} {direction}[{i}] can never take effect: {names} decides that traffic first")
    return warnings
