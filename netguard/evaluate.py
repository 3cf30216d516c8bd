"""The one policy evaluator: is a connection allowed by a set of policies, and by which rule?

explain, verify, generate's checks, connectivity, the UI's verdicts and the lab's nftables compiler all
ask this module, so they agree by construction. The Kubernetes rules, exactly:
- a pod is isolated for a direction only when some policy selects it with that policy type;
- an isolated pod accepts what the union of the selecting policies' rules allows;
- a connection needs egress allowed at the source and ingress allowed at the destination;
- an empty (or missing) from/to means every peer, empty ports every port;
- podSelector and namespaceSelector in one peer are ANDed; podSelector alone means the policy's
  namespace; ipBlock matches addresses (with except);
- named ports resolve against the destination pod; protocol defaults to TCP; endPort is a range.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from netguard.inventory import Inventory
from netguard.model import Endpoint, Workload
from netguard.netpol import Action, Direction, NetworkPolicy, Target
from netguard.portset import NONE, PortSet

__all__ = ["Action", "Decision", "Direction", "DirectionVerdict", "PolicySet", "RuleRef", "Targets", "Verdict"]


class Decision(StrEnum):
    """The outcome for one connection, as the graph colors it."""

    ALLOWED = "allowed"
    DENIED = "denied"
    NOT_COVERED = "not-covered"  # allowed because no policy isolates either end


@dataclass(frozen=True)
class RuleRef:
    """One rule of one policy: `prod/api ingress[0]`."""

    policy: str  # namespace/name
    direction: Direction
    index: int

    def __str__(self) -> str:
        return f"{self.policy} {self.direction}[{self.index}]"


@dataclass(frozen=True)
class DirectionVerdict:
    """The verdict of one end: egress at the source, or ingress at the destination."""

    direction: Direction
    isolated: bool  # some policy selects the pod for this direction
    allowed: bool
    selecting: tuple[str, ...] = ()  # the policies that select the pod for this direction
    allowed_by: tuple[RuleRef, ...] = ()
    applies: bool = True  # False when this side is not a pod (no policy can isolate it)

    def reason(self) -> str:
        if not self.applies:
            return f"{self.direction}: not a pod, no policy applies: allowed"
        if not self.isolated:
            return f"{self.direction}: no policy selects the pod for {self.direction}: allowed"
        if self.allowed:
            return f"{self.direction}: allowed by {', '.join(str(r) for r in self.allowed_by)}"
        return (
            f"{self.direction}: isolated by {', '.join(self.selecting)} and no {self.direction} rule of "
            f"{'it' if len(self.selecting) == 1 else 'them'} matches: denied"
        )


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    egress: DirectionVerdict
    ingress: DirectionVerdict

    @property
    def covered(self) -> bool:
        """Some policy isolates at least one end (otherwise the connection is allowed by default)."""
        return self.egress.isolated or self.ingress.isolated

    @property
    def decision(self) -> Decision:
        if not self.covered:
            return Decision.NOT_COVERED
        return Decision.ALLOWED if self.allowed else Decision.DENIED

    def sides(self) -> tuple[DirectionVerdict, DirectionVerdict]:
        return (self.egress, self.ingress)

    def reasons(self) -> list[str]:
        return [self.egress.reason(), self.ingress.reason()]


class PolicySet:
    """Policies indexed for evaluation: per namespace, and by one matchLabels pair of their podSelector."""

    def __init__(self, policies: Iterable[NetworkPolicy]) -> None:
        self.policies = list(policies)
        self._by_label: dict[tuple[str, str, str], list[NetworkPolicy]] = defaultdict(list)
        self._unindexed: dict[str, list[NetworkPolicy]] = defaultdict(list)
        self._selecting: dict[int, tuple[Target, list[NetworkPolicy]]] = {}
        for policy in self.policies:
            ml = policy.pod_selector.match_labels
            if ml:
                key, value = ml[0]
                self._by_label[(policy.namespace, key, value)].append(policy)
            else:
                self._unindexed[policy.namespace].append(policy)

    def selecting(self, pod: Target) -> list[NetworkPolicy]:
        """Policies whose podSelector selects the pod, in a stable order (memoized per Target object)."""
        if not pod.is_pod or pod.namespace is None:
            return []
        hit = self._selecting.get(id(pod))
        if hit is not None and hit[0] is pod:
            return hit[1]
        chosen = self._select(pod)
        self._selecting[id(pod)] = (pod, chosen)  # holding the Target keeps its id from being reused
        return chosen

    def _select(self, pod: Target) -> list[NetworkPolicy]:
        assert pod.namespace is not None
        found = list(self._unindexed.get(pod.namespace, ()))
        for key, value in pod.labels.items():
            found.extend(self._by_label.get((pod.namespace, key, value), ()))
        chosen = [p for p in found if p.pod_selector.matches(pod.labels)]
        return sorted(set(chosen), key=lambda p: (p.namespace, p.name)) if len(chosen) > 1 else chosen

    def isolating(self, pod: Target, direction: Direction) -> list[NetworkPolicy]:
        """The policies that isolate `pod` for `direction` (empty: the pod is open that way)."""
        return [p for p in self.selecting(pod) if p.isolates(direction)]

    def direction(
        self, pod: Target, peer: Target, dst: Target, port: int, protocol: str, direction: Direction
    ) -> DirectionVerdict:
        """Egress of `pod` toward `peer`, or ingress of `pod` from `peer`; `dst` resolves named ports."""
        direction = Direction(direction)
        if not pod.is_pod:
            return DirectionVerdict(direction, False, True, applies=False)
        isolating = self.isolating(pod, direction)
        if not isolating:
            return DirectionVerdict(direction, False, True)
        allowed_by = []
        for policy in isolating:
            for i, rule in enumerate(policy.rules(direction)):
                if rule.port_matches(port, protocol, dst) and rule.peer_matches(peer, policy.namespace):
                    allowed_by.append(RuleRef(policy.ref, direction, i))
        return DirectionVerdict(direction, True, bool(allowed_by), tuple(p.ref for p in isolating), tuple(allowed_by))

    def direction_ports(self, pod: Target, peer: Target, dst: Target, direction: Direction) -> PortSet:
        """The same question as `direction` for every port at once: what `pod` allows toward/from `peer`."""
        if not pod.is_pod:
            return PortSet.all()
        isolating = self.isolating(pod, direction)
        if not isolating:
            return PortSet.all()
        out = NONE
        for policy in isolating:
            for rule in policy.rules(direction):
                if rule.peer_matches(peer, policy.namespace):
                    out = out | rule.port_set(dst)
        return out

    def allowed_ports(self, src: Target, dst: Target) -> PortSet:
        """Every (protocol, port) on which `src` may open a connection to `dst`."""
        egress = self.direction_ports(src, dst, dst, Direction.EGRESS)
        if not egress:
            return NONE
        return egress & self.direction_ports(dst, src, dst, Direction.INGRESS)

    def evaluate(self, src: Target, dst: Target, port: int, protocol: str = "TCP") -> Verdict:
        egress = self.direction(src, dst, dst, port, protocol, Direction.EGRESS)
        ingress = self.direction(dst, src, dst, port, protocol, Direction.INGRESS)
        return Verdict(egress.allowed and ingress.allowed, egress, ingress)

    def allowed(self, src: Target, dst: Target, port: int, protocol: str = "TCP") -> bool:
        return (
            self.direction(src, dst, dst, port, protocol, Direction.EGRESS).allowed
            and self.direction(dst, src, dst, port, protocol, Direction.INGRESS).allowed
        )


class Targets:
    """Endpoint -> Target as policies see it (a workload's template labels and named ports), cached."""

    def __init__(self, inventory: Inventory) -> None:
        self.inv = inventory
        self._cache: dict[Endpoint, Target] = {}
        self._ips: dict[Workload, str] = {}
        for pod in inventory.pods:
            if pod.ip and not pod.host_network:
                self._ips.setdefault(pod.workload, pod.ip)

    def of(self, endpoint: Endpoint) -> Target:
        target = self._cache.get(endpoint)
        if target is None:
            if endpoint.workload is not None and endpoint.workload in self.inv.workloads:
                target = self.inv.target(endpoint.workload, self._ips.get(endpoint.workload))
            else:
                target = Target(ip=endpoint.address or None)
            self._cache[endpoint] = target
        return target

    def workload(self, workload: Workload) -> Target:
        return self.of(Endpoint.of(workload))
