"""Policy synthesis: observed edges -> one least-privilege NetworkPolicy per workload.

Each policy isolates its workload both ways and allows exactly the observed (peer, port, protocol)
pairs, plus DNS to kube-dns when the workload resolves names. Rules are merged (a peer's ports in one
rule; peers with the same port set in one rule) and sorted, so the output is deterministic.
A pure function of (inventory, edges, options): no I/O.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from netguard.evaluate import PolicySet
from netguard.inventory import NAMESPACE_NAME_LABEL, Inventory
from netguard.model import Edge, Endpoint, EndpointKind, Workload
from netguard.netpol import Direction, IPBlock, NetworkPolicy, PolicyPeer, PolicyPort, Rule
from netguard.selectors import Selector
from policygen.index import WorkloadIndex

MANAGED_BY = ("app.kubernetes.io/managed-by", "netguard")
WORKLOAD_ANNOTATION = "netguard.io/workload"
KUBE_DNS = PolicyPeer(
    pod_selector=Selector((("k8s-app", "kube-dns"),)),
    namespace_selector=Selector(((NAMESPACE_NAME_LABEL, "kube-system"),)),
)
DNS_PORTS = (PolicyPort("UDP", 53), PolicyPort("TCP", 53))
DNS_TITLE = "DNS to kube-dns, UDP and TCP 53"  # the justification title of the DNS egress rule


@dataclass(frozen=True)
class SynthesisOptions:
    dns: str = "observed"  # observed: when the workload was seen resolving names | always | never
    cidr_prefix: int = 32  # external IPv4 addresses are aggregated to this prefix
    cidr_prefix_v6: int = 128
    namespaces: frozenset[str] | None = None  # only these (None: all but the excluded)
    exclude_namespaces: frozenset[str] = frozenset({"kube-system"})
    named_ports: bool = False  # use the container port's name where it has one
    idle: bool = True  # also write deny-all policies for workloads with no observed traffic

    def in_scope(self, namespace: str) -> bool:
        """Whether policies of this namespace are written (and earlier ones of it may be removed)."""
        if self.namespaces is not None:
            return namespace in self.namespaces
        return namespace not in self.exclude_namespaces


@dataclass(frozen=True)
class Justification:
    """Why a rule exists: the edges it came from. Worded only when someone reads it."""

    direction: Direction
    edges: tuple[Edge, ...]
    title: str = ""

    @property
    def lines(self) -> tuple[str, ...]:
        return self.head(len(self.edges))

    def head(self, n: int) -> tuple[str, ...]:
        words = tuple(_describe(e, self.direction) for e in self.edges[:n])
        return ((self.title,) if self.title else ()) + words


@dataclass(frozen=True)
class GeneratedPolicy:
    workload: Workload
    policy: NetworkPolicy
    ingress_why: tuple[Justification, ...]
    egress_why: tuple[Justification, ...]
    notes: tuple[str, ...] = ()
    connections: int = 0
    # The DNS rule a CiliumNetworkPolicy adds when it writes toFQDNs rules but `egress` has none (no
    # lookup observed): toFQDNs works only when Cilium's DNS proxy sees the lookups. NetworkPolicy ignores it.
    fqdn_dns: tuple[Rule, Justification] | None = None

    @property
    def path(self) -> str:
        return f"{self.workload.namespace}/{self.policy.name.removeprefix('netguard-')}.yaml"


@dataclass
class SynthesisResult:
    policies: list[GeneratedPolicy] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=1 << 16)
def peer_sort_key(peer: PolicyPeer) -> tuple[int, str]:
    if peer.ip_block is not None:
        net = peer.ip_block.cidr
        return (2, f"{net.version}{int(net.network_address):040d}/{net.prefixlen:03d}")
    return (0 if peer.namespace_selector is None else 1, json.dumps(peer.to_dict(), sort_keys=True))


def port_sort_key(port: PolicyPort) -> tuple[str, int, str]:
    if isinstance(port.port, int):
        return (port.protocol, port.port, "")
    return (port.protocol, -1, str(port.port or ""))


def compress_ports(ports: Iterable[PolicyPort], min_run: int = 3) -> tuple[PolicyPort, ...]:
    """Sorted ports, with runs of at least `min_run` consecutive numbers as one endPort range.
    Exact: a range is written only where every port in it was observed."""
    numbered: dict[str, list[int]] = defaultdict(list)
    out: list[PolicyPort] = []
    for p in ports:
        if isinstance(p.port, int) and p.end_port is None:
            numbered[p.protocol].append(p.port)
        else:
            out.append(p)
    for protocol, numbers in numbered.items():
        numbers.sort()
        start = prev = numbers[0]
        for n in [*numbers[1:], None]:
            if n is not None and n == prev + 1:
                prev = n
                continue
            if prev - start + 1 >= min_run:
                out.append(PolicyPort(protocol, start, prev))
            else:
                out.extend(PolicyPort(protocol, q) for q in range(start, prev + 1))
            if n is not None:
                start = prev = n
    return tuple(sorted(out, key=port_sort_key))


class Synthesizer:
    def __init__(self, inventory: Inventory, options: SynthesisOptions) -> None:
        self.inv = inventory
        self.opts = options
        self.index = WorkloadIndex(inventory)
        self.warnings: list[str] = []
        self.selectors = self._distinct_selectors()
        self._existing: PolicySet | None = None  # the cluster's own (non-netguard) policies, indexed on first use
        self._names: dict[Workload, str] | None = None  # policy names, made on first use

    # --- selectors -------------------------------------------------------------------------------

    def _distinct_selectors(self) -> dict[Workload, Selector]:
        """Each workload's selector, tightened to its full stable labels where another workload's
        pods would match it too (overlapping Deployments) — otherwise a rule for one would allow both."""
        out: dict[Workload, Selector] = {}
        for workload, info in sorted(self.inv.workloads.items()):
            selector = info.selector
            if info.host_network:
                out[workload] = selector
                continue
            if selector.is_empty and info.labels:
                selector = Selector(info.labels)
            others = self.index.select(workload.namespace, selector) - {workload}
            if others and info.labels:
                tighter = Selector(tuple(sorted(set(selector.match_labels) | set(info.labels))), selector.expressions)
                if not (self.index.select(workload.namespace, tighter) - {workload}):
                    selector = tighter
                    others = set()
            if others:
                names = ", ".join(sorted(str(o) for o in others))
                self.warnings.append(
                    f"{workload.kind} {workload}: its pods cannot be told apart from those of {names} by labels; "
                    "their policies will allow each other's traffic"
                )
            if selector.is_empty:
                self.warnings.append(
                    f"{workload.kind} {workload}: has no stable pod labels; its selector matches every pod of the namespace"
                )
            out[workload] = selector
        return out

    def _existing_policies(self, workload: Workload) -> list[str]:
        if self._existing is None:
            self._existing = PolicySet(p for p in self.inv.policies if p.annotations_dict.get(WORKLOAD_ANNOTATION) is None)
        target = self.inv.target(workload)
        return [p.ref for p in self._existing.selecting(target)]

    def managed(self, workload: Workload) -> bool:
        info = self.inv.workloads.get(workload)
        if info is None or info.host_network:
            return False
        return self.opts.in_scope(workload.namespace)

    # --- peers -----------------------------------------------------------------------------------

    def peer(self, endpoint: Endpoint, policy_namespace: str) -> PolicyPeer | None:
        if endpoint.workload is not None:
            info = self.inv.workloads.get(endpoint.workload)
            if info is None:
                return None
            selector = self.selectors[endpoint.workload]
            if endpoint.workload.namespace == policy_namespace:
                return PolicyPeer(pod_selector=selector)
            ns = Selector(((NAMESPACE_NAME_LABEL, endpoint.workload.namespace),))
            return PolicyPeer(pod_selector=selector, namespace_selector=ns)
        if not endpoint.address:
            return None
        addr = ipaddress.ip_address(endpoint.address)
        prefix: int = addr.max_prefixlen
        if endpoint.kind is EndpointKind.WORLD:
            prefix = self.opts.cidr_prefix if addr.version == 4 else self.opts.cidr_prefix_v6
        return PolicyPeer(ip_block=IPBlock(ipaddress.ip_network(f"{addr}/{prefix}", strict=False)))

    def port(self, edge: Edge) -> PolicyPort:
        if self.opts.named_ports and edge.port_name:
            return PolicyPort(edge.protocol, edge.port_name)
        return PolicyPort(edge.protocol, edge.port)

    # --- synthesis -------------------------------------------------------------------------------

    def run(self, edges: Iterable[Edge]) -> SynthesisResult:
        incoming: dict[Workload, list[Edge]] = defaultdict(list)
        outgoing: dict[Workload, list[Edge]] = defaultdict(list)
        for edge in edges:
            if edge.dst.workload is not None:
                incoming[edge.dst.workload].append(edge)
            if edge.src.workload is not None:
                outgoing[edge.src.workload].append(edge)
        result = SynthesisResult(warnings=self.warnings)
        for workload in sorted(self.inv.workloads):
            generated = self.policy_for(workload, incoming.get(workload, []), outgoing.get(workload, []))
            if generated is not None:
                result.policies.append(generated)
        return result

    def wants_policy(self, workload: Workload, has_edges: bool) -> bool:
        """Whether `workload` gets a policy (managed, and traffic observed or idle ones wanted)."""
        return self.managed(workload) and (has_edges or self.opts.idle)

    def policy_for(self, workload: Workload, ins: list[Edge], outs: list[Edge]) -> GeneratedPolicy | None:
        """One workload's policy from its own edges (incoming, outgoing; sorted by key as `run` gets
        them): what `run` does per workload, and the controller's incremental path."""
        if not self.wants_policy(workload, bool(ins or outs)):
            return None
        if self._names is None:
            self._names = self._policy_names()
        return self._policy(workload, self._names[workload], ins, outs)

    def _policy_names(self) -> dict[Workload, str]:
        by_name: dict[tuple[str, str], list[Workload]] = defaultdict(list)
        for w in self.inv.workloads:
            by_name[(w.namespace, w.name)].append(w)
        out = {}
        for (_, name), group in by_name.items():
            for w in group:
                base = name if len(group) == 1 else f"{w.kind.lower()}-{name}"
                out[w] = f"netguard-{base}"[:253]
        return out

    def _policy(self, workload: Workload, name: str, ins: list[Edge], outs: list[Edge]) -> GeneratedPolicy:
        notes: list[str] = []
        ingress, ingress_why = self._rules(ins, Direction.INGRESS, workload.namespace, notes)
        egress, egress_why = self._rules(outs, Direction.EGRESS, workload.namespace, notes)
        fqdn_dns = None
        if self._wants_dns(outs):
            egress, egress_why = self._with_dns(egress, egress_why, outs)
        elif self.opts.dns != "never" and any(e.dst.kind is EndpointKind.WORLD and e.dst_names for e in outs):
            rules, whys = self._with_dns([], [], outs)
            title = f"{DNS_TITLE} (for toFQDNs: no lookup observed)"
            fqdn_dns = (rules[0], Justification(Direction.EGRESS, whys[0].edges, title))
        if not ins and not outs:
            notes.append("no traffic observed: this policy denies all ingress and egress")
        existing = self._existing_policies(workload)
        if existing:
            notes.append(
                f"the cluster's policies {', '.join(existing)} select these pods too: the union of all of them applies"
            )
        policy = NetworkPolicy(
            namespace=workload.namespace,
            name=name,
            pod_selector=self.selectors[workload],
            ingress=tuple(ingress),
            egress=tuple(egress),
            policy_types=frozenset({"Ingress", "Egress"}),
            labels=(MANAGED_BY,),
            annotations=((WORKLOAD_ANNOTATION, workload.key),),
        )
        total = sum(e.connections for e in ins) + sum(e.connections for e in outs)
        return GeneratedPolicy(workload, policy, tuple(ingress_why), tuple(egress_why), tuple(notes), total, fqdn_dns)

    def _rules(
        self, edges: list[Edge], direction: Direction, namespace: str, notes: list[str]
    ) -> tuple[list[Rule], list[Justification]]:
        ports_of: dict[PolicyPeer, set[PolicyPort]] = defaultdict(set)
        why_of: dict[PolicyPeer, list[Edge]] = defaultdict(list)
        for edge in edges:
            other = edge.src if direction is Direction.INGRESS else edge.dst
            if direction is Direction.EGRESS and self._is_dns_edge(edge):
                continue  # folded into the DNS rule
            peer = self.peer(other, namespace)
            if peer is None:
                notes.append(f"{direction}: {other} is not in the inventory; no rule written for it")
                continue
            ports_of[peer].add(self.port(edge))
            why_of[peer].append(edge)
        ports_of, why_of = self._collapse_ip_blocks(ports_of, why_of)
        groups: dict[frozenset[PolicyPort], list[PolicyPeer]] = defaultdict(list)
        for peer, ports in ports_of.items():
            groups[frozenset(ports)].append(peer)
        rules = []
        for port_set, peers in groups.items():
            peers.sort(key=peer_sort_key)
            rules.append(Rule(tuple(peers), compress_ports(port_set)))
        rules.sort(key=lambda r: ([peer_sort_key(p) for p in r.peers], [port_sort_key(p) for p in r.ports]))
        whys = [Justification(direction, tuple(e for p in r.peers for e in sorted(why_of[p], key=_edge_order))) for r in rules]
        return rules, whys

    def _collapse_ip_blocks(self, ports_of: dict[PolicyPeer, set[PolicyPort]], why_of: dict[PolicyPeer, list[Edge]]):
        """Adjacent external CIDRs with the same ports become one (only when aggregating)."""
        if self.opts.cidr_prefix == 32 and self.opts.cidr_prefix_v6 == 128:
            return ports_of, why_of
        by_ports: dict[frozenset[PolicyPort], list[PolicyPeer]] = defaultdict(list)
        for peer, peer_ports in ports_of.items():
            if peer.ip_block is not None:
                by_ports[frozenset(peer_ports)].append(peer)
        for ports, peers in by_ports.items():
            for version in (4, 6):
                nets = [p.ip_block.cidr for p in peers if p.ip_block and p.ip_block.cidr.version == version]
                collapsed = list(ipaddress.collapse_addresses(nets))  # type: ignore[type-var]
                if len(collapsed) == len(nets):
                    continue
                for p in [p for p in peers if p.ip_block and p.ip_block.cidr.version == version]:
                    ports_of.pop(p)
                    edges = why_of.pop(p)
                    target = next(c for c in collapsed if p.ip_block.cidr.subnet_of(c))  # type: ignore[union-attr,arg-type]
                    new = PolicyPeer(ip_block=IPBlock(target))
                    ports_of[new] = set(ports)
                    why_of.setdefault(new, []).extend(edges)
        return ports_of, why_of

    # --- DNS -------------------------------------------------------------------------------------

    def _is_dns_edge(self, edge: Edge) -> bool:
        if edge.port != 53 or edge.dst.kind is EndpointKind.WORLD:
            return False
        return edge.dst.kind is EndpointKind.DNS or (
            edge.dst.workload is not None and edge.dst.workload.namespace == "kube-system"
        )

    def _wants_dns(self, outs: list[Edge]) -> bool:
        if self.opts.dns == "always":
            return True
        if self.opts.dns == "never":
            return False
        return any(e.port == 53 for e in outs)

    def _dns_peers(self, outs: list[Edge]) -> list[PolicyPeer]:
        peers: set[PolicyPeer] = set()
        for edge in outs:
            if self._is_dns_edge(edge):
                peer = self.peer(edge.dst, "")
                if peer is not None:
                    peers.add(peer)
        if not any(p.ip_block is None for p in peers):
            peers.add(self._kube_dns_peer())
        return sorted(peers, key=peer_sort_key)

    def _kube_dns_peer(self) -> PolicyPeer:
        found = self.index.select("kube-system", Selector((("k8s-app", "kube-dns"),)))
        if len(found) == 1:
            return self.peer(Endpoint.of(next(iter(found))), "") or KUBE_DNS
        return KUBE_DNS

    def _with_dns(self, rules: list[Rule], whys: list[Justification], outs: list[Edge]) -> tuple[list[Rule], list[Justification]]:
        dns_edges = tuple(sorted((e for e in outs if self._is_dns_edge(e)), key=_edge_order))
        title = DNS_TITLE + (
            "" if dns_edges else f" (--dns {self.opts.dns}; TCP 53 for truncated answers)"
        )
        return rules + [Rule(tuple(self._dns_peers(outs)), DNS_PORTS)], whys + [Justification(Direction.EGRESS, dns_edges, title)]


def _edge_order(edge: Edge) -> tuple:
    return (str(edge.src), str(edge.dst), edge.protocol, edge.port)


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else "?"


def _describe(edge: Edge, direction: Direction) -> str:
    other = edge.src if direction is Direction.INGRESS else edge.dst
    what = _endpoint_words(other)
    if direction is Direction.EGRESS and other.kind is EndpointKind.WORLD and edge.dst_names:
        names = ", ".join(edge.dst_names) + (", ..." if edge.names_overflow else "")
        what = f"the world ({other.address}, {names})"
    via = f" via Service {edge.via_service}" if edge.via_service else ""
    port = f"{edge.port}/{edge.protocol}" + (f" ({edge.port_name})" if edge.port_name else "")
    arrow = direction.peers_key
    return (
        f"{arrow} {what} on {port}{via}: {edge.connections} connection{'s' if edge.connections != 1 else ''}, "
        f"{edge.bytes} bytes, first {_when(edge.first_seen)}, last {_when(edge.last_seen)}"
    )


def _endpoint_words(endpoint: Endpoint) -> str:
    if endpoint.workload is not None:
        return f"{endpoint.workload.kind} {endpoint.workload}"
    if endpoint.kind is EndpointKind.WORLD:
        return f"the world ({endpoint.address})"
    if endpoint.kind is EndpointKind.NODE:
        return f"node {endpoint.address} (kubelet probes, hostNetwork pods)"
    if endpoint.kind is EndpointKind.APISERVER:
        return f"the API server ({endpoint.address})"
    if endpoint.kind is EndpointKind.DNS:
        return f"NodeLocal DNSCache ({endpoint.address})"
    return str(endpoint)


def synthesize(inventory: Inventory, edges: Iterable[Edge], options: SynthesisOptions | None = None) -> SynthesisResult:
    return Synthesizer(inventory, options or SynthesisOptions()).run(edges)
