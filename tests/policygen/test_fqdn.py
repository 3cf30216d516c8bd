"""DNS names of outside destinations: kept per edge, shown in comments and the graph, and written
as `toFQDNs` by `--format cilium` (never in a NetworkPolicy: names never widen one)."""

import json
from pathlib import Path

import pytest
import yaml

from netguard.cli import main as netguard
from netguard.model import Edge, Endpoint, EndpointKind, Workload
from policygen.cilium import cilium_policy, render_cilium
from policygen.graph import build_graph, graph_to_dict
from policygen.pipeline import observe
from policygen.render import render_policy
from policygen.synth import SynthesisOptions, synthesize

PRODUCTPAGE = Workload("default", "Deployment", "productpage-v1")
L3_FIELDS = ("toEndpoints", "toCIDR", "toCIDRSet", "toEntities", "toServices", "toFQDNs", "toGroups", "toNodes")


@pytest.fixture
def inventory_args(bookinfo_data):
    return [str(bookinfo_data / "bookinfo.yaml"), str(bookinfo_data / "bookinfo-cluster.yaml")]


def _generate(tmp_path, inventory_args, flows, *extra) -> dict:
    out = tmp_path / "out"
    assert netguard(["policy", "generate", "--inventory", *inventory_args, "--flows", *map(str, flows),
                     "-o", str(out), "-q", *extra]) == 0
    return {p.relative_to(out).as_posix(): p.read_text() for p in sorted(out.rglob("*.yaml"))}


def _egress(text: str) -> list[dict]:
    return yaml.safe_load(text)["spec"]["egress"]


def _assert_one_l3_member_per_rule(text: str) -> None:
    """Cilium rejects a rule combining two peer kinds ("combining ToFQDNs and ToCIDRSet is not supported")."""
    for rule in _egress(text):
        present = [f for f in L3_FIELDS if rule.get(f)]
        assert present and not ("toFQDNs" in present and len(present) > 1), rule  # never an empty (allow-all) peer list


def test_cilium_named_world_peers_become_to_fqdns_golden(tmp_path, bookinfo_data, inventory_args, update_golden):
    files = _generate(tmp_path, inventory_args, [bookinfo_data / "fqdn-flows.jsonl"], "--format", "cilium")
    text = files["default/productpage-v1.yaml"]
    expected = Path(__file__).parent / "golden" / "fqdn-cilium" / "default" / "productpage-v1.yaml"
    if update_golden:
        expected.parent.mkdir(parents=True, exist_ok=True)
        expected.write_text(text)
    assert text == expected.read_text(), f"{expected} differs (pytest --update-golden to accept)"
    egress = _egress(text)
    fqdn = [r for r in egress if "toFQDNs" in r]
    assert fqdn == [{"toFQDNs": [{"matchName": "api-eu.example.com"}, {"matchName": "api.example.com"}],
                     "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}]
    assert [r["toCIDRSet"] for r in egress if "toCIDRSet" in r] == [[{"cidr": "198.51.100.20/32"}]]  # no names: an address
    # No lookup was observed (--dns observed), yet the DNS rule is there, through the DNS proxy, and said why.
    assert egress[-1]["toPorts"][0]["rules"] == {"dns": [{"matchPattern": "*"}]}
    assert "# note: DNS egress to kube-dns (with rules.dns) is allowed although no lookup was observed" in text
    _assert_one_l3_member_per_rule(text)


def test_network_policy_keeps_addresses_and_names_them_in_comments(tmp_path, bookinfo_data, inventory_args):
    files = _generate(tmp_path, inventory_args, [bookinfo_data / "fqdn-flows.jsonl"])
    text = files["default/productpage-v1.yaml"]
    assert "to the world (203.0.113.9, api.example.com) on 443/TCP: 2 connections" in text
    assert "to the world (203.0.113.10, api-eu.example.com, api.example.com) on 443/TCP" in text
    assert "to the world (198.51.100.20) on 443/TCP" in text
    egress = yaml.safe_load(text)["spec"]["egress"]
    assert [p["ipBlock"]["cidr"] for p in egress[1]["to"]] == ["198.51.100.20/32", "203.0.113.9/32", "203.0.113.10/32"]
    assert all(r["ports"][0]["port"] != 53 for r in egress)  # no DNS rule: names never widen a NetworkPolicy
    assert "toFQDNs" not in text and "example.com" not in text.split("apiVersion:")[1]


def test_observed_dns_is_the_one_dns_rule(tmp_path, bookinfo_data, inventory_args):
    flows = tmp_path / "flows.jsonl"
    dns = {"time": 1790000100, "src_ip": "10.244.1.10", "src_port": 53000, "dst_ip": "10.96.0.10", "dst_port": 53,
           "protocol": "UDP", "dst_pod_ip": "10.244.0.2"}
    flows.write_text(json.dumps(dns) + "\n" + (bookinfo_data / "fqdn-flows.jsonl").read_text())
    text = _generate(tmp_path, inventory_args, [flows], "--format", "cilium")["default/productpage-v1.yaml"]
    egress = _egress(text)
    assert sum(1 for r in egress if r["toPorts"][0].get("rules")) == 1
    assert any("toFQDNs" in r for r in egress) and "# note:" not in text


def test_dns_never_keeps_addresses(tmp_path, bookinfo_data, inventory_args):
    text = _generate(tmp_path, inventory_args, [bookinfo_data / "fqdn-flows.jsonl"], "--format", "cilium",
                     "--dns", "never")["default/productpage-v1.yaml"]
    egress = _egress(text)
    assert not any("toFQDNs" in r or r["toPorts"][0].get("rules") for r in egress)
    assert [c["cidr"] for r in egress if "toCIDRSet" in r for c in r["toCIDRSet"]] == [
        "198.51.100.20/32", "203.0.113.9/32", "203.0.113.10/32"]
    assert "# note: --dns never: outside peers with DNS names stay addresses" in text


def test_hubble_destination_names_give_to_fqdns_without_inventory(tmp_path):
    source = {"namespace": "default", "pod_name": "productpage-v1-5d8c6b7f9c-x10ab", "labels": ["k8s:app=productpage"],
              "workloads": [{"name": "productpage-v1", "kind": "Deployment"}]}
    flow = {"flow": {"time": "2026-09-21T14:13:21Z", "verdict": "FORWARDED",
                     "IP": {"source": "10.244.1.10", "destination": "203.0.113.9"},
                     "l4": {"TCP": {"source_port": 41000, "destination_port": 443, "flags": {"SYN": True}}},
                     "source": source, "destination": {"labels": ["reserved:world"]},
                     "destination_names": ["api.example.com"], "traffic_direction": "EGRESS", "is_reply": False}}
    path = tmp_path / "hubble.jsonl"
    path.write_text(json.dumps(flow) + "\n")
    observed = observe([], [path])
    [edge] = observed.edges
    assert edge.dst == Endpoint(EndpointKind.WORLD, address="203.0.113.9") and edge.dst_names == ("api.example.com",)
    [generated] = synthesize(observed.inventory, observed.edges).policies
    assert [r for r in cilium_policy(generated)["spec"]["egress"] if "toFQDNs" in r][0]["toFQDNs"] == [
        {"matchName": "api.example.com"}]
    graph = build_graph(observed.edges)
    assert graph_to_dict(graph)["edges"][0]["dst_names"] == ["api.example.com"]
    from visualizer.export import to_graphml

    assert ">api.example.com</data>" in to_graphml(graph)  # GraphML holds scalars: the names as one string


def _world(address: str, names: tuple[str, ...] = (), overflow: bool = False, port: int = 443) -> Edge:
    return Edge.of(Endpoint.of(PRODUCTPAGE), Endpoint(EndpointKind.WORLD, address=address), port, "TCP",
                dst_names=names, names_overflow=overflow)


@pytest.mark.parametrize(
    ("edges", "prefix", "fqdns", "cidrs"),
    [
        # every edge of a collapsed /24 has names: the names replace the block
        ([_world("203.0.113.9", ("a.example.com",)), _world("203.0.113.10", ("b.example.com",))], 24,
         ["a.example.com", "b.example.com"], []),
        # one address of the /24 has no name: the whole block stays an address
        ([_world("203.0.113.9", ("a.example.com",)), _world("203.0.113.10")], 24, [], ["203.0.113.0/24"]),
        # more names than kept: some would be missing, so the address stays
        ([_world("203.0.113.9", ("a.example.com",), overflow=True), _world("198.51.100.1", ("c.example.com",))], 32,
         ["c.example.com"], ["203.0.113.9/32"]),
    ],
)
def test_a_peer_is_named_only_when_all_its_edges_are(bookinfo_data, edges, prefix, fqdns, cidrs):
    inventory = observe([str(bookinfo_data / "bookinfo-cluster.yaml")], []).inventory
    result = synthesize(inventory, edges, SynthesisOptions(cidr_prefix=prefix))
    generated = next(g for g in result.policies if g.workload == PRODUCTPAGE)
    egress = cilium_policy(generated)["spec"]["egress"]
    assert [n["matchName"] for r in egress for n in r.get("toFQDNs", [])] == fqdns
    assert [c["cidr"] for r in egress for c in r.get("toCIDRSet", [])] == cidrs
    assert any(r["toPorts"][0].get("rules") for r in egress) == bool(fqdns)  # DNS only when a toFQDNs needs it
    _assert_one_l3_member_per_rule(render_cilium(generated))
    assert "example.com" not in render_policy(generated).split("apiVersion:")[1]  # the NetworkPolicy: addresses only
