"""The pod cache from the Kubernetes API: a small fake API server on 127.0.0.1 serves list calls."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from netguard.model import Edge
from tests.agent.controller import free_port

CLUSTER = Path(__file__).parent.parent / "policygen" / "data" / "bookinfo-cluster.yaml"
RESOURCES = {"namespaces": "Namespace", "pods": "Pod", "services": "Service", "replicasets": "ReplicaSet",
             "deployments": "Deployment", "statefulsets": "StatefulSet", "daemonsets": "DaemonSet", "jobs": "Job"}


class FakeApi:
    def __init__(self, token: str) -> None:
        items = yaml.safe_load(CLUSTER.read_text())["items"]
        self.by_kind: dict[str, list] = {}
        for item in items:
            self.by_kind.setdefault(item["kind"], []).append({k: v for k, v in item.items() if k != "kind"})
        self.paths: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                api.paths.append(self.path)
                kind = RESOURCES.get(self.path.rsplit("/", 1)[-1])
                if self.headers.get("Authorization") != f"Bearer {token}":
                    status, body = 401, {"kind": "Status", "code": 401}
                elif kind is None:
                    status, body = 404, {"kind": "Status", "code": 404}
                else:
                    status, body = 200, {"kind": f"{kind}List", "apiVersion": "v1", "metadata": {},
                                         "items": api.by_kind.get(kind, [])}
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_agent_resolves_edges_with_a_pod_cache_listed_from_the_api(tmp_path):
    from scapy.layers.inet import IP, TCP
    from scapy.utils import wrpcap

    api = FakeApi("t0ken")
    try:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "lab",
            "clusters": [{"name": "lab", "cluster": {"server": f"http://127.0.0.1:{api.port}"}}],
            "users": [{"name": "agent", "user": {"token": "t0ken"}}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "agent"}}],
        }))
        pcap = tmp_path / "cap.pcap"
        wrpcap(str(pcap), [IP(src="10.244.1.10", dst="10.96.10.11") / TCP(sport=40000, dport=9080, flags="S")])
        edges = tmp_path / "edges.json"
        proc = subprocess.run([sys.executable, "-m", "netguard", "agent", "--source", "pcap", "--pcap", str(pcap), "--kube",
                               "--kubeconfig", str(kubeconfig), "--edges", str(edges)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "/api/v1/pods" in api.paths and "/apis/apps/v1/deployments" in api.paths
        result = json.loads(edges.read_text())
        assert [(e["src"], e["dst"], e["port"], e.get("via_service")) for e in result] == [
            ("w:default/Deployment/productpage-v1", "w:default/Deployment/details-v1", 9080, "default/details")]
        assert [Edge.from_record(r).to_record() for r in result] == result  # the one edge record
        # a wrong token: one clear line, exit 2
        kubeconfig.write_text(kubeconfig.read_text().replace("t0ken", "wrong"))
        proc = subprocess.run([sys.executable, "-m", "netguard", "agent", "--source", "pcap", "--pcap", str(pcap), "--kube",
                               "--kubeconfig", str(kubeconfig), "--edges", str(edges)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and "cannot list from the Kubernetes API" in proc.stderr
    finally:
        api.close()
