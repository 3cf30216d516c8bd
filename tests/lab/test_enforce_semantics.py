"""The semantics table (tests/netguard/semantics_cases.py) through the lab's nftables compiler: every
pod-to-pod case on the compiled chains (pure), and the cases marked `kernel` in a real kernel (root)."""

from __future__ import annotations

import ipaddress

import pytest
import yaml

from netguard.adminpol import ADMIN_KINDS, parse_admin_policy
from netguard.inventory import is_ip
from netguard.lab import enforce, traffic
from netguard.lab.enforce import Allow, PodRules
from netguard.lab.plan import build_plan
from netguard.netpol import Action, Direction, parse_network_policy
from tests.lab.conftest import REASON, lab_name, leftovers
from tests.netguard.semantics_cases import CASES, WORLD

POD_CASES = [c for c in CASES if not is_ip(c.src) and not is_ip(c.dst)]
KERNEL_CASES = [c for c in POD_CASES if c.kernel]


def _policies(text: str) -> list:
    docs = [d for d in yaml.safe_load_all(text) if d]
    return [parse_admin_policy(d) if d["kind"] in ADMIN_KINDS else parse_network_policy(d) for d in docs]


def _hit(allow: Allow, ip: str, port: int, protocol: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if allow.peer and (addr not in ipaddress.ip_network(allow.peer)
                       or any(addr in ipaddress.ip_network(e) for e in allow.excepts)):
        return False
    if allow.protocol and allow.protocol != protocol:
        return False
    return allow.ports is None or allow.ports[0] <= port <= allow.ports[1]


def _chain_passes(rules: PodRules, direction: Direction, peer_ip: str, port: int, protocol: str) -> bool:
    """What render() makes of one pod's chain for one direction, read back: admin entries in order, then the
    NetworkPolicies' allows when they isolate the pod, else the baseline's entries."""
    if not rules.guarded(direction):
        return True
    for entry in rules.admin(direction):
        if _hit(entry.match, peer_ip, port, protocol):
            if entry.action is Action.PASS:
                break
            return entry.action is Action.ALLOW
    if rules.isolated(direction):
        return any(_hit(a, peer_ip, port, protocol) for a in rules.allows(direction))
    for entry in rules.baseline(direction):
        if _hit(entry.match, peer_ip, port, protocol):
            return entry.action is Action.ALLOW
    return True


@pytest.fixture(scope="module")
def plan():
    return build_plan((("world.yaml", d) for d in yaml.safe_load_all(WORLD) if d), "sem", 9)


@pytest.mark.parametrize("case", POD_CASES, ids=[c.id for c in POD_CASES])
def test_the_compiled_chains_agree_with_the_table(case, plan):
    compiled = {r.pod.ref: r for r in enforce.compile_policies(plan, _policies(case.policies))}
    src, dst = compiled[case.src], compiled[case.dst]
    allowed = _chain_passes(src, Direction.EGRESS, dst.pod.ip, case.port, case.protocol) and _chain_passes(
        dst, Direction.INGRESS, src.pod.ip, case.port, case.protocol)
    assert allowed is case.allowed
    enforce.render(plan, list(compiled.values()))  # renders


@pytest.fixture(scope="module")
def world_lab(tmp_path_factory):
    if REASON is not None:
        pytest.skip(REASON)
    from netguard.lab import lab

    manifest = tmp_path_factory.mktemp("sem") / "world.yaml"
    manifest.write_text(WORLD)
    name = lab_name("s")
    lab.down(name)
    try:
        yield lab.up([str(manifest)], name)
    finally:
        lab.down(name)
        left = leftovers(name)
        assert not left, f"lab {name} left: {left}"


@pytest.mark.parametrize("case", KERNEL_CASES, ids=[c.id for c in KERNEL_CASES])
def test_the_kernel_agrees_with_the_table(case, world_lab, tmp_path):
    path = tmp_path / "policies.yaml"
    path.write_text(case.policies)
    driver = traffic.Driver(world_lab, timeout=0.5)
    src, dst = world_lab.pod(case.src), world_lab.pod(case.dst)
    try:
        enforce.apply(world_lab, [str(path)])
        result = driver.call(traffic.Call(case.src, dst.ip, case.port, case.protocol), src)
    finally:
        enforce.off(world_lab)
    assert result.ok is case.allowed, result
