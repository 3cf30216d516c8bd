"""The bookinfo sample end to end: generate -> validate -> verify -> explain, and Hubble parity."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from netguard.cli import main as netguard
from netguard.inventory import load_policies
from policygen.pipeline import observe
from policygen.render import render_policy
from policygen.synth import synthesize
from policygen.verify import verify

K8S_VERSIONS = ["1.30", "1.31", "1.32", "1.33", "1.34"]
WORKLOADS = ["details-v1", "productpage-v1", "ratings-v1", "reviews-v1", "reviews-v2", "reviews-v3"]


@pytest.fixture
def inventory_args(bookinfo_data):
    return [str(bookinfo_data / "bookinfo.yaml"), str(bookinfo_data / "bookinfo-cluster.yaml")]


@pytest.fixture
def generated(tmp_path, bookinfo_data, inventory_args, capsys) -> Path:
    out = tmp_path / "policies"
    rc = netguard(["policy", "generate", "--inventory", *inventory_args,
                   "--flows", str(bookinfo_data / "bookinfo-flows.jsonl"), "-o", str(out)])
    assert rc == 0
    capsys.readouterr()
    return out


def test_one_policy_per_workload_in_namespace_folders(generated):
    files = sorted(p.relative_to(generated).as_posix() for p in generated.rglob("*.yaml"))
    assert files == [f"default/{w}.yaml" for w in WORKLOADS]  # kube-system is left alone by default


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_generated_policies_validate_against_the_kubernetes_schema(generated, version):
    for path in generated.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            kubernetes_validate.validate(doc, version, strict=True)


def test_generated_yaml_matches_golden_files(generated, update_golden):
    golden = Path(__file__).parent / "golden" / "bookinfo"
    for path in sorted(generated.rglob("*.yaml")):
        expected = golden / path.relative_to(generated)
        if update_golden:
            expected.parent.mkdir(parents=True, exist_ok=True)
            expected.write_text(path.read_text())
        assert path.read_text() == expected.read_text(), f"{expected} differs (pytest --update-golden to accept)"


def test_verify_allows_every_flow_and_nothing_extra(generated, bookinfo_data, inventory_args, capsys):
    rc = netguard(["policy", "verify", "--inventory", *inventory_args,
                   "--flows", str(bookinfo_data / "bookinfo-flows.jsonl"), "--policies", str(generated)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "allowed:  11 edges, 155 connections (100.00%)" in out
    assert "extra:    0 " in out


def test_verify_exits_1_when_an_observed_flow_is_denied(generated, bookinfo_data, inventory_args, capsys):
    (generated / "default" / "ratings-v1.yaml").unlink()
    deny_all = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "deny-ratings", "namespace": "default"},
                "spec": {"podSelector": {"matchLabels": {"app": "ratings"}}, "policyTypes": ["Ingress"]}}
    (generated / "default" / "deny.yaml").write_text(yaml.safe_dump(deny_all))
    rc = netguard(["policy", "verify", "--inventory", *inventory_args,
                   "--flows", str(bookinfo_data / "bookinfo-flows.jsonl"), "--policies", str(generated)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "DENIED default/reviews-v2 -> default/ratings-v1 9080/TCP" in out
    assert "isolated by default/deny-ratings" in out


@pytest.mark.parametrize(
    ("src", "dst", "port", "allowed"),
    [
        ("default/productpage-v1", "default/ratings-v1", "9080", False),
        ("default/details-v1", "default/reviews-v1", "9080", False),
        ("default/reviews-v2", "default/ratings-v1", "9080", True),
        ("default/productpage-v1", "default/details-v1", "9080", True),
        ("default/productpage-v1", "default/details-v1", "9081", False),
    ],
)
def test_explain_names_the_rule_or_the_isolation(generated, bookinfo_data, src, dst, port, allowed, capsys):
    rc = netguard(["policy", "explain", "--inventory", str(bookinfo_data / "bookinfo-cluster.yaml"),
                   "--policies", str(generated), "--from", src, "--to", dst, "--port", port])
    out = capsys.readouterr().out
    assert rc == (0 if allowed else 1)
    if allowed:
        assert "ALLOWED" in out and "allowed by default/netguard-" in out
    else:
        assert "DENIED" in out
        assert "isolated by default/netguard-" in out and "no ingress rule" in out


def test_explain_accepts_pod_names_and_ips(generated, bookinfo_data, capsys):
    rc = netguard(["policy", "explain", "--inventory", str(bookinfo_data / "bookinfo-cluster.yaml"),
                   "--policies", str(generated), "--from", "default/reviews-v3-7b6d5c9f8e-x15ab",
                   "--to", "10.244.1.12", "--port", "9080/tcp"])
    assert rc == 0
    assert "pod default/reviews-v3-7b6d5c9f8e-x15ab -> default/ratings-v1-7c9f8d6b4a-x12ab (10.244.1.12)" in capsys.readouterr().out


def test_hubble_flows_without_inventory_give_the_same_policies(bookinfo_data, inventory_args):
    native = observe(inventory_args, [bookinfo_data / "bookinfo-flows.jsonl"])
    hubble = observe([], [bookinfo_data / "bookinfo-hubble.jsonl"])
    assert hubble.read.replies == 155  # reply records are not connections
    a = {g.policy.ref: g.policy.to_dict() for g in synthesize(native.inventory, native.edges).policies}
    b = {g.policy.ref: g.policy.to_dict() for g in synthesize(hubble.inventory, hubble.edges).policies}
    assert a == b
    assert len(a) == 6


def test_rule_comments_name_the_flows_that_justify_them(bookinfo_data, inventory_args):
    observed = observe(inventory_args, [bookinfo_data / "bookinfo-flows.jsonl"])
    result = synthesize(observed.inventory, observed.edges)
    productpage = next(g for g in result.policies if g.workload.name == "productpage-v1")
    text = render_policy(productpage)
    assert "from node 10.0.0.11 (kubelet probes, hostNetwork pods) on 9080/TCP: 6 connections" in text
    assert "to Deployment default/details-v1 on 9080/TCP via Service default/details: 40 connections" in text
    assert "DNS to kube-dns, UDP and TCP 53" in text


def test_diff_against_the_cluster_policies(generated, bookinfo_data, tmp_path, capsys):
    cluster = tmp_path / "cluster.yaml"
    existing = yaml.safe_load((generated / "default" / "details-v1.yaml").read_text())
    existing["spec"]["ingress"][0]["ports"][0]["port"] = 8080
    cluster.write_text((bookinfo_data / "bookinfo-cluster.yaml").read_text() + "\n---\n" + yaml.safe_dump(existing))
    rc = netguard(["policy", "diff", "--inventory", str(cluster), "--policies", str(generated)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "~ default/netguard-details-v1 changed" in out
    assert "-          port: 8080" in out and "+          port: 9080" in out
    assert "5 added, 1 changed" in out


def test_verify_in_process_matches_cli(generated, bookinfo_data, inventory_args):
    observed = observe(inventory_args, [bookinfo_data / "bookinfo-flows.jsonl"])
    report = verify(observed.inventory, observed.edges, load_policies([generated]))
    assert report.ok and report.extra == [] and report.allowed_connections == 155
    assert {(d.namespace, d.name) for _, d, _, _ in report.extra_dns} == {("kube-system", "coredns")}


def test_cilium_format_matches_golden_files(tmp_path, bookinfo_data, inventory_args, update_golden, capsys):
    out = tmp_path / "cilium"
    assert netguard(["policy", "generate", "--inventory", *inventory_args, "--flows", str(bookinfo_data / "bookinfo-flows.jsonl"),
                     "-o", str(out), "--format", "cilium", "-q"]) == 0
    golden = Path(__file__).parent / "golden" / "bookinfo-cilium"
    for path in sorted(out.rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        assert doc["kind"] == "CiliumNetworkPolicy" and doc["spec"]["enableDefaultDeny"] == {"ingress": True, "egress": True}
        expected = golden / path.relative_to(out)
        if update_golden:
            expected.parent.mkdir(parents=True, exist_ok=True)
            expected.write_text(path.read_text())
        assert path.read_text() == expected.read_text(), f"{expected} differs (pytest --update-golden to accept)"
    productpage = yaml.safe_load((out / "default" / "productpage-v1.yaml").read_text())
    assert productpage["spec"]["ingress"][0]["fromEntities"] == ["host", "remote-node"]  # the node, by entity
    assert productpage["spec"]["ingress"][1]["fromCIDRSet"] == [{"cidr": "203.0.113.7/32"}]
    for path in out.rglob("*.yaml"):  # Cilium refuses a rule that mixes peer types
        spec = yaml.safe_load(path.read_text())["spec"]
        for rule in spec["ingress"] + spec["egress"]:
            assert len([k for k in rule if k != "toPorts"]) <= 1, (path.name, rule)


def test_large_flow_files_are_read_on_every_core_with_the_same_result(bookinfo_data, inventory_args, tmp_path, monkeypatch):
    from netguard.errors import InputError
    from policygen import pipeline

    flows = tmp_path / "flows.jsonl"
    flows.write_text((bookinfo_data / "bookinfo-flows.jsonl").read_text() * 20)
    serial = observe(inventory_args, [flows])
    monkeypatch.setattr(pipeline, "PARALLEL_BYTES", 1)
    monkeypatch.setattr(pipeline, "WORKERS", 3)
    parallel = observe(inventory_args, [flows])
    assert parallel.edges == serial.edges and parallel.read == serial.read
    assert sum(e.connections for e in serial.edges) == 20 * 155
    lines = flows.read_text().splitlines()
    lines[2500] = lines[2500][:30]  # truncated, in the last part
    flows.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"flows.jsonl: line 2501: truncated JSON"):
        observe(inventory_args, [flows])
