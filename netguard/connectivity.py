"""The whole map of what a policy set allows: every (source, destination, ports) it lets through.

Works on manifests alone (one representative pod per workload, from its template; no IPs) and on
cluster dumps. It scales by never walking pod x pod x port:
- workloads whose pods look the same to every policy (same namespace, labels and named ports) form
  one group, evaluated once;
- candidate pairs come from the rules (a label index answers which groups a peer selects); only an
  end that no policy isolates is paired with every group;
- per candidate pair the evaluator returns the allowed ports as intervals (`PolicySet.allowed_ports`).

Addresses outside the pods are the IP ranges the policies' ipBlocks cut the address space into
(`0.0.0.0-9.255.255.255,11.0.0.0-255.255.255.255`); ranges with the same connections to one peer are
listed together. As in netpol-analyzer, an ipBlock stands for addresses outside the pod network: pods
are matched by selectors only.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from netguard.adminpol import AdminPeer, AdminRule
from netguard.evaluate import AdminRuleRef, AnyPolicy, PolicySet, RuleRef
from netguard.inventory import Inventory
from netguard.model import Workload
from netguard.netpol import Action, Direction, PolicyPeer, Rule, Target
from netguard.portset import PortSet

ENTIRE_CLUSTER = "entire-cluster"
# A pod in a namespace nobody labelled, with no labels: what a peer that requires nothing matches.
ANYONE = Target(namespace="", labels={}, namespace_labels={})


@dataclass(frozen=True, order=True)
class Peer:
    """One end in the map: a workload (`namespace/name[Kind]`) or outside addresses (IP ranges)."""

    label: str
    namespace: str = ""
    name: str = ""
    kind: str = ""  # the workload's kind; "" for addresses

    @classmethod
    def of(cls, workload: Workload) -> Peer:
        return cls(f"{workload.namespace}/{workload.name}[{workload.kind}]", workload.namespace, workload.name, workload.kind)

    @property
    def is_external(self) -> bool:
        return not self.kind


@dataclass(frozen=True, order=True)
class Connection:
    src: Peer
    dst: Peer
    ports: PortSet

    def __str__(self) -> str:
        return f"{self.src.label} => {self.dst.label} : {self.ports}"


@dataclass(frozen=True, order=True)
class Exposure:
    """A workload reachable from (ingress) or reaching (egress) any pod of any namespace, or outside."""

    workload: Peer
    direction: Direction
    peer: str  # ENTIRE_CLUSTER or IP ranges
    ports: PortSet
    opened_by: tuple[str, ...] = ()  # the rules that open it, or why it is open

    def __str__(self) -> str:
        arrow = "<=" if self.direction is Direction.INGRESS else "=>"
        why = f"  ({'; '.join(self.opened_by)})" if self.opened_by else ""
        return f"{self.workload.label} \t{arrow} \t{self.peer} : {self.ports}{why}"


@dataclass
class ConnectivityMap:
    connections: list[Connection]
    exposure: list[Exposure] = field(default_factory=list)
    workloads: int = 0
    groups: int = 0
    pairs_evaluated: int = 0
    warnings: list[str] = field(default_factory=list)  # e.g. two ANPs sharing a priority


@dataclass
class _Group:
    target: Target
    workloads: list[Workload]


class _GroupIndex:
    """Which groups a peer selects, from label indexes (no scan of every group)."""

    def __init__(self, groups: list[_Group], inventory: Inventory) -> None:
        self.groups = groups
        self.by_namespace: dict[str, set[int]] = defaultdict(set)
        self.by_label: dict[tuple[str, str, str], set[int]] = defaultdict(set)
        for gid, group in enumerate(groups):
            ns = group.target.namespace or ""
            self.by_namespace[ns].add(gid)
            for kv in group.target.labels.items():
                self.by_label[(ns, *kv)].add(gid)
        self.ns_labels = {ns: inventory.namespace_labels(ns) for ns in set(self.by_namespace) | set(inventory.namespaces)}
        self.ns_by_label: dict[tuple[str, str], set[str]] = defaultdict(set)
        for ns, labels in self.ns_labels.items():
            for kv in labels.items():
                self.ns_by_label[kv].add(ns)
        self._cache: dict[tuple[PolicyPeer, str], frozenset[int]] = {}

    def peer(self, peer: PolicyPeer, policy_namespace: str) -> frozenset[int]:
        key = (peer, policy_namespace)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = frozenset(self._peer(peer, policy_namespace))
        return hit

    def _peer(self, peer: PolicyPeer, policy_namespace: str) -> set[int]:
        if peer.ip_block is not None:
            return set()
        if peer.namespace_selector is None:
            namespaces = [policy_namespace]
        else:
            sel = peer.namespace_selector
            names = (
                set.intersection(*(self.ns_by_label.get(kv, set()) for kv in sel.match_labels))
                if sel.match_labels
                else set(self.ns_labels)
            )
            namespaces = [ns for ns in names if sel.matches(self.ns_labels[ns])]
        out: set[int] = set()
        pod_sel = peer.pod_selector
        for ns in namespaces:
            if pod_sel is None or pod_sel.is_empty:
                out |= self.by_namespace.get(ns, set())
                continue
            if pod_sel.match_labels:
                found = set.intersection(*(self.by_label.get((ns, *kv), set()) for kv in pod_sel.match_labels))
            else:
                found = set(self.by_namespace.get(ns, ()))
            out |= {g for g in found if pod_sel.matches(self.groups[g].target.labels)}
        return out

    def admin_peer(self, peer: AdminPeer) -> frozenset[int]:
        """Groups an admin peer selects (networks and nodes are addresses, not pods)."""
        if peer.networks or peer.nodes is not None:
            return frozenset()
        if peer.namespaces is not None:
            return self.peer(PolicyPeer(namespace_selector=peer.namespaces), "")
        return self.peer(PolicyPeer(pod_selector=peer.pods, namespace_selector=peer.pod_namespaces), "")

    def admin_rule(self, rule: AdminRule) -> frozenset[int]:
        return frozenset().union(*(self.admin_peer(p) for p in rule.peers))

    def rule(self, rule: Rule, policy_namespace: str) -> frozenset[int] | None:
        """Groups a rule's peers select; None: every peer (an empty from/to)."""
        if not rule.peers:
            return None
        if len(rule.peers) == 1:
            return self.peer(rule.peers[0], policy_namespace)
        return frozenset().union(*(self.peer(p, policy_namespace) for p in rule.peers))


def group_workloads(inventory: Inventory) -> list[_Group]:
    """Workloads whose pods every policy sees alike, one group each (hostNetwork pods are nodes, left out)."""
    groups: dict[tuple, _Group] = {}
    for workload, info in sorted(inventory.workloads.items()):
        if info.host_network:
            continue
        key = (workload.namespace, info.labels, tuple(sorted(info.named_ports.items())))
        group = groups.get(key)
        if group is None:
            groups[key] = _Group(inventory.target(workload), [workload])
        else:
            group.workloads.append(workload)
    return list(groups.values())


def connectivity(
    inventory: Inventory,
    policies: Iterable[AnyPolicy],
    *,
    focus: Workload | None = None,
    exposure: bool = False,
) -> ConnectivityMap:
    """Every allowed connection between two distinct workloads, and between workloads and outside ranges."""
    policy_set = PolicySet(policies)
    groups = group_workloads(inventory)
    index = _GroupIndex(groups, inventory)
    focus_gids = None
    if focus is not None:
        focus_gids = {gid for gid, g in enumerate(groups) if focus in g.workloads}
    out = ConnectivityMap([], workloads=sum(len(g.workloads) for g in groups), groups=len(groups),
                          warnings=list(policy_set.warnings))
    for sid, did in _candidate_pairs(policy_set, groups, index, focus_gids):
        out.pairs_evaluated += 1
        src, dst = groups[sid], groups[did]
        ports = policy_set.allowed_ports(src.target, dst.target)
        if not ports:
            continue
        for ws in src.workloads:
            for wd in dst.workloads:
                if ws != wd:
                    out.connections.append(Connection(Peer.of(ws), Peer.of(wd), ports))
    ranges = external_ranges(policy_set, inventory)
    for gid, group in enumerate(groups):
        if focus_gids is not None and gid not in focus_gids:
            continue
        for direction in Direction:
            if _reaches_outside(policy_set, group.target, direction):
                out.connections.extend(_external(policy_set, group, ranges, direction))
    if focus is not None:
        wanted = Peer.of(focus)
        out.connections = [c for c in out.connections if wanted in (c.src, c.dst)]
    out.connections.sort(key=str)  # the lines in byte order, as netpol-analyzer sorts them
    if exposure:
        out.exposure = _exposure(policy_set, groups, out.connections, focus)
    return out


def _candidates(policy_set: PolicySet, index: _GroupIndex, target: Target, direction: Direction) -> frozenset[int] | None:
    """The groups this end's rules could let through for `direction`; None: any group. What an admin
    Allow rule names, plus (when NetworkPolicies isolate the pod) what their rules name."""
    isolating = policy_set.isolating(target, direction)
    if not isolating:
        return None
    found: set[int] = set()
    for admin in policy_set.admin_for(target):
        for admin_rule in admin.rules(direction):
            if admin_rule.action is Action.ALLOW:
                found |= index.admin_rule(admin_rule)
    for policy in isolating:
        for rule in policy.rules(direction):
            got = index.rule(rule, policy.namespace)
            if got is None:
                return None
            found |= got
    return frozenset(found)


def _candidate_pairs(
    policy_set: PolicySet, groups: list[_Group], index: _GroupIndex, focus: set[int] | None
) -> Iterator[tuple[int, int]]:
    """(src, dst) group pairs both ends' rules could let through (a superset of the allowed ones)."""
    egress = [_candidates(policy_set, index, g.target, Direction.EGRESS) for g in groups]
    ingress = [_candidates(policy_set, index, g.target, Direction.INGRESS) for g in groups]
    open_ingress = [d for d, c in enumerate(ingress) if c is None]
    ingress_from: dict[int, list[int]] = defaultdict(list)  # src -> dsts whose ingress rules name it
    for did, cands in enumerate(ingress):
        for sid in cands or ():
            ingress_from[sid].append(did)
    for sid in range(len(groups)):
        out = egress[sid]
        if out is not None:
            dsts: Iterable[int] = (d for d in out if ingress[d] is None or sid in ingress[d])  # type: ignore[operator]
        else:
            dsts = open_ingress + ingress_from.get(sid, [])
        for did in dsts:
            if focus is None or sid in focus or did in focus:
                if sid != did or len(groups[sid].workloads) > 1:
                    yield sid, did


# --- outside addresses -----------------------------------------------------------------------------


def external_ranges(policy_set: PolicySet, inventory: Inventory | None = None) -> list[tuple[str, Target]]:
    """The address space cut at every ipBlock and admin `networks` boundary, and around each node when an
    admin policy names nodes: (label `first-last`, a Target at its first address, with its node's labels).
    IPv4 always; IPv6 only when some policy names an IPv6 block."""
    cuts: dict[int, set[int]] = {4: {0, 1 << 32}, 6: set()}
    nets = list(_networks(policy_set))
    if inventory is not None and _names_nodes(policy_set):
        nets += [ipaddress.ip_network(ip) for ip in inventory.nodes]
    for net in nets:
        first, last = int(net.network_address), int(net.broadcast_address)
        cuts[net.version] |= {first, last + 1}
    if cuts[6]:
        cuts[6] |= {0, 1 << 128}
    out = []
    for version, points in cuts.items():
        make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        ordered = sorted(points)
        for lo, hi in zip(ordered, ordered[1:], strict=False):
            start, end = make(lo), make(hi - 1)
            target = inventory.address(str(start)) if inventory is not None else Target(ip=str(start))
            out.append((f"{start}-{end}", target))
    return out


def _networks(policy_set: PolicySet) -> Iterator[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    for policy in policy_set.policies:
        for rule in policy.ingress + policy.egress:
            for peer in rule.peers:
                if peer.ip_block is not None:
                    yield peer.ip_block.cidr
                    yield from peer.ip_block.excepts
    admins = policy_set.admin + ([policy_set.baseline] if policy_set.baseline is not None else [])
    for admin in admins:
        for admin_rule in admin.egress:
            for admin_peer in admin_rule.peers:
                yield from admin_peer.networks


def _names_nodes(policy_set: PolicySet) -> bool:
    admins = policy_set.admin + ([policy_set.baseline] if policy_set.baseline is not None else [])
    return any(peer.nodes is not None for admin in admins for rule in admin.egress for peer in rule.peers)


def _reaches_outside(policy_set: PolicySet, target: Target, direction: Direction) -> bool:
    isolating = policy_set.isolating(target, direction)
    if policy_set.admin_for(target) or policy_set.baseline_for(target) is not None:
        return True  # admin rules may open or close addresses: evaluate every range
    return not isolating or any(
        not rule.peers or any(p.ip_block is not None for p in rule.peers) for p in isolating for rule in p.rules(direction)
    )


def _external(policy_set: PolicySet, group: _Group, ranges: list[tuple[str, Target]], direction: Direction) -> list[Connection]:
    """The group's connections with outside ranges; adjacent ranges with equal ports are merged, and every
    range with the same ports toward the group is one peer."""
    by_ports: dict[PortSet, list[str]] = defaultdict(list)
    last: tuple[PortSet, str, str] | None = None  # ports, first address, last address of the open run
    runs: list[tuple[PortSet, str, str]] = []
    for label, target in ranges:
        if direction is Direction.EGRESS:
            ports = policy_set.allowed_ports(group.target, target)
        else:
            ports = policy_set.allowed_ports(target, group.target)
        first, _, end = label.partition("-")
        if last is not None and last[0] == ports and _adjacent(last[2], first):
            last = (ports, last[1], end)
            runs[-1] = last
        else:
            last = (ports, first, end)
            runs.append(last)
    for ports, first, end in runs:
        if ports:
            by_ports[ports].append(f"{first}-{end}")
    out = []
    for ports, labels in by_ports.items():
        outside = Peer(",".join(labels))
        for workload in group.workloads:
            me = Peer.of(workload)
            out.append(Connection(me, outside, ports) if direction is Direction.EGRESS else Connection(outside, me, ports))
    return out


def _adjacent(prev_last: str, first: str) -> bool:
    a, b = ipaddress.ip_address(prev_last), ipaddress.ip_address(first)
    return a.version == b.version and int(a) + 1 == int(b)


# --- exposure ----------------------------------------------------------------------------------------


def _exposure(
    policy_set: PolicySet, groups: list[_Group], connections: list[Connection], focus: Workload | None
) -> list[Exposure]:
    """Per workload: what any pod of any namespace may open to it (ingress) or it to them (egress), with the
    rules that open it; and its connections with outside ranges."""
    out: list[Exposure] = []
    for group in groups:
        for direction in Direction:
            if direction is Direction.INGRESS:
                ports = policy_set.allowed_ports(ANYONE, group.target)
            else:
                ports = policy_set.direction_ports(group.target, ANYONE, ANYONE, direction)
            if not ports:
                continue
            why = _opened_by(policy_set, group.target, direction)
            for workload in group.workloads:
                if focus is None or workload == focus:
                    out.append(Exposure(Peer.of(workload), direction, ENTIRE_CLUSTER, ports, why))
    targets = {Peer.of(w): g.target for g in groups for w in g.workloads}
    for c in connections:
        if c.src.is_external or c.dst.is_external:
            direction = Direction.INGRESS if c.src.is_external else Direction.EGRESS
            me, other = (c.dst, c.src) if c.src.is_external else (c.src, c.dst)
            first = other.label.split("-", 1)[0]  # the first address of the first range stands for them all
            why = _opened_by(policy_set, targets[me], direction, Target(ip=first))
            out.append(Exposure(me, direction, other.label, c.ports, why))
    return sorted(out, key=lambda e: (e.direction, e.workload.label, e.peer))


def _opened_by(policy_set: PolicySet, target: Target, direction: Direction, peer: Target = ANYONE) -> tuple[str, ...]:
    """The admin Allow rules and the NetworkPolicy rules that match `peer` (any pod, or an outside address),
    or why the pod is open."""
    admin = [
        str(AdminRuleRef(p.ref, direction, i, rule.name, rule.action))
        for p in policy_set.admin_for(target)
        for i, rule in enumerate(p.rules(direction))
        if rule.action is Action.ALLOW and rule.peer_matches(peer)
    ]
    isolating = policy_set.isolating(target, direction)
    if not isolating:
        baseline = policy_set.baseline_for(target)
        opened = []
        if baseline is not None:
            opened = [
                str(AdminRuleRef(baseline.ref, direction, i, rule.name, rule.action))
                for i, rule in enumerate(baseline.rules(direction))
                if rule.action is Action.ALLOW and rule.peer_matches(peer)
            ]
        return tuple(admin + (opened or [f"no policy isolates it for {direction}"]))
    return tuple(admin) + tuple(
        str(RuleRef(p.ref, direction, i))
        for p in isolating
        for i, rule in enumerate(p.rules(direction))
        if rule.peer_matches(peer, p.namespace)
    )
