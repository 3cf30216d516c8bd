"""End to end on a real kernel dataplane: bookinfo in the lab, its calls captured by the agent (conntrack
and sniff sources at once, shipping to a controller on 127.0.0.1), policies generated from the capture
by `netguard policy generate`, enforced in nftables by `lab enforce`: every call still works and the
lateral moves are dropped."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from netguard.enrich import aggregate
from netguard.flows import read_flows
from netguard.inventory import load_inventory
from netguard.lab import traffic
from tests.agent.controller import FakeController, free_port
from tests.lab.conftest import DATA, NETGUARD, needs_lab, netguard

pytestmark = needs_lab
SPEC = DATA / "bookinfo-traffic.yaml"
LATERAL = DATA / "bookinfo-lateral.yaml"


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


@pytest.fixture(scope="module")
def capture(bookinfo_lab, tmp_path_factory):
    """Both agents run while the spec's calls are made; then SIGTERM."""
    work = tmp_path_factory.mktemp("capture")
    inventory = work / "cluster.yaml"
    inventory.write_text(netguard("lab", "inventory", "--name", bookinfo_lab.name).stdout)
    token = work / "token"
    token.write_text("s3cret\n")
    metrics_port = free_port()
    procs: dict[str, subprocess.Popen] = {}
    out: dict = {"dir": work, "inventory": inventory}
    with FakeController(token="s3cret") as controller:
        try:
            common = ["--node", "lab-node"]
            conntrack = [*NETGUARD, "agent", "--source", "conntrack", "--output", str(work / "conntrack.jsonl"),
                         "--controller", controller.url, "--ship", "flows", "--token-file", str(token), "--flush-interval", "600",
                         "--batch-size", "100000", "--metrics-port", str(metrics_port), "--metrics-addr", "127.0.0.1",
                         "--inventory", str(inventory), "--edges", str(work / "edges.json"), *common]
            sniff = [*NETGUARD, "agent", "--source", "sniff", "--output", str(work / "sniff.jsonl"), *common]
            for name, argv in (("conntrack", conntrack), ("sniff", sniff)):
                err = (work / f"{name}.err").open("w")
                procs[name] = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
                assert wait_for(lambda n=name: '"started"' in (work / f"{n}.err").read_text()), (work / f"{name}.err").read_text()
            report = traffic.run(bookinfo_lab, traffic.load_spec(SPEC), timeout=2)
            out["report"] = report
            # a call from the node itself (as a kubelet probe would make): only a sent copy for the sniffer
            with socket.create_connection((bookinfo_lab.pod("details-v1").ip, 9080), timeout=2) as conn:
                out["node_call"] = conn.getsockname()
                conn.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                assert conn.recv(4096).startswith(b"HTTP/1.0 200")
            calls = len(report.results) + 1  # and the node's call
            assert wait_for(lambda: sum(r["dst_port"] == 9080 for r in lines(work / "conntrack.jsonl")) >= calls)
            assert wait_for(lambda: sum(r["dst_port"] == 9080 for r in lines(work / "sniff.jsonl")) >= calls)
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
                out["metrics"] = response.read().decode()
            out["shipped_before_sigterm"] = len(controller.flows)
        finally:
            for proc in procs.values():
                proc.send_signal(signal.SIGTERM)
            for name, proc in procs.items():
                try:
                    out[f"{name}_rc"] = proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    out[f"{name}_rc"] = "killed"
        out["controller"] = controller.flows
        out["agents"] = {b["agent"] for b in controller.batches}
    yield out


def test_the_calls_of_the_spec_succeed_without_policies(capture):
    assert capture["report"].ok, capture["report"].summary()


def test_conntrack_flow_through_a_cluster_ip_names_the_backend_pod(bookinfo_lab, capture):
    records = lines(capture["dir"] / "conntrack.jsonl")
    details_svc = next(s for s in bookinfo_lab.services if s.name == "details").cluster_ip
    details_pod = bookinfo_lab.pod("details-v1").ip
    productpage = bookinfo_lab.pod("productpage-v1").ip
    to_details = [r for r in records if r["src_ip"] == productpage and r["dst_ip"] == details_svc]
    assert to_details and all(r["dst_pod_ip"] == details_pod and r["dst_pod_port"] == 9080 for r in to_details)
    assert all(r["node"] == "lab-node" for r in records)
    # enrichment by the core puts the edge on the backend workload, not on the Service
    agg = aggregate(read_flows([capture["dir"] / "conntrack.jsonl"]), load_inventory([capture["inventory"]]))
    edges = {(str(e.src), str(e.dst), e.port, e.protocol): e for e in agg.edges()}
    edge = edges[("default/productpage-v1", "default/details-v1", 9080, "TCP")]
    assert edge.via_service == "default/details"
    assert ("default/productpage-v1", "kube-system/coredns", 53, "UDP") in edges
    lab_workloads = {"default/" + n for n in ("productpage-v1", "details-v1", "ratings-v1", "reviews-v1", "reviews-v2",
                                              "reviews-v3")}
    # the lab's calls all land on workloads (other traffic of the machine may be in the capture too)
    assert not any(dst.startswith("world") for src, dst, _, _ in edges if src in lab_workloads)


def test_agent_edges_file_holds_the_aggregated_edges(capture):
    edges = json.loads((capture["dir"] / "edges.json").read_text())
    pairs = {(e["src"], e["dst"], e["port"]) for e in edges}
    assert ("w:default/Deployment/reviews-v2", "w:default/Deployment/ratings-v1", 9080) in pairs
    assert ("w:default/Deployment/productpage-v1", "w:default/Deployment/reviews-v1", 9080) in pairs


def test_sigterm_flushes_every_flow_to_the_controller(capture):
    assert capture["conntrack_rc"] == 0 and capture["sniff_rc"] == 0
    assert capture["shipped_before_sigterm"] == 0  # the flush interval is long: only SIGTERM ships
    written = lines(capture["dir"] / "conntrack.jsonl")
    assert capture["controller"] == written
    assert capture["agents"] == {"lab-node"}


def test_metrics_count_the_flows(capture):
    line = next(x for x in capture["metrics"].splitlines() if x.startswith('netguard_agent_flows_total{source="conntrack"}'))
    assert float(line.split()[-1]) >= len(capture["report"].results)
    assert "netguard_agent_buffered_flows" in capture["metrics"]


def test_sniff_source_sees_every_call(bookinfo_lab, capture):
    seen = {(r["src_ip"], r["dst_ip"], r["dst_port"]) for r in lines(capture["dir"] / "sniff.jsonl") if r["protocol"] == "TCP"}
    for result in capture["report"].results:
        pod = bookinfo_lab.pod(result.pod)
        ip, port = result.address.split(":")
        assert (pod.ip, ip, int(port)) in seen  # before DNAT: the ClusterIP
    records = lines(capture["dir"] / "sniff.jsonl")
    details_svc = next(s for s in bookinfo_lab.services if s.name == "details").cluster_ip
    to_details = [r for r in records if r["dst_ip"] == details_svc]
    assert to_details and all(r.get("dst_pod_ip") == bookinfo_lab.pod("details-v1").ip for r in to_details)
    dns_pod = bookinfo_lab.pod("kube-system/coredns").ip
    assert not [r for r in records if r["src_ip"] == dns_pod]  # DNS answers are not connection starts


def test_generated_policies_keep_every_call_and_drop_lateral_moves(bookinfo_lab, capture):
    name = bookinfo_lab.name
    policies = capture["dir"] / "policies"
    netguard("policy", "generate", "--inventory", str(capture["inventory"]), "--flows",
             str(capture["dir"] / "conntrack.jsonl"), "-o", str(policies))
    assert (policies / "default" / "ratings-v1.yaml").is_file()
    lateral = traffic.load_spec(LATERAL)
    allowed_lateral = [traffic.Call(c.source, c.host, c.port, c.protocol, c.count, "allow") for c in lateral]
    before = traffic.run(bookinfo_lab, allowed_lateral, timeout=2)
    assert before.ok, before.summary()  # without policies the lateral moves work
    try:
        out = netguard("lab", "enforce", "--name", name, "--policies", str(policies)).stdout
        assert "policies enforced" in out
        calls = netguard("lab", "traffic", "--name", name, "--spec", str(SPEC), check=False)
        assert calls.returncode == 0, calls.stdout
        moves = netguard("lab", "traffic", "--name", name, "--spec", str(LATERAL), "--timeout", "0.5", check=False)
        assert moves.returncode == 0, moves.stdout  # each expects deny
        assert "3 calls" in moves.stdout and "0 not" in moves.stdout
        # the same moves by address (no DNS, which a denied egress may block first): the TCP connection is dropped
        for src, dst in (("details-v1", "ratings-v1"), ("ratings-v1", "productpage-v1"), ("productpage-v1", "ratings-v1")):
            svc = next(s for s in bookinfo_lab.services if s.name == dst.split("-")[0]).cluster_ip
            for address in (svc, bookinfo_lab.pod(dst).ip):
                result = traffic.Driver(bookinfo_lab, timeout=0.5).call(traffic.Call(src, address, 9080), bookinfo_lab.pod(src))
                assert not result.ok and "timed out" in result.error, (src, address, result)
        ruleset = subprocess.run(["nft", "list", "table", "ip", f"ng-{name}-pol"], capture_output=True, text=True).stdout
        assert re.search(r"counter packets [1-9][0-9]* bytes [0-9]+ drop", ruleset), ruleset  # the kernel dropped them
    finally:
        netguard("lab", "enforce", "--name", name, "--off")
    after = traffic.run(bookinfo_lab, allowed_lateral, timeout=2)
    assert after.ok, after.summary()  # the drops came from the enforced policies


def test_emit_destroy_reports_byte_and_packet_counters(bookinfo_lab, tmp_path):
    """With nf_conntrack_acct (the lab sets it), a connection reported at its end carries its counters."""
    out, err = tmp_path / "flows.jsonl", tmp_path / "agent.err"
    with err.open("w") as err_file:
        agent = subprocess.Popen([*NETGUARD, "agent", "--emit", "destroy", "--output", str(out)], stdout=subprocess.DEVNULL,
                                 stderr=err_file)
    productpage = bookinfo_lab.pod("productpage-v1")
    details = next(s for s in bookinfo_lab.services if s.name == "details").cluster_ip
    try:
        assert wait_for(lambda: '"started"' in err.read_text()), err.read_text()
        result = traffic.Driver(bookinfo_lab, timeout=2).call(traffic.Call("productpage-v1", details, 9080), productpage)
        assert result.ok, result
        # end the connection's conntrack entry now (TCP would otherwise linger in TIME_WAIT for minutes)
        subprocess.run(["conntrack", "-D", "-p", "tcp", "-s", productpage.ip, "-d", details], capture_output=True)
        assert wait_for(lambda: any(r["dst_ip"] == details for r in lines(out)))
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=30) == 0
    record = next(r for r in lines(out) if r["src_ip"] == productpage.ip and r["dst_ip"] == details)
    assert record["dst_pod_ip"] == bookinfo_lab.pod("details-v1").ip
    assert record["packets"] >= 6  # SYN, SYN-ACK, ACK, request, answer, FINs...
    assert record["bytes"] > 200  # the HTTP request and the JSON answer


def test_both_sources_see_a_connection_from_the_node_to_a_pod(bookinfo_lab, capture):
    src, sport = capture["node_call"]
    details = bookinfo_lab.pod("details-v1").ip
    for source in ("conntrack", "sniff"):
        records = [r for r in lines(capture["dir"] / f"{source}.jsonl") if r["src_port"] == sport and r["dst_ip"] == details]
        assert [(r["src_ip"], r["dst_port"]) for r in records] == [(src, 9080)], source
