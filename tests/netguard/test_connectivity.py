"""`policy connectivity`: the whole map, checked line by line and against the one-connection evaluator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netguard.connectivity import Peer, connectivity, group_workloads
from netguard.evaluate import PolicySet
from netguard.inventory import load_inventory, load_policies
from netguard.model import Workload
from netguard.portset import PortSet

DATA = Path(__file__).parent / "data"
SHOP = DATA / "shop.yaml"
SHOP_POLICIES = DATA / "shop-policies.yaml"

EXPECTED = """\
0.0.0.0-255.255.255.255 => mon/prometheus[Pod] : All Connections
0.0.0.0-9.255.255.255,11.0.0.0-255.255.255.255 => shop/web[Deployment] : TCP 8080
mon/prometheus[Pod] => 0.0.0.0-255.255.255.255 : All Connections
mon/prometheus[Pod] => shop/api[ReplicationController] : All Connections
shop/api[ReplicationController] => shop/db[StatefulSet] : TCP 5432
shop/report[CronJob] => shop/db[StatefulSet] : TCP 5432
shop/web[Deployment] => 0.0.0.0-255.255.255.255 : UDP 53
shop/web[Deployment] => shop/api[ReplicationController] : TCP 9090
shop/worker-a[Deployment] => shop/worker-b[Deployment] : All Connections
shop/worker-b[Deployment] => shop/worker-a[Deployment] : All Connections
"""


@pytest.fixture(scope="module")
def shop():
    return load_inventory([SHOP]), load_policies([SHOP_POLICIES])


def test_the_map_of_manifests_alone_lists_every_allowed_connection(shop):
    inventory, policies = shop
    lines = "".join(f"{c}\n" for c in connectivity(inventory, policies).connections)
    assert lines == EXPECTED


def test_without_policies_everything_talks_to_everything(shop):
    inventory, _ = shop
    conns = connectivity(inventory, []).connections
    workloads = len(inventory.workloads)
    assert len(conns) == workloads * (workloads - 1) + 2 * workloads  # every pair, and each with the outside
    assert {str(c.ports) for c in conns} == {"All Connections"}


def test_workloads_with_identical_labels_are_evaluated_once(shop):
    inventory, policies = shop
    cmap = connectivity(inventory, policies)
    assert cmap.workloads == 7 and cmap.groups == 6  # worker-a and worker-b share a group
    assert len(group_workloads(inventory)) == 6


def test_focus_keeps_one_workloads_connections(shop):
    inventory, policies = shop
    cmap = connectivity(inventory, policies, focus=Workload("shop", "StatefulSet", "db"))
    assert [str(c) for c in cmap.connections] == [
        "shop/api[ReplicationController] => shop/db[StatefulSet] : TCP 5432",
        "shop/report[CronJob] => shop/db[StatefulSet] : TCP 5432",
    ]


def test_exposure_names_the_rule_that_opens_it(shop):
    inventory, policies = shop
    cmap = connectivity(inventory, policies, exposure=True)
    by = {(e.workload.label, str(e.direction), e.peer): e for e in cmap.exposure}
    prom = by[("mon/prometheus[Pod]", "ingress", "entire-cluster")]
    assert prom.opened_by == ("no policy isolates it for ingress",)
    web = by[("shop/web[Deployment]", "ingress", "0.0.0.0-9.255.255.255,11.0.0.0-255.255.255.255")]
    assert str(web.ports) == "TCP 8080" and web.opened_by == ("shop/web ingress[0]",)
    assert ("shop/api[ReplicationController]", "ingress", "entire-cluster") not in by  # only team=ops namespaces


def test_ports_print_merged_per_protocol_tcp_then_udp_then_sctp():
    ports = PortSet.of("UDP", 53, 53) | PortSet.of("TCP", 8081, 8090) | PortSet.of("TCP", 80, 80) | PortSet.of("TCP", 8080, 8080)
    assert str(ports) == "TCP 80,8080-8090,UDP 53"
    assert str(PortSet.all()) == "All Connections"
    assert str(PortSet.all() - PortSet.of("UDP", 53, 53)) == "TCP 1-65535,UDP 1-52,54-65535,SCTP 1-65535"


_SHOP = (load_inventory([SHOP]), load_policies([SHOP_POLICIES]))
_SHOP_MAP = connectivity(*_SHOP)


@settings(deadline=None, max_examples=60)
@given(st.integers(1, 65535), st.sampled_from(["TCP", "UDP", "SCTP"]))
def test_the_map_agrees_with_the_one_connection_evaluator(port, protocol):
    inventory, policies = _SHOP
    cmap = _SHOP_MAP
    allowed = {(c.src, c.dst): c.ports for c in cmap.connections}
    policy_set = PolicySet(policies)
    for src in inventory.workloads:
        for dst in inventory.workloads:
            if src == dst:
                continue
            ports = allowed.get((Peer.of(src), Peer.of(dst)), PortSet())
            verdict = policy_set.evaluate(inventory.target(src), inventory.target(dst), port, protocol)
            assert ports.contains(port, protocol) is verdict.allowed, (src, dst)


@pytest.mark.parametrize("fmt", ["txt", "json", "csv", "md", "dot"])
def test_cli_writes_every_format(tmp_path, fmt):
    from netguard.cli import main

    out = tmp_path / f"map.{fmt}"
    argv = ["policy", "connectivity", "--inventory", str(SHOP), "--policies", str(SHOP_POLICIES), "--format", fmt, "-o", str(out)]
    assert main(argv) == 0
    text = out.read_text()
    if fmt == "txt":
        assert text == EXPECTED
    elif fmt == "json":
        data = json.loads(text)
        assert {"src": "shop/web[Deployment]", "dst": "shop/api[ReplicationController]", "conn": "TCP 9090",
                "ports": [{"protocol": "TCP", "from": 9090, "to": 9090}]} in data
    elif fmt == "csv":
        assert text.splitlines()[0] == "src,dst,conn" and len(text.splitlines()) == 11
    elif fmt == "md":
        assert "| shop/web[Deployment] | shop/api[ReplicationController] | TCP 9090 |" in text
    else:
        assert '"shop/web[Deployment]" -> "shop/api[ReplicationController]" [label="TCP 9090"];' in text


def test_cli_rejects_an_unknown_focus_workload(capsys):
    from netguard.cli import main

    argv = ["policy", "connectivity", "--inventory", str(SHOP), "--focus-workload", "shop/nope"]
    assert main(argv) == 2
    assert "shop/nope" in capsys.readouterr().err


def test_cli_draws_svg(tmp_path):
    import shutil

    from netguard.cli import main

    if shutil.which("dot") is None:
        pytest.skip("Graphviz is not installed")
    out = tmp_path / "map.svg"
    assert main(["policy", "connectivity", "--inventory", str(SHOP), "--policies", str(SHOP_POLICIES),
                 "--format", "svg", "-o", str(out)]) == 0
    assert out.read_text().lstrip().startswith("<?xml") and "shop/web[Deployment]" in out.read_text()
