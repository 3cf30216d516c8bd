"""Synthesis details: port ranges, overlapping selectors, existing policies, external CIDRs."""

import yaml

from netguard.cli import main as netguard
from netguard.enrich import aggregate
from netguard.inventory import Inventory
from netguard.model import Flow
from policygen.synth import SynthesisOptions, synthesize
from policygen.verify import verify


def deployment(name, ns="a", labels=None, selector=None, ports=()):
    labels = labels or {"app": name}
    return {"kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": selector or labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "ports": [{"containerPort": p} for p in ports]}]}}}}


def pod(name, ip, owner, ns="a", labels=None):
    return {"kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": owner},
                                        "ownerReferences": [{"kind": "Deployment", "name": owner, "controller": True}]},
            "status": {"podIP": ip}}


def run(objects, flows, **options):
    inv = Inventory.build(("t", o) for o in objects)
    edges = aggregate(flows, inv).edges()
    result = synthesize(inv, edges, SynthesisOptions(**options))
    return inv, edges, result


def test_consecutive_observed_ports_become_one_endport_range():
    objs = [deployment("client"), deployment("media", ports=range(30000, 30010)), pod("c", "10.244.0.1", "client"),
            pod("m", "10.244.0.2", "media")]
    flows = [Flow(0, "10.244.0.1", 1, "10.244.0.2", p, "UDP") for p in (30000, 30001, 30002, 30003, 30005)]
    inv, edges, result = run(objs, flows)
    media = next(g.policy for g in result.policies if g.workload.name == "media")
    assert [p.to_dict() for p in media.ingress[0].ports] == [
        {"protocol": "UDP", "port": 30000, "endPort": 30003}, {"protocol": "UDP", "port": 30005}]
    report = verify(inv, edges, [g.policy for g in result.policies])
    assert report.ok and report.extra == []  # 30004 was not observed and is not allowed


def test_overlapping_deployment_selectors_are_tightened():
    objs = [deployment("web", labels={"app": "web", "track": "stable"}, selector={"app": "web"}),
            deployment("web-canary", labels={"app": "web", "track": "canary"}, selector={"app": "web", "track": "canary"}),
            deployment("db"),
            pod("w", "10.244.0.1", "web", labels={"app": "web", "track": "stable"}),
            pod("wc", "10.244.0.2", "web-canary", labels={"app": "web", "track": "canary"}),
            pod("d", "10.244.0.3", "db")]
    inv, edges, result = run(objs, [Flow(0, "10.244.0.1", 1, "10.244.0.3", 5432)])
    web = next(g.policy for g in result.policies if g.workload.name == "web")
    assert dict(web.pod_selector.match_labels) == {"app": "web", "track": "stable"}
    report = verify(inv, edges, [g.policy for g in result.policies])
    assert report.ok and report.extra == []  # the canary may not reach the database


def test_external_peers_are_aggregated_to_the_prefix_asked_for():
    objs = [deployment("web"), pod("w", "10.244.0.1", "web")]
    flows = [Flow(0, f"198.51.100.{i}", 1, "10.244.0.1", 443) for i in (1, 2, 130)]
    _, _, exact = run(objs, flows)
    _, _, aggregated = run(objs, flows, cidr_prefix=24)
    assert [str(p.ip_block.cidr) for p in exact.policies[0].policy.ingress[0].peers] == [
        "198.51.100.1/32", "198.51.100.2/32", "198.51.100.130/32"]
    assert [str(p.ip_block.cidr) for p in aggregated.policies[0].policy.ingress[0].peers] == ["198.51.100.0/24"]


def test_existing_cluster_policies_are_named_and_can_be_verified_together(tmp_path, bookinfo_data, capsys):
    allow_all = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                 "metadata": {"name": "legacy-open", "namespace": "default"},
                 "spec": {"podSelector": {"matchLabels": {"app": "ratings"}}, "ingress": [{}]}}
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text((bookinfo_data / "bookinfo-cluster.yaml").read_text() + "---\n" + yaml.safe_dump(allow_all))
    out = tmp_path / "out"
    flows = str(bookinfo_data / "bookinfo-flows.jsonl")
    assert netguard(["policy", "generate", "--inventory", str(cluster), "--flows", flows, "-o", str(out), "-q"]) == 0
    assert "the cluster's policies default/legacy-open select these pods too" in (out / "default" / "ratings-v1.yaml").read_text()
    capsys.readouterr()
    assert netguard(["policy", "verify", "--inventory", str(cluster), "--flows", flows, "--policies", str(out),
                     "--with-cluster-policies"]) == 0
    text = capsys.readouterr().out
    assert "policies: 7" in text
    assert "EXTRA kube-system/coredns -> default/ratings-v1 9080/TCP" in text  # the legacy policy opens it to pods without egress policies
