"""The core vocabulary: Workload, Endpoint, Flow, Edge.

Pod IPs are never identity: a Workload is the top owner (namespace, kind, name), so the learned
graph survives restarts, rescheduling and scaling. An Endpoint is one side of an Edge: a workload,
or something outside the pods (the world, a node, the API server) named as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

Labels = tuple[tuple[str, str], ...]  # sorted (key, value) pairs: hashable and deterministic

PROTOCOLS = ("TCP", "UDP", "SCTP")
MAX_DST_NAMES = 8  # DNS names kept per edge: the smallest, sorted; more sets EdgeStats.names_overflow


def freeze_labels(labels: dict[str, str] | None) -> Labels:
    return tuple(sorted((labels or {}).items()))


@dataclass(frozen=True, order=True)
class Workload:
    """The top owner of pods: a Deployment, StatefulSet, DaemonSet, Job, CronJob or a bare Pod."""

    namespace: str
    kind: str
    name: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.namespace, self.kind, self.name)))

    def __hash__(self) -> int:  # cached: workloads key every dict on the hot path
        return self._hash  # type: ignore[attr-defined]

    def __reduce__(self) -> tuple:  # never pickle the cached hash: it differs between processes
        return (Workload, (self.namespace, self.kind, self.name))

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.kind}/{self.name}"


class EndpointKind(StrEnum):
    WORKLOAD = "workload"
    WORLD = "world"  # an address outside the cluster
    NODE = "node"  # a node: kubelet probes, hostNetwork pods
    APISERVER = "apiserver"  # the control plane behind Service default/kubernetes
    DNS = "node-local-dns"  # NodeLocal DNSCache at a link-local address


@dataclass(frozen=True, order=True)
class Endpoint:
    """One side of an edge. `workload` is set for pods; `address` (an IP) for everything else."""

    kind: EndpointKind
    workload: Workload | None = None
    address: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.kind, self.workload, self.address)))

    def __hash__(self) -> int:  # cached, as for Workload
        return self._hash  # type: ignore[attr-defined]

    def __reduce__(self) -> tuple:
        return (Endpoint, (self.kind, self.workload, self.address))

    @classmethod
    def of(cls, workload: Workload) -> Endpoint:
        return cls(EndpointKind.WORKLOAD, workload)

    @property
    def is_workload(self) -> bool:
        return self.kind is EndpointKind.WORKLOAD

    def __str__(self) -> str:
        if self.workload is not None:
            return str(self.workload)
        return f"{self.kind.value}:{self.address}" if self.address else self.kind.value


@dataclass(frozen=True)
class Flow:
    """One new connection as a capture saw it (addresses before enrichment).

    `dst_pod_ip`/`dst_pod_port` are the post-DNAT pod address when the capture knows it. Identity hints carry what a
    capture such as Hubble already knows about a side (namespace, pod, labels, owner).
    """

    time: float
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    protocol: str = "TCP"
    bytes: int = 0
    packets: int = 0
    node: str = ""
    dst_pod_ip: str = ""
    dst_pod_port: int = 0  # the post-DNAT port, when the capture knows it
    src_hint: PodHint | None = None
    dst_hint: PodHint | None = None
    dst_names: tuple[str, ...] = ()  # DNS names the destination address was looked up as (Cilium's DNS proxy)


@dataclass(frozen=True)
class PodHint:
    """What a capture knows about one side of a flow without an inventory (e.g. from Hubble)."""

    namespace: str = ""
    pod: str = ""
    labels: Labels = ()
    workload: Workload | None = None
    reserved: str = ""  # "world", "host", "remote-node", "kube-apiserver", ...


@dataclass(frozen=True, order=True)
class EdgeKey:
    src: Endpoint
    dst: Endpoint
    port: int
    protocol: str


@dataclass
class EdgeStats:
    """Counters of one edge; mutable while flows are aggregated."""

    connections: int = 0
    bytes: int = 0
    packets: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    port_name: str = ""  # the destination container port's name, when it has one
    via_service: str = ""  # "ns/name" when the flow went through a Service ClusterIP
    dst_names: tuple[str, ...] = ()  # DNS names of an outside destination: sorted, at most MAX_DST_NAMES
    names_overflow: bool = False  # more names were seen than are kept

    def add(self, flow: Flow) -> None:
        if self.connections == 0 or flow.time < self.first_seen:
            self.first_seen = flow.time
        self.last_seen = max(self.last_seen, flow.time)
        self.connections += 1
        self.bytes += flow.bytes
        self.packets += flow.packets

    def add_names(self, names: tuple[str, ...], overflow: bool = False) -> None:
        """Union with the names kept so far, bounded: the smallest MAX_DST_NAMES in sorted order, so the
        result does not depend on the order flows (or parallel parts) arrive in."""
        if names and not set(names) <= set(self.dst_names):
            merged = sorted(set(self.dst_names) | set(names))
            if len(merged) > MAX_DST_NAMES:
                overflow = True
                merged = merged[:MAX_DST_NAMES]
            self.dst_names = tuple(merged)
        self.names_overflow = self.names_overflow or overflow


@dataclass(frozen=True)
class Edge:
    """Aggregated traffic from one endpoint to another on one destination (pod) port."""

    src: Endpoint
    dst: Endpoint
    port: int
    protocol: str
    connections: int = 1
    bytes: int = 0
    packets: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    port_name: str = ""
    via_service: str = ""
    dst_names: tuple[str, ...] = ()  # DNS names of an outside destination (sorted, bounded)
    names_overflow: bool = False  # more names were seen than dst_names holds

    @property
    def key(self) -> EdgeKey:
        return EdgeKey(self.src, self.dst, self.port, self.protocol)
