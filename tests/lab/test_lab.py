"""The lab itself: namespaces, inventory, DNS, exec, ClusterIPs, teardown (real, as root)."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import yaml

from netguard.errors import InputError
from netguard.inventory import load_inventory
from netguard.lab import lab, traffic
from netguard.lab.server import Servers
from tests.lab.conftest import DATA, leftovers, needs_lab, netguard

pytestmark = needs_lab


def test_inventory_resolves_pods_to_deployments_with_cluster_ips(bookinfo_lab, tmp_path):
    out = netguard("lab", "inventory", "--name", bookinfo_lab.name).stdout
    listing = yaml.safe_load(out)
    assert listing["kind"] == "List"
    kinds = {item["kind"] for item in listing["items"]}
    assert {"Namespace", "Pod", "Service", "ReplicaSet", "Deployment"} <= kinds
    path = tmp_path / "cluster.yaml"
    path.write_text(out)
    inv = load_inventory([path])
    workloads = {str(p.workload): p.workload.kind for p in inv.pods}
    assert workloads == {f"default/{n}": "Deployment" for n in
                         ("details-v1", "ratings-v1", "reviews-v1", "reviews-v2", "reviews-v3", "productpage-v1")} | {
                             "kube-system/coredns": "Deployment"}
    assert all(p.ip.startswith(f"10.244.{bookinfo_lab.slot}.") for p in inv.pods)
    services = {s.ref: s.cluster_ips[0] for s in inv.services}
    assert services["kube-system/kube-dns"] == f"10.96.{bookinfo_lab.slot}.10"
    assert services["default/details"].startswith(f"10.96.{bookinfo_lab.slot}.")


def test_veth_names_fit_the_kernel_limit(bookinfo_lab):
    assert all(len(p.veth) <= 15 for p in bookinfo_lab.pods)


def test_dns_answers_short_namespaced_and_full_names(bookinfo_lab):
    driver = traffic.Driver(bookinfo_lab, timeout=2)
    pod = bookinfo_lab.pod("productpage-v1")
    details = next(s for s in bookinfo_lab.services if s.name == "details").cluster_ip
    for name in ("details", "details.default", "details.default.svc.cluster.local"):
        assert driver.resolve(pod, name) == details
    assert driver.resolve(pod, "kube-dns.kube-system") == bookinfo_lab.dns_ip
    assert driver.resolve(pod, "no-such-service") is None
    dns_pod = bookinfo_lab.pod("kube-system/coredns")
    assert driver.resolve(dns_pod, "details.default") == details  # to itself through its Service: hairpin NAT
    servers = Servers(bookinfo_lab)
    assert servers.resolve("details", dns_pod.ip) is None  # a bare name is relative to the asking pod's namespace
    assert servers.resolve("details", pod.ip) == details


def test_exec_runs_the_command_in_the_pod(bookinfo_lab):
    pod = bookinfo_lab.pod("ratings-v1")
    out = netguard("lab", "exec", "--name", bookinfo_lab.name, "ratings-v1", "--", "ip", "-4", "-o", "addr", "show",
                   "dev", "eth0").stdout
    assert f"{pod.ip}/32" in out
    out = netguard("lab", "exec", "--name", bookinfo_lab.name, "ratings-v1", "--", "getent", "hosts", "details").stdout
    assert next(s for s in bookinfo_lab.services if s.name == "details").cluster_ip in out


def test_calls_through_a_cluster_ip_reach_every_backend(bookinfo_lab):
    calls = traffic.parse_spec([{"from": "productpage-v1", "to": "reviews:9080", "count": 3}])
    report = traffic.run(bookinfo_lab, calls, timeout=2)
    assert report.ok, report.summary()
    served = sorted(r.served_by.split('"pod": "')[1].split('"')[0].rsplit("-", 2)[0] for r in report.results)
    assert served == ["default/reviews-v1", "default/reviews-v2", "default/reviews-v3"]


def test_udp_calls_get_an_answer(bookinfo_lab):
    calls = traffic.parse_spec([{"from": "productpage-v1", "to": "kube-dns.kube-system:53", "protocol": "UDP"}])
    report = traffic.run(bookinfo_lab, calls, timeout=2)
    assert report.ok, report.summary()


def test_unknown_workload_and_bad_spec_are_input_errors(bookinfo_lab, tmp_path):
    with pytest.raises(InputError, match="no workload"):
        traffic.run(bookinfo_lab, traffic.parse_spec([{"from": "nope", "to": "details:9080"}]))
    with pytest.raises(InputError, match="protocol"):
        traffic.parse_spec([{"from": "a", "to": "b:1", "protocol": "ICMP"}])
    spec = tmp_path / "bad.yaml"
    spec.write_text("calls: [{from: productpage-v1}]\n")
    proc = netguard("lab", "traffic", "--name", bookinfo_lab.name, "--spec", str(spec), check=False)
    assert proc.returncode == 2 and "needs from" in proc.stderr and proc.stderr.count("\n") == 1


def test_up_twice_is_refused_and_names_are_checked(bookinfo_lab):
    with pytest.raises(InputError, match="already up"):
        lab.up([str(DATA / "bookinfo.yaml")], bookinfo_lab.name)
    with pytest.raises(InputError, match="invalid lab name"):
        lab.up([str(DATA / "bookinfo.yaml")], "Bad-Name")


SMALL = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: x, ports: [{containerPort: 8080, name: http}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, labels: {app: client}}
spec:
  containers: [{name: c, image: x, env: [{name: WEB, value: "web:80"}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: http}]}
"""


def test_down_removes_everything_even_after_a_crash(tmp_path):
    name = f"c{os.getpid() % 10000}"
    manifest = tmp_path / "small.yaml"
    manifest.write_text(SMALL)
    lab.down(name)
    try:
        plan = lab.up([str(manifest)], name)
        assert len(plan.pods) == 4  # 2 web replicas, the client, kube-dns
        # the manifests' env says the client calls web:80 (a named targetPort)
        report = traffic.run(plan, traffic.env_calls(plan), timeout=2)
        assert report.ok, report.summary()
        _, state = lab.load(name)
        os.kill(state["server_pid"], signal.SIGKILL)  # a crash: the server dies, the state stays
        assert leftovers(name)
    finally:
        out = netguard("lab", "down", "--name", name).stdout
    assert "is down" in out
    assert leftovers(name) == []
    proc = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    assert f"ng-{name}-" not in proc.stdout


KUBE_SEMANTICS = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ratings-ingress, namespace: default}
spec:
  podSelector: {matchLabels: {app: ratings}}
  policyTypes: [Ingress]
  ingress: [{from: [{podSelector: {matchLabels: {app: reviews}}}], ports: [{port: 9080}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: productpage-egress, namespace: default}
spec:
  podSelector: {matchLabels: {app: productpage}}
  policyTypes: [Egress]
  egress: [{to: [{podSelector: {matchLabels: {app: ratings}}}], ports: [{port: 9080}]}]
"""


def test_enforcement_isolates_per_direction_and_needs_both_ends_in_the_kernel(bookinfo_lab, tmp_path):
    policies = tmp_path / "policies.yaml"
    policies.write_text(KUBE_SEMANTICS)
    driver = traffic.Driver(bookinfo_lab, timeout=0.5)

    def works(src: str, dst: str) -> bool:
        return driver.call(traffic.Call(src, bookinfo_lab.pod(dst).ip, 9080), bookinfo_lab.pod(src)).ok

    netguard("lab", "enforce", "--name", bookinfo_lab.name, "--policies", str(policies))
    try:
        assert works("reviews-v2", "ratings-v1")  # ratings' ingress allows reviews
        assert not works("productpage-v1", "ratings-v1")  # egress allowed at the source, ingress denied at the destination
        assert not works("productpage-v1", "details-v1")  # productpage's egress is isolated
        assert works("details-v1", "productpage-v1")  # an Egress-only policy leaves productpage's ingress open
        assert works("ratings-v1", "details-v1")  # an Ingress-only policy leaves ratings' egress open
    finally:
        netguard("lab", "enforce", "--name", bookinfo_lab.name, "--off")
    assert works("productpage-v1", "ratings-v1")


def test_up_sweeps_the_remains_of_a_lab_whose_state_was_lost(tmp_path):
    name = f"r{os.getpid() % 10000}"
    manifest = tmp_path / "small.yaml"
    manifest.write_text(SMALL)
    lab.down(name)
    try:
        lab.up([str(manifest)], name)
        _, state = lab.load(name)
        lab.stop_server(name, state["server_pid"])
        (lab.state_dir(name) / "state.json").unlink()  # the state is gone, the namespaces are not
        assert leftovers(name)
        plan = lab.up([str(manifest)], name)
        report = traffic.run(plan, traffic.env_calls(plan), timeout=2)
        assert report.ok, report.summary()
    finally:
        lab.down(name)
    assert leftovers(name) == []
