"""Bank of Anthos' front end, whose only port (8080) has no name, injected and run in the lab.

`netguard inject` takes the port over (the app moves to 15081, told through its PORT variable); the lab
runs the WAF for real in the pod's network namespace, the stand-in app on the moved port. From another
pod, through the Service (which targets the number 8080): a normal request reaches the app through the
WAF, an SQL injection gets the WAF's 403. The same with the WAF as a native sidecar (an init container
with restartPolicy Always): the lab runs containers as processes, and starts a native sidecar before the
pods' apps, as the kubelet does; the test checks that order from the processes' start times.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from netguard.inventory import iter_objects
from netguard.lab.plan import build_plan
from tests.lab.conftest import NETGUARD, leftovers, needs_lab

DATA = Path(__file__).resolve().parents[1] / "injection" / "data"
FRONTEND = DATA / "bank-of-anthos" / "frontend.yaml"
CLIENT = DATA / "lab-client.yaml"


def injected(tmp_path: Path, native: str) -> Path:
    out = tmp_path / f"frontend.{native}.yaml"
    run = subprocess.run(
        [*NETGUARD, "inject", "--strict", "--native-sidecar", native, "-f", str(FRONTEND), "-o", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return out


@pytest.mark.parametrize("native", ["never", "always"])
def test_the_lab_plan_runs_the_waf_on_the_taken_port_and_the_app_behind_it(tmp_path, native):
    plan = build_plan(iter_objects([str(injected(tmp_path, native)), str(CLIENT)]), "p", 1)
    front = next(p for p in plan.pods if p.name.startswith("frontend-"))
    (waf,) = front.processes
    assert waf.container == "netguard-waf" and waf.native is (native == "always")
    served = {p.port: p.process for p in front.ports}
    assert served == {8080: "netguard-waf", 9102: "netguard-waf", 15081: ""}
    svc = next(s for s in plan.services if s.name == "frontend")
    assert svc.target_port(svc.ports[0], front) == 8080


def _get(netns: str, address: str, target: str) -> tuple[int, bytes]:
    from netguard.lab.system import socket_in

    sock = socket_in(netns)
    try:
        sock.settimeout(5)
        sock.connect((address, 80))
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: frontend\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _started(pid: int) -> int:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[19])


@needs_lab
@pytest.mark.parametrize("native", ["never", "always"])
def test_an_injected_unnamed_port_front_end_blocks_sqli_from_another_pod_and_answers_the_rest(tmp_path, native):
    from netguard.lab import lab

    name = f"f{native[0]}{os.getpid() % 10000}"[:7]
    lab.down(name)
    try:
        plan = lab.up([str(injected(tmp_path, native)), str(CLIENT)], name)
        client = plan.pod("client")
        svc = next(s for s in plan.services if s.name == "frontend").cluster_ip
        status, body = _get(client.netns, svc, "/home?account=1011")
        assert status == 200 and json.loads(body)["port"] == 15081  # through the WAF to the app's new port
        status, body = _get(client.netns, svc, "/login?user=x%27%20OR%20%271%27=%271")
        assert status == 403 and "sqli" in json.loads(body)["categories"]
        state = lab.load(name)[1]
        (waf,) = [p["pid"] for p in state["processes"] if p["container"] == "netguard-waf"]
        waf_first = _started(waf) <= _started(state["server_pid"])
        assert waf_first is (native == "always"), "a native sidecar starts before the app, a container after"
    finally:
        lab.down(name)
    assert not leftovers(name)
