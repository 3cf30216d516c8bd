"""AdminNetworkPolicy and BaselineAdminNetworkPolicy (policy.networking.k8s.io/v1alpha1): parse
(validated like the CRD's schema does) and match one subject, peer or port.

Cluster admins write them; they sit around the namespaces' NetworkPolicies:
- ANPs first, lowest `priority` number first (equal priorities: by name, as the API leaves it
  undefined); inside one, rules in the order written; the first rule that matches decides:
  Allow (no NetworkPolicy can deny it), Deny (none can allow it), or Pass (skip the remaining admin
  rules: the NetworkPolicies decide);
- then the NetworkPolicies, when some policy isolates the pod for that direction;
- then the one BaselineAdminNetworkPolicy (named `default`), Allow or Deny; what nothing matched is allowed.

How the tiers combine lives in netguard.evaluate, the one evaluator.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netguard.errors import InputError
from netguard.model import PROTOCOLS
from netguard.netpol import Action, Direction, IPNetwork, Target, port_name_problem
from netguard.portset import NONE, PortSet
from netguard.selectors import Selector, parse_selector

API_GROUP = "policy.networking.k8s.io"
ANP = "AdminNetworkPolicy"
BANP = "BaselineAdminNetworkPolicy"
ADMIN_KINDS = (ANP, BANP)


@dataclass(frozen=True)
class AdminPeer:
    """One entry of from/to: exactly one of namespaces, pods (namespaceSelector AND podSelector),
    nodes (egress) or networks (egress, CIDRs)."""

    namespaces: Selector | None = None
    pod_namespaces: Selector | None = None
    pods: Selector | None = None
    nodes: Selector | None = None
    networks: tuple[IPNetwork, ...] = ()

    def matches(self, target: Target) -> bool:
        if self.networks:
            if target.ip is None:
                return False
            addr = ipaddress.ip_address(target.ip)
            return any(addr.version == net.version and addr in net for net in self.networks)
        if self.nodes is not None:
            return target.node_labels is not None and self.nodes.matches(target.node_labels)
        if not target.is_pod:
            return False
        if self.namespaces is not None:
            return self.namespaces.matches(target.namespace_labels)
        assert self.pod_namespaces is not None and self.pods is not None
        return self.pod_namespaces.matches(target.namespace_labels) and self.pods.matches(target.labels)

    def __str__(self) -> str:
        if self.networks:
            return "networks " + ", ".join(str(n) for n in self.networks)
        if self.nodes is not None:
            return f"nodes {self.nodes}"
        if self.namespaces is not None:
            return f"namespaces {self.namespaces}"
        return f"namespaces {self.pod_namespaces} and pods {self.pods}"


@dataclass(frozen=True)
class AdminPort:
    """portNumber (protocol, port), portRange (protocol, start-end) or namedPort (any protocol)."""

    protocol: str = "TCP"
    start: int | None = None
    end: int | None = None
    name: str | None = None

    def port_set(self, dst: Target) -> PortSet:
        if self.name is not None:  # resolved on the destination pod, whatever the protocol
            out = NONE
            for (name, protocol), number in dst.named_ports.items():
                if name == self.name:
                    out = out | PortSet.of(protocol, number, number)
            return out
        assert self.start is not None
        return PortSet.of(self.protocol, self.start, self.end or self.start)

    def __str__(self) -> str:
        if self.name is not None:
            return f"named {self.name}"
        span = f"{self.start}-{self.end}" if self.end else str(self.start)
        return f"{span}/{self.protocol}"


@dataclass(frozen=True)
class AdminRule:
    name: str
    action: Action
    peers: tuple[AdminPeer, ...]
    ports: tuple[AdminPort, ...] = ()  # empty: every port

    def peer_matches(self, peer: Target) -> bool:
        return any(p.matches(peer) for p in self.peers)

    def port_set(self, dst: Target) -> PortSet:
        if not self.ports:
            return PortSet.all()
        out = NONE
        for p in self.ports:
            out = out | p.port_set(dst)
        return out

    def describe(self, direction: Direction) -> str:
        ports = ", ".join(str(p) for p in self.ports) or "every port"
        return f"{self.action} {direction.peers_key} {'; '.join(str(p) for p in self.peers)} on {ports}"


@dataclass(frozen=True)
class AdminNetworkPolicy:
    """An ANP (priority set) or the BANP (`baseline`, priority None)."""

    name: str
    priority: int | None
    subject_namespaces: Selector | None = None
    subject_pod_namespaces: Selector | None = None
    subject_pods: Selector | None = None
    ingress: tuple[AdminRule, ...] = ()
    egress: tuple[AdminRule, ...] = ()
    source: str = ""

    @property
    def baseline(self) -> bool:
        return self.priority is None

    @property
    def kind(self) -> str:
        return BANP if self.baseline else ANP

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.name}" + ("" if self.baseline else f" (priority {self.priority})")

    def selects(self, pod: Target) -> bool:
        """Whether the subject takes in this pod (never a bare address or a hostNetwork pod)."""
        if not pod.is_pod:
            return False
        if self.subject_namespaces is not None:
            return self.subject_namespaces.matches(pod.namespace_labels)
        assert self.subject_pod_namespaces is not None and self.subject_pods is not None
        return self.subject_pod_namespaces.matches(pod.namespace_labels) and self.subject_pods.matches(pod.labels)

    def rules(self, direction: Direction) -> tuple[AdminRule, ...]:
        return self.ingress if direction == Direction.INGRESS else self.egress

    def sort_key(self) -> tuple[int, str]:
        return (self.priority if self.priority is not None else 1 << 30, self.name)


# --- parsing -------------------------------------------------------------------------------------


def parse_admin_policy(doc: Mapping[str, Any], *, source: str = "") -> AdminNetworkPolicy:
    """Parse one ANP or BANP, raising InputError naming the file, the object and the field."""
    kind = doc.get("kind")
    name = (doc.get("metadata") or {}).get("name")
    obj = f"{kind} {name}"
    if not isinstance(name, str) or not name:
        raise InputError(f"{kind} without metadata.name", source=source)

    def bad(message: str) -> InputError:
        return InputError(message, source=source, obj=obj)

    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise bad("spec must be a mapping")
    baseline = kind == BANP
    if baseline:
        if name != "default":
            raise bad("a BaselineAdminNetworkPolicy must be named 'default'")
        priority = None
    else:
        priority = spec.get("priority")
        if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 1000:
            raise bad(f"spec.priority must be an integer 0-1000, got {priority!r}")
    sel = _Selectors(source, obj, bad)
    subject = spec.get("subject")
    if not isinstance(subject, dict) or len(subject) != 1 or next(iter(subject)) not in ("namespaces", "pods"):
        raise bad("spec.subject must set exactly one of namespaces or pods")
    ns_sel = pod_ns = pods = None
    if "namespaces" in subject:
        ns_sel = sel.one(subject["namespaces"], "spec.subject.namespaces")
    else:
        pod_ns, pods = sel.pods(subject["pods"], "spec.subject.pods")
    actions = (Action.ALLOW, Action.DENY) if baseline else tuple(Action)
    ingress = _rules(spec.get("ingress"), Direction.INGRESS, actions, sel, bad)
    egress = _rules(spec.get("egress"), Direction.EGRESS, actions, sel, bad)
    return AdminNetworkPolicy(name, priority, ns_sel, pod_ns, pods, ingress, egress, source)


class _Selectors:
    def __init__(self, source: str, obj: str, bad: Any) -> None:
        self.source, self.obj, self.bad = source, obj, bad

    def one(self, raw: Any, where: str) -> Selector:
        if not isinstance(raw, dict):
            raise self.bad(f"{where} must be a label selector ({{}} for all)")
        return parse_selector(raw, source=self.source, obj=self.obj, field=where)

    def pods(self, raw: Any, where: str) -> tuple[Selector, Selector]:
        if not isinstance(raw, dict) or "podSelector" not in raw:
            raise self.bad(f"{where} needs a podSelector (and optionally a namespaceSelector)")
        ns = self.one(raw.get("namespaceSelector") or {}, f"{where}.namespaceSelector")
        return ns, self.one(raw["podSelector"], f"{where}.podSelector")


def _rules(raw: Any, direction: Direction, actions: tuple[Action, ...], sel: _Selectors, bad: Any) -> tuple[AdminRule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > 100:
        raise bad(f"spec.{direction} must be a list of at most 100 rules")
    out = []
    for i, rule in enumerate(raw):
        where = f"spec.{direction}[{i}]"
        if not isinstance(rule, dict):
            raise bad(f"{where} must be a mapping")
        action = rule.get("action")
        if action not in actions:
            raise bad(f"{where}.action must be one of {', '.join(actions)}, got {action!r}")
        peers_raw = rule.get(direction.peers_key)
        if not isinstance(peers_raw, list) or not peers_raw:
            raise bad(f"{where}.{direction.peers_key} must list at least one peer")
        peers = tuple(_peer(p, f"{where}.{direction.peers_key}[{j}]", direction, sel, bad) for j, p in enumerate(peers_raw))
        ports_raw = rule.get("ports") or []
        if not isinstance(ports_raw, list):
            raise bad(f"{where}.ports must be a list")
        ports = tuple(_port(p, f"{where}.ports[{j}]", bad) for j, p in enumerate(ports_raw))
        out.append(AdminRule(str(rule.get("name") or ""), Action(action), peers, ports))
    return tuple(out)


def _peer(raw: Any, where: str, direction: Direction, sel: _Selectors, bad: Any) -> AdminPeer:
    allowed = ("namespaces", "pods") + (("nodes", "networks") if direction is Direction.EGRESS else ())
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in allowed:
        raise bad(f"{where} must set exactly one of {', '.join(allowed)}")
    key, value = next(iter(raw.items()))
    if key == "namespaces":
        return AdminPeer(namespaces=sel.one(value, f"{where}.namespaces"))
    if key == "pods":
        ns, pods = sel.pods(value, f"{where}.pods")
        return AdminPeer(pod_namespaces=ns, pods=pods)
    if key == "nodes":
        return AdminPeer(nodes=sel.one(value, f"{where}.nodes"))
    if not isinstance(value, list) or not value or len(value) > 25:
        raise bad(f"{where}.networks must list 1-25 CIDRs")
    try:
        return AdminPeer(networks=tuple(ipaddress.ip_network(str(c), strict=False) for c in value))
    except ValueError as exc:
        raise bad(f"{where}.networks: {exc}") from None


def _port(raw: Any, where: str, bad: Any) -> AdminPort:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise bad(f"{where} must set exactly one of portNumber, portRange or namedPort")
    key, value = next(iter(raw.items()))
    if key == "namedPort":
        problem = port_name_problem(str(value)) if isinstance(value, str) else f"invalid port name {value!r}"
        if problem:
            raise bad(f"{where}: {problem}")
        return AdminPort(name=value)
    if key not in ("portNumber", "portRange") or not isinstance(value, dict):
        raise bad(f"{where} must set exactly one of portNumber, portRange or namedPort")
    protocol = value.get("protocol") or "TCP"
    if protocol not in PROTOCOLS:
        raise bad(f"{where}: unknown protocol {protocol!r} (TCP, UDP or SCTP)")
    if key == "portNumber":
        port = value.get("port")
        if not _valid_port(port):
            raise bad(f"{where}.portNumber.port must be 1-65535, got {port!r}")
        return AdminPort(protocol, port)
    start, end = value.get("start"), value.get("end")
    if not _valid_port(start) or not _valid_port(end) or int(start) > int(end):  # type: ignore[arg-type]
        raise bad(f"{where}.portRange needs 1 <= start <= end <= 65535, got {start!r}-{end!r}")
    return AdminPort(protocol, start, end)


def _valid_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535
