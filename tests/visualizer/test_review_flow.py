"""The review flow end to end in Debian's Chromium, over a real controller process watching the stand-in
API server: approve → traffic changes the policy → pending again with the diff → approve → dry run →
apply → the policy is in the stand-in → a live update shows without a reload; and a real WAF
sidecar's blocks on the map."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.controller.conftest import CLUSTER, ControllerProcess
from tests.controller.standin import StandIn
from tests.visualizer.conftest import ARTIFACTS, FLOWS, ROOT, running_ui, screenshot
from tests.visualizer.test_waf_audit import attack_through_a_real_sidecar

pytestmark = pytest.mark.browser

ALICE = {"Authorization": "Bearer w-alice"}
AGENT = {"Authorization": "Bearer w-agent"}
REVIEWS = "default/Deployment/reviews-v1"
CARD = f'.policy[data-workload="{REVIEWS}"]'
# details-v1 starts calling reviews-v1 (reviews-v1's ingress changes); later ratings-v1 calls details-v1
NEW_CALLER = {"time": 1790000500, "src_ip": "10.244.1.11", "src_port": 41000, "dst_ip": "10.244.1.13", "dst_port": 9080,
              "protocol": "TCP", "bytes": 10, "packets": 1}  # fmt: skip
LATERAL = {"time": 1790000600, "src_ip": "10.244.1.12", "src_port": 41001, "dst_ip": "10.244.1.11", "dst_port": 9080,
           "protocol": "TCP", "bytes": 10, "packets": 1}  # fmt: skip
DOCS = ROOT / "docs"


@contextlib.contextmanager
def cluster_with_controller(tmp_path: Path) -> Iterator[tuple[StandIn, ControllerProcess]]:
    standin = StandIn(token="cluster-token")
    proc = None
    try:
        for obj in yaml.safe_load(CLUSTER.read_text())["items"]:
            if obj["kind"] != "NetworkPolicy":
                standin.put(obj)
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "standin",
            "clusters": [{"name": "standin", "cluster": {"server": standin.url}}],
            "users": [{"name": "u", "user": {"token": "cluster-token"}}],
            "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "u"}}]}))  # fmt: skip
        tokens = tmp_path / "tokens"
        tokens.write_text("w-agent name=agents\nw-alice name=alice\nr-ui name=ui role=read\n")
        proc = ControllerProcess(["--db", str(tmp_path / "c.db"), "--token-file", str(tokens), "--kube", "kubeconfig",
                                  "--kubeconfig", str(kubeconfig), "--read-auth"], tmp_path / "controller.log")  # fmt: skip
        yield standin, proc
    finally:
        if proc is not None:
            proc.stop()
        standin.close()


def post_flows(controller: str, records: list[dict]) -> None:
    r = httpx.post(controller + "/api/v1/flows", json={"agent": "node-1", "flows": records}, headers=AGENT, timeout=30)
    assert r.status_code == 200, r.text


def keep(page, locator: str, name: str, until: str = "") -> None:
    """A screenshot of one part of the page (from `locator` down to `until`) in the test artifacts, and
    in docs/ for the README with NETGUARD_REGEN_DOCS=1."""
    path = ARTIFACTS / name
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for _ in range(50):  # a live update may be redrawing that part this very moment
        top = page.locator(locator).bounding_box()
        bottom = page.locator(until).bounding_box() if until else top
        if top and bottom:
            break
        page.wait_for_timeout(100)
    assert top and bottom
    page.screenshot(path=str(path), full_page=True, clip={"x": top["x"], "y": top["y"], "width": top["width"],
                                                          "height": bottom["y"] + bottom["height"] - top["y"]})
    if os.environ.get("NETGUARD_REGEN_DOCS"):  # the README's pictures: refresh them on purpose, then review
        shutil.copy(path, DOCS / name)


def test_approve_change_reapprove_dry_run_apply_and_live_updates(page, tmp_path):
    waf_log = tmp_path / "waf-audit.jsonl"
    attack_through_a_real_sidecar(waf_log)
    ui_token = tmp_path / "ui-token"
    ui_token.write_text("r-ui\n")
    records = [json.loads(line) for line in FLOWS.read_text().splitlines() if line.strip()]
    with cluster_with_controller(tmp_path) as (standin, controller):
        post_flows(controller.url, records)
        with running_ui("--controller", controller.url, "--token-file", str(ui_token), "--waf-log", str(waf_log)) as ui:
            page.goto(ui + "/#/review/default/reviews-v1")
            page.wait_for_function("window.netguard && window.netguard.reviewReady && window.netguard.live", timeout=20_000)
            page.evaluate("window.__noReload = 1")
            card = page.locator(CARD)
            assert card.get_attribute("data-status") == "pending"

            # without a write token the UI's own (read-only) token is refused
            card.locator("button.approve").click()
            page.wait_for_function("document.querySelector('#toast').textContent.includes('may only read')")
            page.fill("#write-token", "w-alice")
            page.dispatch_event("#write-token", "change")
            card.locator("button.approve").click()
            page.wait_for_function(f"document.querySelector('{CARD}').dataset.status === 'approved'")
            assert "by alice" in card.locator("header").inner_text()

            # new traffic changes the policy: pending again, with the diff against the approved text (a live event)
            post_flows(controller.url, [NEW_CALLER])
            page.wait_for_function(f"document.querySelector('{CARD}').dataset.changed === '1'", timeout=20_000)
            assert card.get_attribute("data-status") == "pending"
            changed = card.locator(".changed-diff")
            assert changed.is_visible() and "approved by alice" in changed.inner_text().lower()
            assert "details" in changed.locator(".add").all_inner_texts().__str__()
            keep(page, CARD, "review-changed-since-approved.png", until=f"{CARD} .changed-diff")

            card.locator("button.approve").click()
            page.wait_for_function(f"document.querySelector('{CARD}').dataset.status === 'approved'")
            digest = card.get_attribute("data-digest")

            # protect mode, then the dry run says what the API server would do, per policy; then apply
            assert httpx.put(controller.url + "/api/v1/modes/default", json={"mode": "protect"}, headers=ALICE).status_code == 200
            page.click("#apply-dry-run")
            row = page.locator('#apply-table[data-kind="dry-run"] tr[data-ref="default/netguard-reviews-v1"]')
            row.wait_for()
            assert row.get_attribute("data-action") == "create"
            assert page.locator("#apply-table tr[data-ref]").count() == 1  # only the approved policy
            keep(page, "#apply-card", "review-dry-run.png")
            assert standin.get("NetworkPolicy", "default", "netguard-reviews-v1") is None  # a dry run changes nothing
            page.click("#apply-go")
            page.locator('#apply-table[data-kind="apply"] tr[data-action="applied"]').wait_for()
            stored = standin.get("NetworkPolicy", "default", "netguard-reviews-v1")
            assert stored is not None and stored["metadata"]["managedFields"][0]["manager"] == "netguard"
            policies = httpx.get(controller.url + "/api/v1/policies", headers=ALICE).json()["policies"]
            assert stored["spec"] == next(p for p in policies if p["workload"] == REVIEWS)["policy"]["spec"]
            page.wait_for_function("document.querySelectorAll('#audit-trail tr[data-action=apply]').length === 1")
            trail = page.locator("#audit-trail").inner_text()
            assert trail.count("alice") == 3 and digest[7:19] in trail  # approve, approve, apply
            keep(page, "#review-head", "review-applied-audit.png")

            # a live update: a lateral move in protect mode shows on the map without a reload
            page.click("#tab-map")
            before = page.locator(".edge-g").count()
            post_flows(controller.url, [LATERAL])
            page.wait_for_function(
                "document.querySelector('.edge-g[data-source=\"default/ratings-v1\"][data-target=\"default/details-v1\"]')",
                timeout=20_000)  # fmt: skip
            assert page.locator(".edge-g").count() == before + 1
            edge = page.locator('.edge-g[data-source="default/ratings-v1"][data-target="default/details-v1"] .edge')
            page.wait_for_function("window.netguard.state.alerts.length >= 1")
            assert "alert" in (edge.get_attribute("class") or "")
            assert page.evaluate("window.__noReload") == 1  # the same page: no reload happened

            # the real sidecar's blocks on the map, on the workload it protects
            node = page.locator('.node[data-id="default/productpage-v1"]')
            assert node.locator(".badge text").first.text_content() == "WAF 4"
            node.click()
            assert "top rules:" in page.locator("[data-testid=waf-rules]").inner_text()
            screenshot(page, "review-flow-live-map.png")
            keep(page, "#canvas", "map-live-alert-and-waf.png")
            assert [e for e in page.console.errors if "401" not in e and "403" not in e] == []
