"""netguard segments itself: the NetworkPolicies in manifests/base allow what its components need and
nothing else, checked with `netguard policy verify` and `netguard policy connectivity`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "manifests" / "base" / "networkpolicies.yaml"
NODE, APISERVER = "172.18.0.3", "172.18.0.2"  # kind's node network, as the base policies assume
PODS = {  # name: (namespace, labels, ip)
    "netguard-controller-0": ("netguard-system", {"app.kubernetes.io/name": "netguard-controller"}, "10.244.0.10"),
    "netguard-ui-0": ("netguard-system", {"app.kubernetes.io/name": "netguard-ui"}, "10.244.0.11"),
    "netguard-webhook-0": ("netguard-system", {"app.kubernetes.io/name": "netguard-webhook"}, "10.244.0.12"),
    "coredns-0": ("kube-system", {"k8s-app": "kube-dns"}, "10.244.0.2"),
    "prometheus-0": ("monitoring", {"app": "prometheus"}, "10.244.0.20"),
    "attacker-0": ("default", {"app": "attacker"}, "10.244.0.30"),
}
IP = {name.rsplit("-", 1)[0]: ip for name, (_, _, ip) in PODS.items()}
NEEDED = [  # (source, destination, port, protocol): what each component needs
    ("netguard-ui", "netguard-controller", 8080, "TCP"),
    ("prometheus", "netguard-controller", 8080, "TCP"),  # /metrics, from the monitoring namespace
    (NODE, "netguard-controller", 8080, "TCP"),  # an agent, on the host network
    ("netguard-controller", "coredns", 53, "UDP"),
    ("netguard-controller", APISERVER, 6443, "TCP"),
    ("netguard-ui", "coredns", 53, "UDP"),
    (APISERVER, "netguard-webhook", 8443, "TCP"),  # admission reviews
    ("netguard-webhook", APISERVER, 6443, "TCP"),  # --native-sidecar auto asks the API server's version
]
FORBIDDEN = [
    ("attacker", "netguard-controller", 8080, "TCP"),  # the map of who talks to whom
    ("attacker", "netguard-webhook", 8443, "TCP"),
    ("attacker", "netguard-ui", 8081, "TCP"),
    ("prometheus", "netguard-webhook", 8443, "TCP"),
    ("netguard-ui", "attacker", 80, "TCP"),
    ("netguard-ui", APISERVER, 6443, "TCP"),  # the UI has no business with the API server
    ("netguard-webhook", "attacker", 80, "TCP"),
    ("netguard-webhook", "coredns", 53, "UDP"),  # the webhook calls the API server alone, by address
    ("netguard-controller", "attacker", 80, "TCP"),
]


def _inventory(folder: Path) -> Path:
    items: list[dict] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": ns, "labels": {"kubernetes.io/metadata.name": ns}}} for ns in sorted({p[0] for p in PODS.values()})]  # fmt: skip
    items += [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
               "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}
              for name, ip in (("control-plane", APISERVER), ("node-1", NODE))]  # fmt: skip
    items += [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
               "spec": {"nodeName": "node-1", "containers": [{"name": "c"}]}, "status": {"podIP": ip}}
              for name, (ns, labels, ip) in PODS.items()]  # fmt: skip
    path = folder / "cluster.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return path


def _policies(folder: Path) -> Path:
    out = folder / "policies"
    out.mkdir()
    for doc in yaml.safe_load_all(POLICIES.read_text()):
        doc["metadata"]["namespace"] = "netguard-system"  # as kustomize's namespace transformer sets it
        (out / f"{doc['metadata']['name']}.yaml").write_text(yaml.safe_dump(doc))
    return out


def _flows(folder: Path, name: str, flows: list[tuple[str, str, int, str]]) -> Path:
    path = folder / name
    path.write_text("".join(json.dumps({"time": 1790000000 + i, "src_ip": IP.get(s, s), "src_port": 40000 + i,
                                        "dst_ip": IP.get(d, d), "dst_port": port, "protocol": proto}) + "\n"
                            for i, (s, d, port, proto) in enumerate(flows)))  # fmt: skip
    return path


def _policy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netguard", "policy", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("self")
    return folder, _inventory(folder), _policies(folder)


def test_what_each_component_needs_is_allowed(setup):
    folder, inventory, policies = setup
    flows = _flows(folder, "needed.jsonl", NEEDED)
    run = _policy("verify", "--inventory", str(inventory), "--flows", str(flows), "--policies", str(policies))
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("flow", FORBIDDEN, ids=lambda f: f"{f[0]}->{f[1]}:{f[2]}")
def test_anything_else_is_denied(setup, flow):
    folder, inventory, policies = setup
    flows = _flows(folder, f"{flow[0]}-{flow[1]}-{flow[2]}.jsonl", [flow])
    run = _policy("verify", "--inventory", str(inventory), "--flows", str(flows), "--policies", str(policies))
    assert run.returncode == 1, run.stdout + run.stderr


def test_connectivity_lists_only_the_needed_peers_of_netguards_components(setup):
    folder, inventory, policies = setup
    run = _policy("connectivity", "--inventory", str(inventory), "--policies", str(policies))
    assert run.returncode == 0, run.stderr
    ours = {line for line in run.stdout.splitlines() if "netguard-system/" in line}
    assert ours == {
        "172.18.0.0-172.18.255.255 => netguard-system/netguard-controller-0[Pod] : TCP 8080",
        "172.18.0.0-172.18.255.255 => netguard-system/netguard-ui-0[Pod] : TCP 8081",
        "172.18.0.0-172.18.255.255 => netguard-system/netguard-webhook-0[Pod] : TCP 8443",
        "monitoring/prometheus-0[Pod] => netguard-system/netguard-controller-0[Pod] : TCP 8080",
        "netguard-system/netguard-controller-0[Pod] => 172.18.0.0-172.18.255.255 : TCP 443,6443",
        "netguard-system/netguard-controller-0[Pod] => kube-system/coredns-0[Pod] : TCP 53,UDP 53",
        "netguard-system/netguard-ui-0[Pod] => kube-system/coredns-0[Pod] : TCP 53,UDP 53",
        "netguard-system/netguard-webhook-0[Pod] => 172.18.0.0-172.18.255.255 : TCP 443,6443",
        "netguard-system/netguard-ui-0[Pod] => netguard-system/netguard-controller-0[Pod] : TCP 8080",
    }, run.stdout
