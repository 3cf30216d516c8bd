"""The iptables init container's script, run for real in network namespaces this test makes.

Two namespaces joined by a veth pair: `client` and `pod` (nothing in the root namespace is touched).
In `pod`: the app on 9080, a stand-in for the WAF on 15080 that calls the app on 127.0.0.1:9080, and the
init container's exact script. Then, from `client`: the app's port reaches the WAF (which reaches the
app: no loop), and the probe port reaches the app directly. Needs root, `ip` and `iptables`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.injection.conftest import make_pod, stop_process
from waf.injection import inject_pod
from waf.injection.mutation import INIT

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(not (shutil.which("ip") and shutil.which("iptables")), reason="needs ip and iptables"),
]

SERVER = """
import sys, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
role, port = sys.argv[1], int(sys.argv[2])
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"app" if role == "app" else b"waf>" + urllib.request.urlopen("http://127.0.0.1:9080/").read()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
HTTPServer(("0.0.0.0", port), H).serve_forever()
"""

READY = "import socket\nfor p in (9080, 15080): socket.create_connection(('127.0.0.1', p), 1).close()"
POD_IP, CLIENT_IP = "10.213.0.2", "10.213.0.1"


def sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


@pytest.fixture
def namespaces():
    tag = f"ngi{os.getpid() % 100000}"
    pod, client = f"{tag}-pod", f"{tag}-cli"
    steps = [
        ["ip", "netns", "add", pod],
        ["ip", "netns", "add", client],
        [
            "ip",
            "link",
            "add",
            f"{tag}a",
            "netns",
            client,
            "type",
            "veth",
            "peer",
            "name",
            f"{tag}b",
            "netns",
            pod,
        ],
        ["ip", "-n", client, "addr", "add", f"{CLIENT_IP}/30", "dev", f"{tag}a"],
        ["ip", "-n", pod, "addr", "add", f"{POD_IP}/30", "dev", f"{tag}b"],
        ["ip", "-n", client, "link", "set", f"{tag}a", "up"],
        ["ip", "-n", pod, "link", "set", f"{tag}b", "up"],
        ["ip", "-n", pod, "link", "set", "lo", "up"],
    ]
    try:
        for step in steps:
            run = sh(*step)
            if run.returncode != 0:
                pytest.skip(f"cannot make network namespaces here: {' '.join(step)}: {run.stderr.strip()}")
        yield pod, client
    finally:
        for ns in (pod, client):
            sh("ip", "netns", "del", ns)


def get(client: str, url: str) -> str:
    code = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode(), end='')"
    run = subprocess.run(
        ["ip", "netns", "exec", client, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_the_init_container_redirects_the_app_port_to_the_waf_and_the_probe_port_to_the_app(
    namespaces, tmp_path
):
    pod_ns, client_ns = namespaces
    pod = make_pod()
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 9080}]
    pod["metadata"]["annotations"] = {"netguard.io/waf-redirect": "iptables"}
    init = inject_pod(pod).pod["spec"]["initContainers"][0]
    assert init["name"] == INIT and init["command"][:2] == ["/bin/sh", "-ec"]

    script = tmp_path / "server.py"
    script.write_text(SERVER)
    servers = [
        subprocess.Popen(
            ["ip", "netns", "exec", pod_ns, sys.executable, str(script), role, port],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for role, port in (("app", "9080"), ("waf", "15080"))
    ]
    try:
        deadline = time.monotonic() + 20
        while sh("ip", "netns", "exec", pod_ns, sys.executable, "-c", READY).returncode != 0:
            assert time.monotonic() < deadline, "the servers did not start"
            time.sleep(0.1)
        assert get(client_ns, f"http://{POD_IP}:9080/") == "app"  # before the init container: straight in

        for _ in range(2):  # a restarted init container must not add the rules twice
            run = sh("ip", "netns", "exec", pod_ns, *init["command"])
            assert run.returncode == 0, run.stderr
        rules = sh("ip", "netns", "exec", pod_ns, "iptables", "-t", "nat", "-S", "PREROUTING").stdout
        assert rules.count("REDIRECT") == 2, rules

        assert get(client_ns, f"http://{POD_IP}:9080/") == "waf>app"  # through the WAF, which reached the app
        assert get(client_ns, f"http://{POD_IP}:15021/") == "app"  # the probe port: around the WAF
        assert get(client_ns, f"http://{POD_IP}:15080/") == "waf>app"
    finally:
        for server in servers:
            stop_process(server)
