"""Enrichment: a Flow's addresses -> Endpoints (workloads or named outside peers) and the pod port.

A flow to a Service ClusterIP maps to the Service's backends on their targetPort (NetworkPolicy
ports are pod ports); the post-DNAT pod wins when the capture knows it. Flows are aggregated into
edges as they stream by; resolutions are cached per address, so a million flows cost dict lookups.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field

from cachetools import LRUCache

from netguard.inventory import Inventory, Pod, Service, WorkloadInfo, shared_labels
from netguard.model import Edge, EdgeKey, EdgeStats, Endpoint, EndpointKind, Flow, Labels, PodHint, Workload
from netguard.selectors import match_labels_selector

LINK_LOCAL = ipaddress.ip_network("169.254.0.0/16")
APISERVER_SERVICE = "default/kubernetes"
_RESERVED = {
    "world": EndpointKind.WORLD,
    "host": EndpointKind.NODE,
    "remote-node": EndpointKind.NODE,
    "kube-apiserver": EndpointKind.APISERVER,
}

# A resolved destination: (endpoint, pod port, port name, via service)
Destination = tuple[Endpoint, int, str, str]
# What a plain flow's enrichment inputs resolve to: the edges it counts on (key, port name, via service), and
# where it is counted as unresolved ("" when it lands on an edge)
Resolved = tuple[tuple[tuple[EdgeKey, str, str], ...], str]


@dataclass
class Aggregation:
    """Edges built from flows, plus what could not be placed (never dropped silently)."""

    stats: dict[EdgeKey, EdgeStats] = field(default_factory=dict)
    learned: dict[Workload, WorkloadInfo] = field(default_factory=dict)  # from Hubble identities
    # workload -> pod -> the labels captures gave it: the learned selector is what the pods share
    pod_labels: dict[Workload, dict[str, Labels]] = field(default_factory=dict)
    unresolved: Counter[str] = field(default_factory=Counter)
    flows: int = 0

    def merge(self, other: Aggregation) -> None:
        """Fold another aggregation (of other flows, against the same inventory) into this one."""
        for key, theirs in other.stats.items():
            mine = self.stats.get(key)
            if mine is None:
                self.stats[key] = theirs
            else:
                mine.merge(theirs)
        for workload, info in other.learned.items():
            self.learned.setdefault(workload, info)
        for workload, pods in other.pod_labels.items():
            for pod, labels in pods.items():
                self.learn(workload, pod, labels)
        self.unresolved.update(other.unresolved)
        self.flows += other.flows

    def learn(self, workload: Workload, pod: str, labels: Labels) -> None:
        """One pod of a workload seen with these labels (a capture may show a pod's labels in some
        records and not in others: they add up). The workload's selector is what its pods share,
        without the labels controllers stamp per pod: it must select all of them."""
        pods = self.pod_labels.setdefault(workload, {})
        known = pods.get(pod)
        if known is not None and (not labels or set(labels) <= set(known)) and workload in self.learned:
            return
        if known is not None and labels:
            labels = tuple(sorted(set(known) | set(labels)))
        pods[pod] = labels if labels else (known or ())
        shared = shared_labels(pods.values())
        self.learned[workload] = WorkloadInfo(workload, shared, match_labels_selector(dict(shared)))

    def edges(self) -> list[Edge]:
        """Sorted, each with its own copy of the stats (the aggregation may go on counting)."""
        return [Edge(k, s.copy()) for k, s in sorted(self.stats.items(), key=lambda kv: kv[0])]


class Enricher:
    """Resolves flows against one inventory, caching per address."""

    def __init__(self, inventory: Inventory, max_addresses: int | None = None) -> None:
        """`max_addresses` bounds the per-address caches (a long-running agent); unbounded for batch work."""
        self.inv = inventory
        self.agg = Aggregation()
        self._src_cache: MutableMapping[str, Endpoint] = {} if max_addresses is None else LRUCache(max_addresses)
        self._dst_cache: MutableMapping[tuple[str, int, str, str, int], list[Destination]] = (
            {} if max_addresses is None else LRUCache(max_addresses))
        self._resolved: MutableMapping[tuple[str, str, int, str, str, int], Resolved] = (
            {} if max_addresses is None else LRUCache(max_addresses))

    def use_inventory(self, inventory: Inventory) -> None:
        """A newer inventory (a refreshed pod cache): keep the edges, forget the resolutions made with the old one."""
        self.inv = inventory
        self._src_cache.clear()
        self._dst_cache.clear()
        self._resolved.clear()

    def add(self, flow: Flow) -> None:
        self.agg.flows += 1
        src = self._source(flow)
        dsts = self._destinations(flow)
        if not dsts:
            return
        for dst, port, port_name, via in dsts:
            key = EdgeKey(src, dst, port, flow.protocol)
            stats = self.agg.stats.get(key)
            if stats is None:
                stats = self.agg.stats[key] = EdgeStats(port_name=port_name, via_service=via)
            stats.add(flow)
            if flow.dst_names and dst.kind is EndpointKind.WORLD:  # names of outside destinations only
                stats.add_names(flow.dst_names)

    def resolve(self, src_ip: str, dst_ip: str, dst_port: int, protocol: str, pod_ip: str = "", pod_port: int = 0) -> Resolved:
        """Where a plain flow (no identity hints, no DNS names) with these addresses lands, as `add` would
        count it, cached per tuple: the controller sums a batch's flows per tuple and counts each sum once."""
        inputs = (src_ip, dst_ip, dst_port, protocol, pod_ip, pod_port)
        found = self._resolved.get(inputs)
        if found is None:
            if isinstance(self._resolved, dict) and len(self._resolved) > 500_000:  # unbounded caches: bounded here
                self._resolved.clear()
            flow = Flow(0.0, src_ip, 0, dst_ip, dst_port, protocol, 0, 0, "", pod_ip, pod_port)
            src = self._source(flow)
            key = (dst_ip, dst_port, protocol, pod_ip, pod_port)
            dsts = self._dst_cache.get(key)
            if dsts is None:
                dsts = self._dst_cache[key] = self._resolve_destination(flow)
            edges = tuple((EdgeKey(src, dst, port, protocol), name, via) for dst, port, name, via in dsts)
            found = self._resolved[inputs] = (edges, "" if edges else f"{dst_ip}:{dst_port}/{protocol}")
        return found

    def add_all(self, flows: Iterable[Flow]) -> Aggregation:
        for flow in flows:
            self.add(flow)
        return self.agg

    # --- sources ---------------------------------------------------------------------------------

    def _source(self, flow: Flow) -> Endpoint:
        if flow.src_hint is not None:
            return self._from_hint(flow.src_hint, flow.src_ip)
        endpoint = self._src_cache.get(flow.src_ip)
        if endpoint is None:
            endpoint = self._src_cache[flow.src_ip] = self._by_ip(flow.src_ip)
        return endpoint

    def _by_ip(self, ip: str) -> Endpoint:
        pod = self.inv.pod_by_ip.get(ip)
        if pod is not None:
            return Endpoint.of(pod.workload)
        if ip in self.inv.nodes:
            return Endpoint(EndpointKind.NODE, address=ip)
        if self._is_apiserver(ip):
            return Endpoint(EndpointKind.APISERVER, address=ip)
        return Endpoint(EndpointKind.WORLD, address=ip)

    def _is_apiserver(self, ip: str) -> bool:
        return any(e[0] == ip for e in self.inv.endpoints.get(APISERVER_SERVICE, ()))

    def _from_hint(self, hint: PodHint, ip: str) -> Endpoint:
        if hint.workload is not None:
            if hint.workload not in self.inv.workloads:
                self.agg.learn(hint.workload, hint.pod, hint.labels)
            return Endpoint.of(hint.workload)
        kind = _RESERVED.get(hint.reserved, EndpointKind.WORLD)
        return Endpoint(kind, address=ip)

    # --- destinations ----------------------------------------------------------------------------

    def _destinations(self, flow: Flow) -> list[Destination]:
        if flow.dst_hint is not None and (flow.dst_hint.workload is not None or flow.dst_hint.reserved):
            endpoint = self._from_hint(flow.dst_hint, flow.dst_ip)
            return [(endpoint, flow.dst_port, self._port_name(endpoint, flow.dst_port, flow.protocol), "")]
        key = (flow.dst_ip, flow.dst_port, flow.protocol, flow.dst_pod_ip, flow.dst_pod_port)
        cached = self._dst_cache.get(key)
        if cached is None:
            cached = self._dst_cache[key] = self._resolve_destination(flow)
        if not cached:
            self.agg.unresolved[f"{flow.dst_ip}:{flow.dst_port}/{flow.protocol}"] += 1
        return cached

    def _resolve_destination(self, flow: Flow) -> list[Destination]:
        service = self.inv.service_by_ip.get(flow.dst_ip)
        if flow.dst_pod_ip:
            pod = self.inv.pod_by_ip.get(flow.dst_pod_ip)
            port = flow.dst_pod_port or (self._target_port(service, flow, pod) if service else flow.dst_port)
            via = service.ref if service else ""
            if pod is not None and port:
                endpoint = Endpoint.of(pod.workload)
                return [(endpoint, port, self._port_name(endpoint, port, flow.protocol), via)]
            return [(self._by_ip(flow.dst_pod_ip), port or flow.dst_port, "", via)]
        pod = self.inv.pod_by_ip.get(flow.dst_ip)
        if pod is not None:
            endpoint = Endpoint.of(pod.workload)
            return [(endpoint, flow.dst_port, self._port_name(endpoint, flow.dst_port, flow.protocol), "")]
        if service is not None:
            return self._through_service(service, flow)
        if flow.dst_ip in self.inv.nodes:
            return [(Endpoint(EndpointKind.NODE, address=flow.dst_ip), flow.dst_port, "", "")]
        if flow.dst_port == 53 and ipaddress.ip_address(flow.dst_ip) in LINK_LOCAL:
            return [(Endpoint(EndpointKind.DNS, address=flow.dst_ip), 53, "", "")]
        return [(self._by_ip(flow.dst_ip), flow.dst_port, "", "")]

    def _through_service(self, service: Service, flow: Flow) -> list[Destination]:
        """Every backend the Service could have picked, on its targetPort."""
        sport = next((p for p in service.ports if p.port == flow.dst_port and p.protocol == flow.protocol), None)
        if sport is None:
            return []
        out: list[Destination] = []
        pods = self.inv.backends(service)
        if pods:
            seen: set[tuple[Workload, int]] = set()
            for pod in pods:
                port = self._target_port(service, flow, pod)
                if port and (pod.workload, port) not in seen:
                    seen.add((pod.workload, port))
                    endpoint = Endpoint.of(pod.workload)
                    out.append((endpoint, port, self._port_name(endpoint, port, flow.protocol), service.ref))
            return out
        for info in self.inv.backend_workloads(service):  # manifests without pods
            port = _resolve_target(sport.target_port, sport.port, flow.protocol, info.named_ports)
            if port:
                endpoint = Endpoint.of(info.workload)
                out.append((endpoint, port, self._port_name(endpoint, port, flow.protocol), service.ref))
        if out:
            return out
        # A Service without selector: its Endpoints say where (default/kubernetes -> the API server).
        for ip, port, proto, name in self.inv.endpoints.get(service.ref, ()):
            if proto == flow.protocol and (not sport.name or not name or name == sport.name):
                endpoint = self._by_ip(ip)
                if service.ref == APISERVER_SERVICE and endpoint.kind is EndpointKind.WORLD:
                    endpoint = Endpoint(EndpointKind.APISERVER, address=ip)
                out.append((endpoint, port, "", service.ref))
        return out

    def _target_port(self, service: Service | None, flow: Flow, pod: Pod | None) -> int:
        if service is None:
            return flow.dst_port
        sport = next((p for p in service.ports if p.port == flow.dst_port and p.protocol == flow.protocol), None)
        if sport is None:
            return flow.dst_port
        named = {(p.name, p.protocol): p.port for p in pod.ports if p.name} if pod is not None else {}
        return _resolve_target(sport.target_port, sport.port, flow.protocol, named)

    def _port_name(self, endpoint: Endpoint, port: int, protocol: str) -> str:
        info = self.inv.workloads.get(endpoint.workload) if endpoint.workload else None
        if info is None:
            return ""
        return next((p.name for p in info.ports if p.port == port and p.protocol == protocol and p.name), "")


def _resolve_target(target: int | str, service_port: int, protocol: str, named: dict[tuple[str, str], int]) -> int:
    if isinstance(target, int):
        return target or service_port
    return named.get((target, protocol), 0)


def aggregate(flows: Iterable[Flow], inventory: Inventory) -> Aggregation:
    """Stream flows into edges against an inventory."""
    return Enricher(inventory).add_all(flows)
