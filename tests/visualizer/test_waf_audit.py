"""A real sidecar's audit log on the map: attacks through `netguard waf`, blocks read back by `netguard ui`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.visualizer.conftest import FLOWS, INVENTORY, free_port, running_netguard, running_ui, serve_in_thread

ATTACKS = [
    "/productpage?id=1%27%20OR%201%3D1--",
    "/productpage?q=%3Cscript%3Ealert(1)%3C/script%3E",
    "/static/..%2f..%2f..%2fetc%2fpasswd",
    "/productpage?cmd=%3Bcat%20/etc/passwd",
]


async def _app(scope, receive, send) -> None:
    """The app behind the sidecar: 200 to everything."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


@contextlib.contextmanager
def running_sidecar(upstream: str, audit_log: Path, env: dict[str, str]) -> Iterator[str]:
    """`netguard waf` as a real process with the environment injection gives it; always stopped."""
    port = free_port()
    with running_netguard("waf", "--listen", f"127.0.0.1:{port}", "--upstream", upstream, "--metrics-listen",
                          f"127.0.0.1:{free_port()}", "--audit-log", str(audit_log), port=port, env=env) as base:
        yield base


def attack_through_a_real_sidecar(audit_log: Path) -> list[str]:
    """Send the attacks and one ordinary request; returns the blocked request ids."""
    env = {
        "NETGUARD_WAF_POD_NAME": "productpage-v1-5d8c6b7f9c-x10ab",
        "NETGUARD_WAF_POD_NAMESPACE": "default",
        "NETGUARD_WAF_WORKLOAD": "Deployment/productpage-v1",
    }
    with serve_in_thread(_app) as app, running_sidecar(app, audit_log, env) as waf:
        ids = []
        for target in ATTACKS:
            r = httpx.get(waf + target, headers={"Host": "productpage:9080"}, timeout=10)
            assert r.status_code == 403, target
            ids.append(r.json()["request_id"])
        assert httpx.get(waf + "/productpage?u=normal", timeout=10).status_code == 200
    return ids


def test_blocks_of_a_real_sidecar_show_on_the_workload_it_protects(tmp_path):
    audit_log = tmp_path / "waf-audit.jsonl"
    ids = attack_through_a_real_sidecar(audit_log)
    with running_ui("--inventory", str(INVENTORY), "--flows", str(FLOWS), "--waf-log", str(audit_log)) as ui:
        waf = httpx.get(ui + "/ui/waf", timeout=10).json()
    target = waf["targets"]["default/productpage-v1"]
    assert target["blocked"] == len(ATTACKS) == waf["blocked"] and waf["unmatched"] == 0
    assert {r["request_id"] for r in target["recent"]} == set(ids)
    assert {"sqli", "xss"} <= set(target["categories"])
    assert target["rules"] and waf["top_rules"][0][1] >= 1
    assert all(r["pod"] == "productpage-v1-5d8c6b7f9c-x10ab" for r in target["recent"])
