"""The core vocabulary: Workload, Endpoint, Flow, Edge.

Pod IPs are never identity: a Workload is the top owner (namespace, kind, name), so the learned
graph survives restarts, rescheduling and scaling. An Endpoint is one side of an Edge: a workload,
or something outside the pods (the world, a node, the API server) named as such.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields, replace
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Any

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

    @cached_property
    def key(self) -> str:  # cached (in the instance's __dict__, beside the frozen fields): the store writes it per edge
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

    @cached_property
    def key(self) -> str:
        """A stable text key: `w:ns/Kind/name` for workloads, `world:1.2.3.4` and the like otherwise (cached)."""
        if self.workload is not None:
            return "w:" + self.workload.key
        return f"{self.kind.value}:{self.address}"

    @classmethod
    def parse(cls, key: str) -> Endpoint:
        """The inverse of `key`; ValueError on a malformed one."""
        kind, _, rest = key.partition(":")
        if kind == "w":
            namespace, wkind, name = rest.split("/", 2)
            return cls.of(Workload(namespace, wkind, name))
        return cls(EndpointKind(kind), address=rest)

    def __str__(self) -> str:  # the graph's node id: cached as `key` is (asked for per edge of every batch)
        text = self.__dict__.get("_str")
        if text is None:
            if self.workload is not None:
                text = str(self.workload)
            else:
                text = f"{self.kind.value}:{self.address}" if self.address else self.kind.value
            self.__dict__["_str"] = text
        return text


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
    """What makes an edge one edge: traffic from `src` to `dst` on one destination (pod) port."""

    src: Endpoint
    dst: Endpoint
    port: int
    protocol: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.src, self.dst, self.port, self.protocol)))

    def __hash__(self) -> int:  # cached, as for Workload: every batch looks its edges up several times
        return self._hash  # type: ignore[attr-defined]

    def __reduce__(self) -> tuple:
        return (EdgeKey, (self.src, self.dst, self.port, self.protocol))


class Merge(StrEnum):
    """How one EdgeStats field of two observations of an edge combine. EdgeStats.merge and the store's
    upsert (policygen.controller.store) are both derived from these, so they cannot drift apart."""

    SUM = "sum"
    MIN = "min"  # the earliest (first_seen)
    MAX = "max"  # the latest (last_seen); for a flag, any
    FIRST = "first"  # what the edge's first observation said (its port name, the Service it went through)
    NAMES = "names"  # a bounded sorted union (EdgeStats.add_names)


def _stat(default: object, merge: Merge) -> Any:
    return field(default=default, metadata={"merge": merge})


@dataclass(slots=True)
class EdgeStats:
    """Counters and facts of one edge; mutable while flows are aggregated. Every field says how it
    merges: one `merge` for the CLI's parallel readers, the controller's batches and the store."""

    connections: int = _stat(0, Merge.SUM)
    bytes: int = _stat(0, Merge.SUM)
    packets: int = _stat(0, Merge.SUM)
    first_seen: float = _stat(0.0, Merge.MIN)
    last_seen: float = _stat(0.0, Merge.MAX)
    port_name: str = _stat("", Merge.FIRST)  # the destination container port's name, when it has one
    via_service: str = _stat("", Merge.FIRST)  # "ns/name" when the flow went through a Service ClusterIP
    dst_names: tuple[str, ...] = _stat((), Merge.NAMES)  # DNS names of an outside destination: sorted, bounded
    names_overflow: bool = _stat(False, Merge.MAX)  # more names were seen than dst_names holds

    def add(self, flow: Flow) -> None:
        """One more connection (the hot path of aggregation: no allocation)."""
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

    def merge(self, other: EdgeStats) -> None:
        """Fold another observation of the same edge into this one (the one merge; each field as its
        `Merge` says: tests/netguard/test_edge.py holds the two together)."""
        if other.connections:
            if self.connections == 0:
                self.first_seen, self.port_name, self.via_service = other.first_seen, other.port_name, other.via_service
            elif other.first_seen < self.first_seen:
                self.first_seen = other.first_seen
        self.last_seen = max(self.last_seen, other.last_seen)
        self.connections += other.connections
        self.bytes += other.bytes
        self.packets += other.packets
        self.add_names(other.dst_names, other.names_overflow)

    def copy(self) -> EdgeStats:
        return replace(self)


STAT_FIELDS: tuple[Field, ...] = fields(EdgeStats)


@dataclass(frozen=True, slots=True)
class Edge:
    """One edge: its key and its stats. Shared by the CLI, the controller, its store, the graph and the
    agent (`to_record`/`from_record` are its JSON form)."""

    key: EdgeKey
    stats: EdgeStats

    def __hash__(self) -> int:  # the stats are mutable: an edge hashes as its key
        return hash(self.key)

    @classmethod
    def of(cls, src: Endpoint, dst: Endpoint, port: int, protocol: str, **stats: Any) -> Edge:
        stats.setdefault("connections", 1)
        return cls(EdgeKey(src, dst, port, protocol), EdgeStats(**stats))

    def to_record(self) -> dict[str, Any]:
        """JSON-ready: endpoints as `Endpoint.key`, every stat by its field name."""
        k = self.key
        out: dict[str, Any] = {"src": k.src.key, "dst": k.dst.key, "port": k.port, "protocol": k.protocol}
        for f in STAT_FIELDS:
            value = getattr(self.stats, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Edge:
        key = EdgeKey(_parse_endpoint(record["src"]), _parse_endpoint(record["dst"]), int(record["port"]),
                      str(record["protocol"]))
        stats = EdgeStats(**{name: convert(record[name]) for name, convert in _CONVERTERS if name in record})
        return cls(key, stats)

    # the key's and the stats' fields, read through (what synthesis, the graph and the review read)
    @property
    def src(self) -> Endpoint:
        return self.key.src

    @property
    def dst(self) -> Endpoint:
        return self.key.dst

    @property
    def port(self) -> int:
        return self.key.port

    @property
    def protocol(self) -> str:
        return self.key.protocol

    @property
    def connections(self) -> int:
        return self.stats.connections

    @property
    def bytes(self) -> int:
        return self.stats.bytes

    @property
    def packets(self) -> int:
        return self.stats.packets

    @property
    def first_seen(self) -> float:
        return self.stats.first_seen

    @property
    def last_seen(self) -> float:
        return self.stats.last_seen

    @property
    def port_name(self) -> str:
        return self.stats.port_name

    @property
    def via_service(self) -> str:
        return self.stats.via_service

    @property
    def dst_names(self) -> tuple[str, ...]:
        return self.stats.dst_names

    @property
    def names_overflow(self) -> bool:
        return self.stats.names_overflow


def _converter(f: Field) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
    if kind.startswith("tuple"):
        return lambda value: tuple(map(str, value))
    return {"int": int, "float": float, "str": str, "bool": bool}[kind]


_CONVERTERS = tuple((f.name, _converter(f)) for f in STAT_FIELDS)  # from_record's per-field types, found once


@lru_cache(maxsize=65536)
def _parse_endpoint(key: str) -> Endpoint:
    """Endpoint.parse, remembered: agents send the same few endpoint keys in every batch (frozen, so shared)."""
    return Endpoint.parse(key)
