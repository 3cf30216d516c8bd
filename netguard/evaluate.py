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
Around them the admin tiers (netguard.adminpol): AdminNetworkPolicies by priority first (Allow and
Deny decide, Pass hands down), then the NetworkPolicies, then the BaselineAdminNetworkPolicy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from netguard.adminpol import AdminNetworkPolicy
from netguard.inventory import Inventory
from netguard.model import Endpoint, Workload
from netguard.netpol import Action, Direction, NetworkPolicy, Target
from netguard.portset import NONE, PortSet

__all__ = [
    "Action", "AdminRuleRef", "Decision", "Direction", "DirectionVerdict", "PolicySet", "RuleRef", "Targets", "Tier", "Verdict",
]


class Decision(StrEnum):
    """The outcome for one connection, as the graph colors it."""

    ALLOWED = "allowed"
    DENIED = "denied"
    NOT_COVERED = "not-covered"  # allowed because no policy isolates either end


class Tier(StrEnum):
    """Which layer decided one end of a connection."""

    ADMIN = "AdminNetworkPolicy"
    NETWORK_POLICY = "NetworkPolicy"
    BASELINE = "BaselineAdminNetworkPolicy"
    DEFAULT = "default"  # nothing applies: allowed


@dataclass(frozen=True)
class RuleRef:
    """One rule of one NetworkPolicy: `prod/api ingress[0]`."""

    policy: str  # namespace/name
    direction: Direction
    index: int

    def __str__(self) -> str:
        return f"{self.policy} {self.direction}[{self.index}]"


@dataclass(frozen=True)
class AdminRuleRef:
    """One rule of an AdminNetworkPolicy or of the BaselineAdminNetworkPolicy, with its action."""

    policy: str  # `AdminNetworkPolicy name (priority N)` or `BaselineAdminNetworkPolicy default`
    direction: Direction
    index: int
    name: str
    action: Action

    def __str__(self) -> str:
        named = f" {self.name!r}" if self.name else ""
        return f"{self.policy} {self.direction}[{self.index}]{named} ({self.action})"


@dataclass(frozen=True)
class DirectionVerdict:
    """The verdict of one end: egress at the source, or ingress at the destination."""

    direction: Direction
    isolated: bool  # some NetworkPolicy selects the pod for this direction
    allowed: bool
    selecting: tuple[str, ...] = ()  # the NetworkPolicies that select the pod for this direction
    allowed_by: tuple[RuleRef, ...] = ()
    applies: bool = True  # False when this side is not a pod (no policy can isolate it)
    tier: Tier = Tier.DEFAULT
    admin: AdminRuleRef | None = None  # the admin rule that decided (tier ADMIN or BASELINE)
    passed: AdminRuleRef | None = None  # an ANP Pass rule that handed the decision down

    def reason(self) -> str:
        if not self.applies:
            return f"{self.direction}: not a pod, no policy applies: allowed"
        verdict = "allowed" if self.allowed else "denied"
        prefix = f"{self.direction}: passed by {self.passed}; " if self.passed else f"{self.direction}: "
        if self.admin is not None:
            return f"{prefix}{verdict} by {self.admin}"
        if not self.isolated:
            return f"{prefix}no policy selects the pod for {self.direction}: allowed"
        if self.allowed:
            return f"{prefix}allowed by {', '.join(str(r) for r in self.allowed_by)}"
        return (
            f"{prefix}isolated by {', '.join(self.selecting)} and no {self.direction} rule of "
            f"{'it' if len(self.selecting) == 1 else 'them'} matches: denied"
        )


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    egress: DirectionVerdict
    ingress: DirectionVerdict

    @property
    def covered(self) -> bool:
        """Some policy decides at least one end (otherwise the connection is allowed by default)."""
        return any(side.isolated or side.admin is not None for side in self.sides())

    @property
    def decision(self) -> Decision:
        if not self.covered:
            return Decision.NOT_COVERED
        return Decision.ALLOWED if self.allowed else Decision.DENIED

    @property
    def denied_by_admin(self) -> AdminRuleRef | None:
        """The admin rule that denied the connection, if an admin policy (not a NetworkPolicy) did."""
        for side in self.sides():
            if not side.allowed and side.admin is not None:
                return side.admin
        return None

    def sides(self) -> tuple[DirectionVerdict, DirectionVerdict]:
        return (self.egress, self.ingress)

    def reasons(self) -> list[str]:
        return [self.egress.reason(), self.ingress.reason()]


AnyPolicy = NetworkPolicy | AdminNetworkPolicy


class PolicySet:
    """NetworkPolicies, AdminNetworkPolicies and the BaselineAdminNetworkPolicy, indexed for evaluation.

    Per end of a connection: ANPs in priority order (first matching rule: Allow or Deny decides, Pass
    hands down), then the NetworkPolicies when some isolates the pod, then the BANP; else allowed.
    """

    def __init__(self, policies: Iterable[AnyPolicy]) -> None:
        """`policies` may mix kinds; an admin policy named twice keeps its later version."""
        self.policies: list[NetworkPolicy] = []
        admin: list[AdminNetworkPolicy] = []
        for policy in policies:
            if isinstance(policy, AdminNetworkPolicy):
                admin.append(policy)
            else:
                self.policies.append(policy)
        admin = list({(p.kind, p.name): p for p in admin}.values())  # one per name: the later one wins
        self.admin = sorted((p for p in admin if not p.baseline), key=AdminNetworkPolicy.sort_key)
        self.warnings = [
            f"{a.kind} {a.name} and {b.name} share priority {a.priority}: the API leaves their order undefined; "
            "netguard takes them by name"
            for a, b in zip(self.admin, self.admin[1:], strict=False)
            if a.priority == b.priority
        ]
        baselines = [p for p in admin if p.baseline]
        self.baseline: AdminNetworkPolicy | None = baselines[-1] if baselines else None
        self._by_label: dict[tuple[str, str, str], list[NetworkPolicy]] = defaultdict(list)
        self._unindexed: dict[str, list[NetworkPolicy]] = defaultdict(list)
        self._selecting: dict[int, tuple[Target, list[NetworkPolicy]]] = {}
        self._admin_for: dict[int, tuple[Target, list[AdminNetworkPolicy]]] = {}
        for policy in self.policies:
            ml = policy.pod_selector.match_labels
            if ml:
                key, value = ml[0]
                self._by_label[(policy.namespace, key, value)].append(policy)
            else:
                self._unindexed[policy.namespace].append(policy)

    @property
    def has_admin(self) -> bool:
        return bool(self.admin) or self.baseline is not None

    def selecting(self, pod: Target) -> list[NetworkPolicy]:
        """NetworkPolicies whose podSelector selects the pod, in a stable order (memoized per Target object)."""
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
        """The NetworkPolicies that isolate `pod` for `direction` (empty: the pod is open that way)."""
        return [p for p in self.selecting(pod) if p.isolates(direction)]

    def admin_for(self, pod: Target) -> list[AdminNetworkPolicy]:
        """The ANPs whose subject takes in the pod, in priority order (memoized per Target object)."""
        if not self.admin or not pod.is_pod:
            return []
        hit = self._admin_for.get(id(pod))
        if hit is not None and hit[0] is pod:
            return hit[1]
        chosen = [p for p in self.admin if p.selects(pod)]
        self._admin_for[id(pod)] = (pod, chosen)
        return chosen

    def baseline_for(self, pod: Target) -> AdminNetworkPolicy | None:
        return self.baseline if self.baseline is not None and self.baseline.selects(pod) else None

    def direction(
        self, pod: Target, peer: Target, dst: Target, port: int, protocol: str, direction: Direction
    ) -> DirectionVerdict:
        """Egress of `pod` toward `peer`, or ingress of `pod` from `peer`; `dst` resolves named ports."""
        direction = Direction(direction)
        if not pod.is_pod:
            return DirectionVerdict(direction, False, True, applies=False)
        isolating = self.isolating(pod, direction)
        selecting = tuple(p.ref for p in isolating)
        passed = None
        for policy in self.admin_for(pod):
            ref = _first_match(policy, pod, peer, dst, port, protocol, direction)
            if ref is None:
                continue
            if ref.action is Action.PASS:
                passed = ref
                break
            return DirectionVerdict(direction, bool(isolating), ref.action is Action.ALLOW, selecting, tier=Tier.ADMIN, admin=ref)
        if isolating:
            allowed_by = tuple(
                RuleRef(policy.ref, direction, i)
                for policy in isolating
                for i, rule in enumerate(policy.rules(direction))
                if rule.port_matches(port, protocol, dst) and rule.peer_matches(peer, policy.namespace)
            )
            return DirectionVerdict(
                direction, True, bool(allowed_by), selecting, allowed_by, tier=Tier.NETWORK_POLICY, passed=passed
            )
        baseline = self.baseline_for(pod)
        ref = _first_match(baseline, pod, peer, dst, port, protocol, direction) if baseline is not None else None
        if ref is not None:
            return DirectionVerdict(direction, False, ref.action is Action.ALLOW, tier=Tier.BASELINE, admin=ref, passed=passed)
        return DirectionVerdict(direction, False, True, passed=passed)

    def direction_ports(self, pod: Target, peer: Target, dst: Target, direction: Direction) -> PortSet:
        """The same question as `direction` for every port at once: what `pod` allows toward/from `peer`."""
        if not pod.is_pod:
            return PortSet.all()
        allowed, pending, handed_down = NONE, PortSet.all(), NONE
        for policy in self.admin_for(pod):
            for rule in policy.rules(direction):
                if not pending:
                    break
                if not rule.peer_matches(peer):
                    continue
                hit = rule.port_set(dst) & pending
                pending = pending - hit
                if rule.action is Action.ALLOW:
                    allowed = allowed | hit
                elif rule.action is Action.PASS:
                    handed_down = handed_down | hit
        pending = pending | handed_down
        if not pending:
            return allowed
        isolating = self.isolating(pod, direction)
        if isolating:
            np_allowed = NONE
            for np in isolating:
                for np_rule in np.rules(direction):
                    if np_rule.peer_matches(peer, np.namespace):
                        np_allowed = np_allowed | np_rule.port_set(dst)
            return allowed | (pending & np_allowed)
        baseline = self.baseline_for(pod)
        for rule in baseline.rules(direction) if baseline is not None else ():
            if rule.peer_matches(peer):
                hit = rule.port_set(dst) & pending
                pending = pending - hit
                if rule.action is Action.ALLOW:
                    allowed = allowed | hit
        return allowed | pending

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


def _first_match(
    policy: AdminNetworkPolicy, pod: Target, peer: Target, dst: Target, port: int, protocol: str, direction: Direction
) -> AdminRuleRef | None:
    """The first rule of an admin policy matching the connection (rules apply in the order written)."""
    for i, rule in enumerate(policy.rules(direction)):
        if rule.peer_matches(peer) and rule.port_set(dst).contains(port, protocol):
            return AdminRuleRef(policy.ref, direction, i, rule.name, rule.action)
    return None


def cluster_policy_set(inventory: Inventory, policies: Iterable[AnyPolicy]) -> PolicySet:
    """`policies` under the cluster's admin tiers: its ANPs and BANP apply whatever namespaces write
    (admin policies among `policies` replace the cluster's of the same name)."""
    return PolicySet([*inventory.admin_policies, *policies])


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
                target = self.inv.address(endpoint.address) if endpoint.address else Target()
            self._cache[endpoint] = target
        return target

    def workload(self, workload: Workload) -> Target:
        return self.of(Endpoint.of(workload))
