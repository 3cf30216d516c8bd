"""NetworkPolicies -> nftables, with the exact Kubernetes semantics, so a policy set is proven in a real
kernel dataplane.

- A pod is isolated for a direction only when some policy selects it with that policyType; the
  allowed traffic of an isolated pod is the union of the rules of every policy selecting it.
- A connection needs egress allowed at its source and ingress allowed at its destination.
- Replies and related packets of an allowed connection pass (`ct state established,related`).
- Which policies isolate a pod comes from the core's one evaluator (`netguard.evaluate.PolicySet`);
  peers are matched with the core's `PolicyPeer.matches` and `IPBlock.contains` (podSelector AND
  namespaceSelector, a missing namespaceSelector meaning the policy's namespace, ipBlock with except);
  named ports resolve against the destination pod; a rule without ports allows every port and protocol.

- The admin tiers become priority chains per pod and direction: the AdminNetworkPolicies' rules in
  priority order first (Allow `return`s to the other end's check, Deny drops, Pass jumps past the
  remaining admin rules), then the NetworkPolicies when they isolate the pod, else the
  BaselineAdminNetworkPolicy's rules; what nothing decided passes.

The forward hook sees pod-to-pod packets after the Service DNAT, so rules match pod addresses and
container ports, exactly what NetworkPolicy ports are. Compilation (`compile_policies`) is pure;
`apply` programs the table `ng-<lab>-pol` atomically; `off` deletes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from netguard.adminpol import AdminRule
from netguard.evaluate import AnyPolicy, PolicySet
from netguard.inventory import load_admin_policies, load_policies
from netguard.lab import system
from netguard.lab.plan import LabPlan, PodSpec
from netguard.netpol import Action, Direction, IPBlock, NetworkPolicy, PolicyPort, Rule, Target

_PROTO = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


@dataclass(frozen=True, order=True)
class Allow:
    """Traffic one rule allows, from the isolated pod's point of view.

    `peer` is an address or CIDR of the other side ("" = any), `excepts` CIDRs taken out of it;
    `protocol` "" means every protocol (a rule without ports); `ports` is an inclusive range, or None
    for every port of the protocol.
    """

    peer: str = ""
    excepts: tuple[str, ...] = ()
    protocol: str = ""
    ports: tuple[int, int] | None = None


@dataclass(frozen=True)
class AdminEntry:
    """One admin rule's match for one pod, with its action; kept in evaluation order."""

    match: Allow
    action: Action
    rule: str  # `AdminNetworkPolicy x (priority 5) ingress[0]`, for the chain's comments


@dataclass
class PodRules:
    pod: PodSpec
    ingress_isolated: bool = False
    egress_isolated: bool = False
    ingress: list[Allow] = field(default_factory=list)
    egress: list[Allow] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    # the admin tiers, in evaluation order: ANP rules (priority order), then the BANP's
    ingress_admin: list[AdminEntry] = field(default_factory=list)
    egress_admin: list[AdminEntry] = field(default_factory=list)
    ingress_baseline: list[AdminEntry] = field(default_factory=list)
    egress_baseline: list[AdminEntry] = field(default_factory=list)

    def isolated(self, direction: Direction) -> bool:
        return self.ingress_isolated if direction is Direction.INGRESS else self.egress_isolated

    def allows(self, direction: Direction) -> list[Allow]:
        return self.ingress if direction is Direction.INGRESS else self.egress

    def admin(self, direction: Direction) -> list[AdminEntry]:
        return self.ingress_admin if direction is Direction.INGRESS else self.egress_admin

    def baseline(self, direction: Direction) -> list[AdminEntry]:
        return self.ingress_baseline if direction is Direction.INGRESS else self.egress_baseline

    def guarded(self, direction: Direction) -> bool:
        """Some tier has something to say about this direction: the pod gets a chain."""
        return self.isolated(direction) or bool(self.admin(direction)) or bool(self.baseline(direction))


def target_of(plan: LabPlan, pod: PodSpec) -> Target:
    return Target(
        ip=pod.ip,
        namespace=pod.namespace,
        labels=dict(pod.labels),
        namespace_labels=plan.namespaces.get(pod.namespace) or {"kubernetes.io/metadata.name": pod.namespace},
        named_ports={(p.name, p.protocol): p.port for p in pod.ports if p.name},
    )


def _port_allows(pp: PolicyPort, dst: Target | None) -> list[Allow]:
    """One PolicyPort against a destination (None: not a pod, named ports cannot resolve)."""
    if pp.port is None:
        return [Allow(protocol=pp.protocol)]
    if isinstance(pp.port, str):
        number = dst.named_ports.get((pp.port, pp.protocol)) if dst is not None else None
        return [Allow(protocol=pp.protocol, ports=(number, number))] if number else []
    return [Allow(protocol=pp.protocol, ports=(pp.port, pp.end_port or pp.port))]


def _rule_allows(rule: Rule, policy: NetworkPolicy, me: Target, pods: Sequence[tuple[PodSpec, Target]],
                 direction: Direction) -> list[Allow]:
    """What one rule allows for the isolated pod `me`. For egress the port belongs to the peer."""
    # The peers: ("", None) any address; (cidr, excepts) an ipBlock; (ip, target) a lab pod.
    peers: list[tuple[str, tuple[str, ...], Target | None, IPBlock | None]] = []
    if not rule.peers:
        peers.append(("", (), None, None))
    for peer in rule.peers:
        if peer.ip_block is not None:
            ip_block = peer.ip_block
            peers.append((str(ip_block.cidr), tuple(str(e) for e in ip_block.excepts), None, ip_block))
        else:
            peers += [(pod.ip, (), target, None) for pod, target in pods if peer.matches(target, policy.namespace)]
    out: list[Allow] = []
    named = any(isinstance(p.port, str) for p in rule.ports)
    for address, excepts, target, block in peers:
        if not rule.ports:
            out.append(Allow(address, excepts))
            continue
        if direction is Direction.INGRESS:
            dsts: list[tuple[str, Target | None]] = [(address, me)]
        elif target is not None or not named:
            dsts = [(address, target)]
        else:
            # A named port toward an ipBlock or anywhere: it can only be a pod's port; resolve per lab pod.
            dsts = [(address, None)] + [(pod.ip, t) for pod, t in pods if block is None or block.contains(pod.ip)]
        for dst_address, dst in dsts:
            for pp in rule.ports:
                if isinstance(pp.port, str) and dst is None:
                    continue
                for allow in _port_allows(pp, dst):
                    out.append(Allow(dst_address, excepts if dst_address == address else (), allow.protocol, allow.ports))
    return out


def _admin_entries(rule: AdminRule, ref: str, me: Target, pods: Sequence[tuple[PodSpec, Target]],
                   direction: Direction) -> list[AdminEntry]:
    """One admin rule for the pod `me`: its peers as lab pod addresses or CIDRs, its ports as ranges."""
    peers: list[tuple[str, Target]] = []
    for peer in rule.peers:
        if peer.networks:
            peers += [(str(net), Target()) for net in peer.networks if net.version == 4]
        elif peer.nodes is None:  # the lab has no node objects: nodes peers match nothing here
            peers += [(pod.ip, target) for pod, target in pods if peer.matches(target)]
    out = []
    for address, target in peers:
        if not rule.ports:
            out.append(AdminEntry(Allow(address), rule.action, ref))
            continue
        dst = me if direction is Direction.INGRESS else target
        for proto, lo, hi in rule.port_set(dst).intervals():
            out.append(AdminEntry(Allow(address, (), proto, (lo, hi)), rule.action, ref))
    return out


def compile_policies(plan: LabPlan, policies: Iterable[AnyPolicy]) -> list[PodRules]:
    """Per lab pod: isolated or not per direction, the allowed peers/ports, and the admin tiers (pure)."""
    policy_set = PolicySet(policies)
    pods = [(pod, target_of(plan, pod)) for pod in plan.pods]
    out = []
    for pod, me in pods:
        rules = PodRules(pod, policies=[p.ref for p in policy_set.selecting(me)])
        for policy in policy_set.isolating(me, Direction.INGRESS):
            rules.ingress_isolated = True
            for rule in policy.ingress:
                rules.ingress += _rule_allows(rule, policy, me, pods, Direction.INGRESS)
        for policy in policy_set.isolating(me, Direction.EGRESS):
            rules.egress_isolated = True
            for rule in policy.egress:
                rules.egress += _rule_allows(rule, policy, me, pods, Direction.EGRESS)
        baseline = policy_set.baseline_for(me)
        for direction in Direction:
            for admin in policy_set.admin_for(me):
                for i, admin_rule in enumerate(admin.rules(direction)):
                    ref = f"{admin.ref} {direction}[{i}]"
                    rules.admin(direction).extend(_admin_entries(admin_rule, ref, me, pods, direction))
            if baseline is not None:
                for i, admin_rule in enumerate(baseline.rules(direction)):
                    ref = f"{baseline.ref} {direction}[{i}]"
                    rules.baseline(direction).extend(_admin_entries(admin_rule, ref, me, pods, direction))
        rules.ingress = sorted(set(rules.ingress))
        rules.egress = sorted(set(rules.egress))
        out.append(rules)
    return out


def _match(allow: Allow, side: str) -> str:
    parts = []
    if allow.peer:
        parts.append(f"ip {side} {allow.peer}")
        if allow.excepts:
            parts.append(f"ip {side} != {{ {', '.join(allow.excepts)} }}")
    if allow.protocol:
        proto = _PROTO[allow.protocol]
        if allow.ports is None:
            parts.append(f"meta l4proto {proto}")
        else:
            lo, hi = allow.ports
            parts.append(f"{proto} dport {lo}" if lo == hi else f"{proto} dport {lo}-{hi}")
    return " ".join(parts)


_VERDICT = {Action.ALLOW: "return", Action.DENY: "counter drop"}


def render(plan: LabPlan, compiled: Sequence[PodRules]) -> str:
    """The nftables script of table `ng-<lab>-pol` (replaces it atomically)."""
    from netguard.lab.lab import policy_table

    table = policy_table(plan.name)
    jumps, chains = [], []
    for i, rules in enumerate(compiled):
        for direction, me, other in ((Direction.EGRESS, "saddr", "daddr"), (Direction.INGRESS, "daddr", "saddr")):
            if rules.guarded(direction):
                jumps.append(f"    ip {me} {rules.pod.ip} jump {direction}-{i}")
                chains.append(_direction_chains(f"{direction}-{i}", rules, direction, other))
    return (
        f"table ip {table} {{}}\ndelete table ip {table}\n"
        f"table ip {table} {{\n"
        "  chain forward {\n"
        "    type filter hook forward priority filter; policy accept;\n"
        "    ct state established,related accept\n"
        + "".join(j + "\n" for j in jumps)
        + "  }\n"
        + "".join(chains)
        + "}\n"
    )


def _direction_chains(name: str, rules: PodRules, direction: Direction, side: str) -> str:
    """The chain of one pod and direction: admin rules, then (chain `<name>-np`) the NetworkPolicies when
    they isolate the pod, else the baseline's rules; `return` hands over to the other end's check."""
    admin = rules.admin(direction)
    np_name = f"{name}-np" if admin else name
    if rules.isolated(direction):
        body = [f"{_match(a, side)} return".strip() for a in rules.allows(direction)]
        tail = "counter drop"
    else:
        body = [f"{_match(e.match, side)} {_VERDICT[e.action]}".strip() for e in rules.baseline(direction)]
        tail = "return"
    out = _chain(np_name, rules.pod.ref, body, tail)
    if admin:
        first = [
            f"{_match(e.match, side)} {_VERDICT.get(e.action, f'goto {np_name}')}".strip() + f"  # {e.rule}"
            for e in admin
        ]
        out = _chain(name, rules.pod.ref, first, f"goto {np_name}") + out
    return out


def _chain(name: str, pod: str, body: list[str], tail: str = "counter drop") -> str:
    lines = "".join(f"    {line}\n" for line in body)
    comment = json.dumps(pod)
    return f"  chain {name} {{\n    comment {comment}\n{lines}    {tail}\n  }}\n"


def apply(plan: LabPlan, paths: Sequence[str]) -> tuple[str, str]:
    """Program the policies of `paths` into the lab; returns (the script, a one-line summary)."""
    from netguard.lab import lab

    policies: list[AnyPolicy] = [*load_policies(paths), *load_admin_policies(paths)]
    compiled = compile_policies(plan, policies)
    script = render(plan, compiled)
    system.nft(script)
    _, state = lab.load(plan.name)
    state["enforced"] = ", ".join(str(p) for p in paths)
    lab._save(plan.name, state)
    ingress = sum(r.ingress_isolated for r in compiled)
    egress = sum(r.egress_isolated for r in compiled)
    allows = sum(len(r.ingress) + len(r.egress) for r in compiled)
    admin = sum(len(r.admin(d)) + len(r.baseline(d)) for r in compiled for d in Direction)
    tiers = f", {admin} admin rules" if admin else ""
    return script, (f"lab {plan.name}: {len(policies)} policies enforced: {ingress} of {len(compiled)} pods isolated "
                    f"for ingress, {egress} for egress, {allows} allow rules{tiers}")


def off(plan: LabPlan) -> None:
    from netguard.lab import lab

    table = lab.policy_table(plan.name)
    system.nft(f"table ip {table} {{}}\ndelete table ip {table}\n")
    _, state = lab.load(plan.name)
    state["enforced"] = ""
    lab._save(plan.name, state)
