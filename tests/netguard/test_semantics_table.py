"""Every case of the semantics table (semantics_cases.py) through `policy explain` and the connectivity map;
the lab's nftables compiler is checked on the same cases in tests/lab/test_enforce_semantics.py."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from netguard.cli import main
from netguard.connectivity import Peer, connectivity
from netguard.inventory import is_ip, load_admin_policies, load_inventory, load_policies
from tests.netguard.semantics_cases import CASES, WORLD, Case


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("world") / "world.yaml"
    path.write_text(WORLD)
    return path


def _policies(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / "policies.yaml"
    path.write_text(case.policies)
    return path


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_explain_agrees_with_the_table(case, world, tmp_path, capsys):
    argv = ["policy", "explain", "--inventory", str(world), "--policies", str(_policies(tmp_path, case)),
            "--from", case.src, "--to", case.dst, "--port", f"{case.port}/{case.protocol}"]
    status = main(argv)
    out = capsys.readouterr().out
    assert status == (0 if case.allowed else 1), out
    assert ("ALLOWED" if case.allowed else "DENIED") in out.splitlines()[0]


def _peer(label: str, conns) -> list:
    """The map's connections whose end is this pod (a workload) or this address (inside a listed range)."""
    if is_ip(label):
        addr = ipaddress.ip_address(label)

        def inside(peer: Peer) -> bool:
            for span in peer.label.split(","):
                lo, _, hi = span.partition("-")
                if peer.is_external and ipaddress.ip_address(lo) <= addr <= ipaddress.ip_address(hi):
                    return True
            return False

        return [inside]
    namespace, name = label.split("/")
    return [lambda peer: peer.namespace == namespace and peer.name == name]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_connectivity_map_agrees_with_the_table(case, world, tmp_path):
    path = _policies(tmp_path, case)
    inventory = load_inventory([world])
    policies = load_policies([path]) + load_admin_policies([path])
    conns = connectivity(inventory, policies).connections
    (src_is,), (dst_is,) = _peer(case.src, conns), _peer(case.dst, conns)
    found = [c for c in conns if src_is(c.src) and dst_is(c.dst)]
    assert len(found) <= 1
    allowed = bool(found) and found[0].ports.contains(case.port, case.protocol)
    assert allowed is case.allowed, [str(c) for c in found]


def _target(inventory, spec: str):
    if is_ip(spec):
        return inventory.address(spec)
    namespace, name = spec.split("/")
    pod = next(p for p in inventory.pods if p.namespace == namespace and p.name == name)
    return inventory.target(pod.workload)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_port_set_answers_agree_with_one_port_answers(case, world, tmp_path):
    from netguard.evaluate import PolicySet

    path = _policies(tmp_path, case)
    inventory = load_inventory([world])
    policy_set = PolicySet(load_policies([path]) + load_admin_policies([path]))
    src, dst = _target(inventory, case.src), _target(inventory, case.dst)
    ports = policy_set.allowed_ports(src, dst)
    for port in {1, case.port - 1, case.port, case.port + 1, 9000, 9100, 65535}:
        for protocol in ("TCP", "UDP", "SCTP"):
            assert ports.contains(port, protocol) is policy_set.evaluate(src, dst, port, protocol).allowed, (port, protocol)


def test_equal_priorities_are_said_and_taken_by_name(world, tmp_path, capsys):
    from tests.netguard.semantics_cases import ALL_PROD, anp

    path = tmp_path / "p.yaml"
    path.write_text(anp("b-deny", 7, ALL_PROD + ", ingress: [{action: Deny, from: [{namespaces: {}}]}]")
                    + anp("a-allow", 7, ALL_PROD + ", ingress: [{action: Allow, from: [{namespaces: {}}]}]"))
    argv = ["policy", "explain", "--inventory", str(world), "--policies", str(path),
            "--from", "dev/web", "--to", "prod/api", "--port", "9090"]
    assert main(argv) == 0  # a-allow comes first by name
    err = capsys.readouterr().err
    assert "AdminNetworkPolicy a-allow and b-deny share priority 7" in err
