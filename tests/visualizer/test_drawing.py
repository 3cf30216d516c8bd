"""What the page draws: labels that do not overlap, titles that do not run into counts, one state shown
as selected, YAML that is not cut off, and deep links to a policy under review."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.visualizer.conftest import open_map, running_ui, screenshot

pytestmark = pytest.mark.browser

OVERLAPS = """sel => {
  const boxes = [...document.querySelectorAll(sel)].map(e => e.getBBox());
  const out = [];
  boxes.forEach((a, i) => boxes.slice(i + 1).forEach(b => {
    if (a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height) out.push([a, b]);
  }));
  return out.length;
}"""


def busy_cluster(folder: Path) -> tuple[Path, Path]:
    """A hub that eight clients call on two ports each, and a namespace whose name is longer than its box."""
    pods = [("shop", "hub", "10.1.0.1")] + [("shop", f"client-{i}", f"10.1.0.{10 + i}") for i in range(8)]
    pods.append(("payments-processing-eu-west-1", "ledger", "10.1.1.1"))
    items = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in sorted({p[0] for p in pods})]
    items += [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
               "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}, {"containerPort": 9090}]}]},
               "status": {"podIP": ip}} for ns, name, ip in pods]  # fmt: skip
    inventory = folder / "cluster.json"
    inventory.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    flows = [{"time": 1790000000, "src_ip": ip, "src_port": 40000, "dst_ip": "10.1.0.1", "dst_port": port, "protocol": "TCP"}
             for _, name, ip in pods if name.startswith("client") for port in (8080, 9090)]  # fmt: skip
    flows.append({"time": 1790000000, "src_ip": "10.1.0.1", "src_port": 40000, "dst_ip": "10.1.1.1", "dst_port": 8080, "protocol": "TCP"})
    flow_file = folder / "flows.jsonl"
    flow_file.write_text("".join(json.dumps(f) + "\n" for f in flows))
    return inventory, flow_file


def test_edge_labels_do_not_overlap_and_titles_do_not_run_into_counts(page, tmp_path):
    inventory, flows = busy_cluster(tmp_path)
    with running_ui("--inventory", str(inventory), "--flows", str(flows)) as base:
        open_map(page, base)
        _check_labels_and_titles(page)


def test_bookinfo_labels_and_titles_are_clear_too(page, bookinfo_ui):
    open_map(page, bookinfo_ui)
    _check_labels_and_titles(page)


def _check_labels_and_titles(page) -> None:
    assert page.locator(".edge-label").count() >= 6
    assert page.evaluate(OVERLAPS, ".edge-label") == 0
    clear = page.evaluate("""() => [...document.querySelectorAll('.ns')].every(g => {
        const t = g.querySelector('.ns-title').getBBox(), s = g.querySelector('.ns-sub');
        return !s.textContent || t.x + t.width <= s.getBBox().x; })""")
    assert clear
    screenshot(page, "labels-and-titles.png")
    assert page.console.errors == []


def test_only_the_drawing_in_force_is_shown_selected(page, bookinfo_ui):
    open_map(page, bookinfo_ui)
    active = lambda: page.locator("#drawn-as button.active").evaluate_all("els => els.map(e => e.id)")  # noqa: E731
    assert active() == ["expand-all"]
    page.click("#collapse-all")
    assert active() == ["collapse-all"]
    page.click('.node[data-id="ns:default"]')
    assert active() == []  # one open, the others closed: neither
    page.click("#expand-all")
    assert active() == ["expand-all"]


def test_a_deep_link_opens_the_policy_and_its_yaml_is_not_cut_off(page, bookinfo_ui):
    page.goto(bookinfo_ui + "/#/review/default/reviews-v2")
    page.wait_for_function("window.netguard && window.netguard.reviewReady", timeout=20_000)
    card = page.locator('.policy[data-workload="default/Deployment/reviews-v2"]')
    assert card.locator(".body").is_visible()
    assert page.locator("#review-view").is_visible()
    cut = card.locator("pre.code").evaluate_all("els => els.filter(e => e.scrollWidth > e.clientWidth + 1).length")
    assert cut == 0
    page.click('.policy[data-workload="default/Deployment/ratings-v1"] header')
    assert page.evaluate("location.hash") == "#/review/default/ratings-v1"
    page.click("#tab-map")
    assert page.evaluate("location.hash") == "#/map"
    page.evaluate("location.hash = '#/review/default/details-v1'")
    page.wait_for_function("!document.querySelector('#review-view').classList.contains('hidden')")
    assert page.locator('.policy[data-workload="default/Deployment/details-v1"] .body').is_visible()
    screenshot(page, "review-deep-link.png")
    assert page.console.errors == []
