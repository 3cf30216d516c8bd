"""The lab runs an injected WAF sidecar for real: `netguard waf` in productpage's network namespace, in
front of the stand-in app on the app's moved port. An SQL injection from another pod through the
Service gets the sidecar's 403; a normal request reaches the app."""

from __future__ import annotations

import json
import os
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from netguard.inventory import iter_objects
from netguard.lab.plan import build_plan
from tests.lab.conftest import NETGUARD, leftovers, needs_lab

DEMO = Path(str(resources.files("netguard") / "data" / "demo" / "bookinfo-demo.yaml"))


@pytest.fixture(scope="module")
def injected(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("inject") / "bookinfo.injected.yaml"
    subprocess.run([*NETGUARD, "inject", "-f", str(DEMO), "-o", str(out)], check=True, capture_output=True)
    return out


def test_a_netguard_container_is_a_process_and_owns_its_ports(injected):
    plan = build_plan(iter_objects([str(injected)]), "p", 1)
    page = plan.pod("productpage-v1")
    assert [p.container for p in page.processes] == ["netguard-waf"]
    waf = page.processes[0]
    assert waf.argv[:2] == ["netguard", "waf"] and "--upstream" in waf.argv
    assert waf.env["NETGUARD_WAF_POD_NAME"] == page.name and waf.env["NETGUARD_WAF_POD_NAMESPACE"] == "default"
    served = {p.port: p.process for p in page.ports}
    assert served[9080] == "netguard-waf" and served[15081] == ""  # the app's moved port: the stand-in's
    svc = next(s for s in plan.services if s.name == "productpage")
    assert svc.target_port(svc.ports[0], page) == 9080  # the Service reaches the sidecar
    assert not plan.pod("details-v1").processes


def _get(netns: str, address: str, target: str) -> tuple[int, dict[str, str], bytes]:
    from netguard.lab.system import socket_in

    sock = socket_in(netns)
    try:
        sock.settimeout(5)
        sock.connect((address, 9080))
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: productpage\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@needs_lab
def test_injected_productpage_blocks_sql_injection_from_another_pod(injected):
    from netguard.lab import lab

    name = f"s{os.getpid() % 100000}"[:7]
    lab.down(name)
    pids: list[int] = []
    try:
        plan = lab.up([str(injected)], name)
        attacker = plan.pod("attacker")
        page = plan.pod("productpage-v1")
        svc = next(s for s in plan.services if s.name == "productpage").cluster_ip
        status, _, body = _get(attacker.netns, svc, "/productpage?u=normal")
        assert status == 200 and json.loads(body)["port"] == 15081  # through the sidecar to the app
        status, headers, body = _get(attacker.netns, svc, "/productpage?id=1%27%20OR%201=1--")
        verdict = json.loads(body)
        assert status == 403 and "sqli" in verdict["categories"]
        assert verdict["request_id"] == headers["x-request-id"]
        audit = lab.process_log(name, page, "netguard-waf").read_text()
        assert verdict["request_id"] in audit
        pids = [p["pid"] for p in lab.load(name)[1]["processes"]]
        assert pids and all(Path(f"/proc/{pid}").exists() for pid in pids)
        state_file = lab.state_dir(name) / "state.json"  # as if the state had lost the sidecar's pid:
        state = json.loads(state_file.read_text())  # `down` still finds it running in the pod's namespace
        state_file.write_text(json.dumps({**state, "processes": []}))
    finally:
        lab.down(name)
    assert not leftovers(name)
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]  # the sidecar was stopped
