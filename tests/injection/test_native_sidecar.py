"""--native-sidecar auto asks the API server's version: here a stand-in that answers GET /version.

No API server can run on these machines (see tests/controller/standin.py); the injection needs one call,
so the stand-in is a few lines: an HTTP server on 127.0.0.1 answering /version as the API server does,
reached through a kubeconfig and the kubernetes client exactly as a cluster would be.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.injection.conftest import DATA, check_golden, validate_all_versions
from tests.injection.test_webhook import load, patched, post, running_webhook, tls  # noqa: F401 (fixture)
from waf.injection.cli import main
from waf.injection.cluster import ClusterError, VersionWatch, parse_version, server_version
from waf.injection.documents import split
from waf.injection.mutation import SIDECAR


class VersionStandIn:
    """GET /version answered like the API server (`minor` with a provider's `+`); counts the calls."""

    def __init__(self, minor: str, port: int = 0) -> None:
        self.calls = 0
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                standin.calls += 1
                body = json.dumps(
                    {"major": "1", "minor": minor, "gitVersion": f"v1.{minor.rstrip('+')}.2-gke.1"}
                ).encode()
                self.send_response(200 if self.path.rstrip("/") == "/version" else 404)  # the client asks /version/
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def api_server(minor: str, port: int = 0) -> Iterator[VersionStandIn]:
    standin = VersionStandIn(minor, port)
    try:
        yield standin
    finally:
        standin.close()


def kubeconfig(tmp_path: Path, port: int) -> Path:
    path = tmp_path / f"kubeconfig-{port}"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_version_is_read_as_providers_write_it():
    assert parse_version("1", "30+") == (1, 30) and parse_version("1", "29") == (1, 29)
    with pytest.raises(ClusterError):
        parse_version("", "x")


def test_server_version_goes_through_the_kubeconfig_and_says_why_when_it_cannot(tmp_path):
    with api_server("31+") as standin:
        assert server_version(str(kubeconfig(tmp_path, standin.port))) == (1, 31)
    with pytest.raises(ClusterError, match="/version failed"):
        server_version(str(kubeconfig(tmp_path, free_port())), timeout=2)
    with pytest.raises(ClusterError, match="no cluster configuration"):
        server_version(str(tmp_path / "missing"))


def test_inject_auto_makes_bank_of_anthos_a_native_sidecar_on_1_30_and_a_container_on_1_28(tmp_path, capsys):
    source = DATA / "bank-of-anthos" / "frontend.yaml"
    out = tmp_path / "out.yaml"
    with api_server("30+") as standin:
        config = kubeconfig(tmp_path, standin.port)
        assert main(["--native-sidecar", "auto", "--kubeconfig", str(config), "-f", str(source), "-o", str(out)]) == 0
    assert standin.calls == 1
    text = out.read_text()
    check_golden("bank-of-anthos-frontend.native.injected.yaml", text)
    deployment = split(text)[1].obj
    validate_all_versions(deployment)
    spec = deployment["spec"]["template"]["spec"]
    assert spec["initContainers"][0]["name"] == SIDECAR and spec["initContainers"][0]["restartPolicy"] == "Always"
    err = capsys.readouterr().err
    assert f"{source}: Kubernetes 1.30\n" in err and "as a native sidecar)" in err
    with api_server("28") as standin:
        config = kubeconfig(tmp_path, standin.port)
        assert main(["--native-sidecar", "auto", "--kubeconfig", str(config), "-f", str(source), "-o", str(out)]) == 0
    assert "initContainers" not in split(out.read_text())[1].obj["spec"]["template"]["spec"]
    config = kubeconfig(tmp_path, free_port())
    assert main(["--native-sidecar", "auto", "--kubeconfig", str(config), "-f", str(source), "-o", str(out)]) == 0
    assert "Kubernetes version unknown (GET http://127.0.0.1:" in capsys.readouterr().err
    assert "initContainers" not in split(out.read_text())[1].obj["spec"]["template"]["spec"]


def test_the_version_watch_asks_again_until_the_api_server_answers(tmp_path):
    port = free_port()
    watch = VersionWatch(str(kubeconfig(tmp_path, port)), retry=0.2, refresh=60).start()
    try:
        assert watch.version is None  # asked at start: nothing listens yet
        with api_server("33+", port):
            deadline = time.monotonic() + 10
            while watch.version is None:
                assert time.monotonic() < deadline, "the watch did not ask again"
                time.sleep(0.05)
        assert watch.version == (1, 33)
    finally:
        watch.stop()


def test_the_webhook_injects_a_container_until_the_api_server_answers_then_a_native_sidecar(tls, tmp_path):  # noqa: F811
    port = free_port()
    extra = ("--kubeconfig", str(kubeconfig(tmp_path, port)), "--version-retry-seconds", "0.3")
    log = tmp_path / "webhook.log"
    with running_webhook(tls, log, *extra) as client:
        sent = load("pod-takeover.json")
        pod = patched(sent, post(client, sent).json())
        assert "initContainers" not in pod["spec"]  # version unknown: a plain sidecar container works everywhere
        with api_server("33+", port):  # the API server is back (1.33: a named port may be a sidecar's)
            deadline = time.monotonic() + 15
            while "kubernetes-version" not in log.read_text().replace("kubernetes-version-unknown", ""):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        pod = patched(sent, post(client, sent).json())
    assert [c["name"] for c in pod["spec"]["initContainers"]] == [SIDECAR]
    assert pod["spec"]["initContainers"][0]["ports"][0]["name"] == "web"
    validate_all_versions(pod)
    events = [json.loads(line)["event"] for line in log.read_text().splitlines() if line.startswith("{")]
    assert events[:2] == ["start", "kubernetes-version-unknown"] and "kubernetes-version" in events
