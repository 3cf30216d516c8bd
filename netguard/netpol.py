"""The networking.k8s.io/v1 NetworkPolicy object model: parse (validated like the API server does),
render back to a dict, and match one peer or port against one side of a connection.

Whole-policy evaluation (isolation, union of rules, both ends, admin tiers) lives beside it in
netguard.evaluate; explain, verify, connectivity, the UI and the lab's nftables compiler all use that
one evaluator and the peer matching here, so they agree by construction.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from netguard.errors import InputError
from netguard.model import PROTOCOLS
from netguard.portset import NONE, PortSet
from netguard.selectors import Selector, parse_selector

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")


class Direction(StrEnum):
    """Which end of a connection a rule guards: ingress at the destination, egress at the source."""

    INGRESS = "ingress"
    EGRESS = "egress"

    @property
    def policy_type(self) -> str:
        """The word in spec.policyTypes."""
        return "Ingress" if self is Direction.INGRESS else "Egress"

    @property
    def peers_key(self) -> str:
        """The field holding a rule's peers: `from` for ingress, `to` for egress."""
        return "from" if self is Direction.INGRESS else "to"


class Action(StrEnum):
    """What an AdminNetworkPolicy / BaselineAdminNetworkPolicy rule does with what it matches."""

    ALLOW = "Allow"
    DENY = "Deny"
    PASS = "Pass"  # ANP only: skip the remaining admin rules, let NetworkPolicies (then the BANP) decide


def port_name_problem(name: str) -> str | None:
    """Why `name` is not an IANA_SVC_NAME (what Kubernetes requires of a named port)."""
    if not _PORT_NAME.match(name) or "--" in name or not re.search(r"[a-z]", name):
        return f"invalid port name {name!r}"
    return None


@dataclass(frozen=True)
class Target:
    """One side of a connection as policies see it: a pod, or a bare IP (namespace None).

    `named_ports` maps (port name, protocol) to the container port number of this pod. A hostNetwork
    pod is shown to policies as its node's IP: selectors do not match it (as on most CNIs).
    """

    ip: str | None = None
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    named_ports: Mapping[tuple[str, str], int] = field(default_factory=dict)
    node_labels: Mapping[str, str] | None = None  # set when the address is a node's (AdminNetworkPolicy `nodes` peers)

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None


@dataclass(frozen=True)
class IPBlock:
    cidr: IPNetwork
    excepts: tuple[IPNetwork, ...] = ()

    def contains(self, ip: str) -> bool:
        addr = ipaddress.ip_address(ip)
        if addr.version != self.cidr.version or addr not in self.cidr:
            return False
        return not any(addr in ex for ex in self.excepts)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cidr": str(self.cidr)}
        if self.excepts:
            out["except"] = [str(e) for e in self.excepts]
        return out


@dataclass(frozen=True)
class PolicyPeer:
    """One entry of `from`/`to`. Both selectors set means pods matching both (an AND)."""

    pod_selector: Selector | None = None
    namespace_selector: Selector | None = None
    ip_block: IPBlock | None = None

    def matches(self, target: Target, policy_namespace: str) -> bool:
        if self.ip_block is not None:
            return target.ip is not None and self.ip_block.contains(target.ip)
        if not target.is_pod:
            return False
        if self.namespace_selector is None:
            if target.namespace != policy_namespace:
                return False
        elif not self.namespace_selector.matches(target.namespace_labels):
            return False
        return self.pod_selector is None or self.pod_selector.matches(target.labels)

    def __str__(self) -> str:
        if self.ip_block is not None:
            excepts = f" except {', '.join(str(e) for e in self.ip_block.excepts)}" if self.ip_block.excepts else ""
            return f"ipBlock {self.ip_block.cidr}{excepts}"
        parts = []
        if self.namespace_selector is not None:
            parts.append(f"namespaces {self.namespace_selector}")
        if self.pod_selector is not None:
            parts.append(f"pods {self.pod_selector}")
        return " and ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        if self.ip_block is not None:
            return {"ipBlock": self.ip_block.to_dict()}
        out: dict[str, Any] = {}
        if self.namespace_selector is not None:
            out["namespaceSelector"] = self.namespace_selector.to_dict()
        if self.pod_selector is not None:
            out["podSelector"] = self.pod_selector.to_dict()
        return out


@dataclass(frozen=True)
class PolicyPort:
    """One entry of `ports`. `port` None means every port of the protocol."""

    protocol: str = "TCP"
    port: int | str | None = None
    end_port: int | None = None

    def matches(self, port: int, protocol: str, dst: Target) -> bool:
        if protocol != self.protocol:
            return False
        if self.port is None:
            return True
        if isinstance(self.port, str):  # named: resolved against the destination pod's ports
            return dst.named_ports.get((self.port, protocol)) == port
        if self.end_port is not None:
            return self.port <= port <= self.end_port
        return port == self.port

    def port_set(self, dst: Target) -> PortSet:
        """The ports this entry admits toward `dst` (a named port resolves on it, or admits nothing)."""
        if self.port is None:
            return PortSet.of(self.protocol)
        if isinstance(self.port, str):
            number = dst.named_ports.get((self.port, self.protocol))
            return PortSet.of(self.protocol, number, number) if number else NONE
        return PortSet.of(self.protocol, self.port, self.end_port or self.port)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"protocol": self.protocol}
        if self.port is not None:
            out["port"] = self.port
        if self.end_port is not None:
            out["endPort"] = self.end_port
        return out

    def __str__(self) -> str:
        if self.port is None:
            return f"all/{self.protocol}"
        span = f"{self.port}-{self.end_port}" if self.end_port is not None else str(self.port)
        return f"{span}/{self.protocol}"


@dataclass(frozen=True)
class Rule:
    """An ingress or egress rule. Empty `peers` means every peer; empty `ports` every port."""

    peers: tuple[PolicyPeer, ...] = ()
    ports: tuple[PolicyPort, ...] = ()

    def port_matches(self, port: int, protocol: str, dst: Target) -> bool:
        return not self.ports or any(p.matches(port, protocol, dst) for p in self.ports)

    def peer_matches(self, peer: Target, policy_namespace: str) -> bool:
        return not self.peers or any(p.matches(peer, policy_namespace) for p in self.peers)

    def port_set(self, dst: Target) -> PortSet:
        """Every port this rule admits toward `dst`, as intervals."""
        out = NONE
        for p in self.ports:
            out = out | p.port_set(dst)
        return out if self.ports else PortSet.all()

    def describe(self, direction: Direction) -> str:
        """In words: `from pods app=web; ipBlock 10.0.0.0/8 on 80/TCP`."""
        peers = "; ".join(str(p) for p in self.peers) or "everyone"
        ports = ", ".join(str(p) for p in self.ports) or "every port"
        return f"{Direction(direction).peers_key} {peers} on {ports}"

    def to_dict(self, direction: Direction) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.peers:
            out[Direction(direction).peers_key] = [p.to_dict() for p in self.peers]
        if self.ports:
            out["ports"] = [p.to_dict() for p in self.ports]
        return out


@dataclass(frozen=True)
class NetworkPolicy:
    namespace: str
    name: str
    pod_selector: Selector
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    policy_types: frozenset[str] = frozenset({"Ingress"})
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    source: str = ""  # the file it was read from, for messages

    @property
    def isolates_ingress(self) -> bool:
        return "Ingress" in self.policy_types

    @property
    def isolates_egress(self) -> bool:
        return "Egress" in self.policy_types

    def isolates(self, direction: Direction) -> bool:
        return Direction(direction).policy_type in self.policy_types

    def rules(self, direction: Direction) -> tuple[Rule, ...]:
        return self.ingress if direction == Direction.INGRESS else self.egress

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def annotations_dict(self) -> dict[str, str]:
        return dict(self.annotations)

    def to_dict(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            metadata["labels"] = dict(self.labels)
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        spec: dict[str, Any] = {"podSelector": self.pod_selector.to_dict()}
        spec["policyTypes"] = [t for t in ("Ingress", "Egress") if t in self.policy_types]
        if self.isolates_ingress:
            spec["ingress"] = [r.to_dict(Direction.INGRESS) for r in self.ingress]
        if self.isolates_egress:
            spec["egress"] = [r.to_dict(Direction.EGRESS) for r in self.egress]
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": metadata,
            "spec": spec,
        }


# --- parsing -------------------------------------------------------------------------------------


def parse_network_policy(doc: Mapping[str, Any], *, source: str = "", default_namespace: str = "default") -> NetworkPolicy:
    """Parse one NetworkPolicy object, raising InputError naming the file and object on bad input."""
    metadata = doc.get("metadata") or {}
    name = metadata.get("name")
    namespace = metadata.get("namespace") or default_namespace
    obj = f"NetworkPolicy {namespace}/{name}"
    if not isinstance(name, str) or not name:
        raise InputError("NetworkPolicy without metadata.name", source=source)

    def bad(message: str) -> InputError:
        return InputError(message, source=source, obj=obj)

    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise bad("spec must be a mapping")
    if "podSelector" not in spec:
        raise bad("spec.podSelector is required (use {} for every pod of the namespace)")
    pod_selector = parse_selector(spec.get("podSelector"), source=source, obj=obj, field="spec.podSelector")
    ingress = _parse_rules(spec.get("ingress"), Direction.INGRESS, bad, source, obj)
    egress = _parse_rules(spec.get("egress"), Direction.EGRESS, bad, source, obj)
    types_raw = spec.get("policyTypes")
    if types_raw is None:
        types = {"Ingress"} | ({"Egress"} if spec.get("egress") is not None else set())
    else:
        if not isinstance(types_raw, list) or any(t not in ("Ingress", "Egress") for t in types_raw):
            raise bad(f"spec.policyTypes must list Ingress and/or Egress, got {types_raw!r}")
        types = set(types_raw)
    return NetworkPolicy(
        namespace=namespace,
        name=name,
        pod_selector=pod_selector,
        ingress=ingress,
        egress=egress,
        policy_types=frozenset(types),
        labels=tuple(sorted((metadata.get("labels") or {}).items())),
        annotations=tuple(sorted((metadata.get("annotations") or {}).items())),
        source=source,
    )


def _parse_rules(raw: Any, direction: Direction, bad: Any, source: str, obj: str) -> tuple[Rule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise bad(f"spec.{direction} must be a list")
    peers_key = direction.peers_key
    rules = []
    for i, rule in enumerate(raw):
        where = f"spec.{direction}[{i}]"
        if rule is None:
            rule = {}
        if not isinstance(rule, dict):
            raise bad(f"{where} must be a mapping")
        unknown = set(rule) - {peers_key, "ports"}
        if unknown:
            raise bad(f"{where}: unknown field {sorted(unknown)[0]!r}")
        peers = tuple(
            _parse_peer(p, f"{where}.{peers_key}[{j}]", bad, source, obj)
            for j, p in enumerate(_list(rule.get(peers_key), f"{where}.{peers_key}", bad))
        )
        ports = tuple(
            _parse_port(p, f"{where}.ports[{j}]", bad) for j, p in enumerate(_list(rule.get("ports"), f"{where}.ports", bad))
        )
        rules.append(Rule(peers, ports))
    return tuple(rules)


def _list(raw: Any, where: str, bad: Any) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad(f"{where} must be a list")
    return raw


def _parse_peer(raw: Any, where: str, bad: Any, source: str, obj: str) -> PolicyPeer:
    if not isinstance(raw, dict) or not raw:
        raise bad(f"{where} must set podSelector, namespaceSelector or ipBlock")
    unknown = set(raw) - {"podSelector", "namespaceSelector", "ipBlock"}
    if unknown:
        raise bad(f"{where}: unknown field {sorted(unknown)[0]!r}")
    if "ipBlock" in raw:
        if len(raw) > 1:
            raise bad(f"{where}: ipBlock cannot be combined with a selector")
        return PolicyPeer(ip_block=_parse_ip_block(raw["ipBlock"], where, bad))
    pod = (
        parse_selector(raw["podSelector"], source=source, obj=obj, field=f"{where}.podSelector") if "podSelector" in raw else None
    )
    ns = (
        parse_selector(raw["namespaceSelector"], source=source, obj=obj, field=f"{where}.namespaceSelector")
        if "namespaceSelector" in raw
        else None
    )
    return PolicyPeer(pod_selector=pod, namespace_selector=ns)


def _parse_ip_block(raw: Any, where: str, bad: Any) -> IPBlock:
    if not isinstance(raw, dict) or "cidr" not in raw:
        raise bad(f"{where}.ipBlock needs a cidr")
    try:
        cidr = ipaddress.ip_network(str(raw["cidr"]), strict=False)
        excepts = tuple(ipaddress.ip_network(str(e), strict=False) for e in (raw.get("except") or []))
    except ValueError as exc:
        raise bad(f"{where}.ipBlock: {exc}") from None
    for ex in excepts:
        if ex.version != cidr.version or not ex.subnet_of(cidr):  # type: ignore[arg-type]
            raise bad(f"{where}.ipBlock: except {ex} is not inside {cidr}")
    return IPBlock(cidr, excepts)


def _parse_port(raw: Any, where: str, bad: Any) -> PolicyPort:
    if not isinstance(raw, dict):
        raise bad(f"{where} must be a mapping")
    protocol = raw.get("protocol") or "TCP"
    if protocol not in PROTOCOLS:
        raise bad(f"{where}: unknown protocol {protocol!r} (TCP, UDP or SCTP)")
    port = raw.get("port")
    end_port = raw.get("endPort")
    if isinstance(port, bool):
        raise bad(f"{where}: invalid port {port!r}")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if isinstance(port, int):
        if not 1 <= port <= 65535:
            raise bad(f"{where}: port {port} out of range 1-65535")
    elif isinstance(port, str):
        problem = port_name_problem(port)
        if problem:
            raise bad(f"{where}: {problem}")
    elif port is not None:
        raise bad(f"{where}: invalid port {port!r}")
    if end_port is not None:
        if not isinstance(port, int) or not isinstance(end_port, int) or isinstance(end_port, bool):
            raise bad(f"{where}: endPort needs a numeric port and a numeric endPort")
        if not port <= end_port <= 65535:
            raise bad(f"{where}: endPort {end_port} must be between port {port} and 65535")
    return PolicyPort(protocol, port, end_port)
