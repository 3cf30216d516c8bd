"""The injected sidecar's command, run for real: the contract between the injection and `netguard waf`.

The pod is injected, then the sidecar container's exact command runs on this machine (its 0.0.0.0
addresses narrowed to 127.0.0.1) in front of a tiny upstream standing in for the app on the port the
app was moved to. It skips where the `netguard waf` command is not part of the tree yet.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from netguard.cli import COMMANDS
from tests.injection.conftest import make_pod, stop_process
from waf.injection import inject_pod
from waf.injection.mutation import SIDECAR

pytestmark = pytest.mark.skipif(
    "waf" not in COMMANDS or importlib.util.find_spec(COMMANDS["waf"][0]) is None,
    reason="the `netguard waf` sidecar is not in this tree yet",
)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class _App(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = b"hello from the app\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def app_on(port: int):
    server = ThreadingHTTPServer(("127.0.0.1", port), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def test_the_injected_sidecar_guards_the_moved_app(tmp_path):
    listen, app_port, metrics = free_ports(3)
    pod = make_pod()
    pod["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": listen}]
    pod["metadata"]["annotations"] = {
        "netguard.io/waf-app-port": str(app_port),
        "netguard.io/waf-metrics-port": str(metrics),
        "netguard.io/waf-paranoia": "1",
    }
    sidecar = next(c for c in inject_pod(pod).pod["spec"]["containers"] if c["name"] == SIDECAR)
    command = [arg.replace("0.0.0.0:", "127.0.0.1:") for arg in sidecar["command"]]
    assert command[:2] == ["netguard", "waf"]
    log = tmp_path / "waf.log"
    with app_on(app_port), open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "netguard", *command[1:]], stdout=out, stderr=out)
        try:
            base = f"http://127.0.0.1:{listen}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            assert httpx.get(base + "/products?id=7", timeout=5).text == "hello from the app\n"
            attack = httpx.get(base + "/products", params={"id": "1' OR '1'='1' --"}, timeout=5)
            assert attack.status_code == 403
            scraped = httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=5).text
            assert "netguard_waf_requests_total" in scraped
        finally:
            stop_process(proc)
