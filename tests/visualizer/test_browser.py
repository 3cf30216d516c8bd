"""The page in headless Chromium, served by a real `netguard ui` process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.visualizer.conftest import BOOKINFO_WORKLOADS, open_map, screenshot

pytestmark = pytest.mark.browser


def test_page_loads_without_console_errors_and_shows_the_bookinfo_workloads_and_edges(page, bookinfo_ui):
    open_map(page, bookinfo_ui)
    names = page.locator(".node[data-kind=workload]").evaluate_all("els => els.map(e => e.dataset.id)")
    for name in BOOKINFO_WORKLOADS:
        assert f"default/{name}" in names
    assert "kube-system/coredns" in names
    assert page.locator(".edge-g").count() == 11  # every observed edge is drawn
    assert page.locator('.edge-g[data-source="default/productpage-v1"][data-target="default/details-v1"]').count() == 1
    assert page.locator('.edge-g[data-source="world:203.0.113.7"][data-target="default/productpage-v1"]').count() == 1
    assert page.locator(".ns[data-ns=default]").count() == 1
    screenshot(page, "bookinfo-map.png")
    assert page.console.errors == []


def click_edge(page, source: str, target: str) -> None:
    """A real mouse click on the middle of the drawn edge (not on its bounding box)."""
    hit = page.locator(f'.edge-g[data-source="{source}"][data-target="{target}"] .edge-hit')
    point = hit.evaluate("""p => { const l = p.getTotalLength(); const pt = p.getPointAtLength(l / 2);
        const m = p.getScreenCTM(); return {x: pt.x * m.a + pt.y * m.c + m.e, y: pt.x * m.b + pt.y * m.d + m.f}; }""")
    page.mouse.click(point["x"], point["y"])


def test_filtering_by_namespace_then_clicking_an_edge_shows_its_details(page, bookinfo_ui):
    open_map(page, bookinfo_ui)
    page.uncheck('#ns-list input[data-ns="kube-system"]')
    page.uncheck('#ns-list input[data-ns="(outside)"]')
    page.wait_for_function("document.querySelectorAll('.node[data-id=\"kube-system/coredns\"]').length === 0")
    assert page.locator(".node").count() == 6
    assert page.locator(".edge-g").count() == 6  # the edges inside default only
    click_edge(page, "default/productpage-v1", "default/details-v1")
    details = page.locator("#details")
    assert details.locator("[data-testid=details-title]").inner_text() == "default/productpage-v1 → default/details-v1"
    table = details.locator('table.edge-detail[data-key="9080/TCP"]').inner_text()
    assert "9080/TCP" in table and "default/details" in table  # port and the Service it went through
    assert "48,780" in table  # bytes
    assert "40" in table  # connections
    assert "2026-09-21" in table  # last seen
    assert "netguard-details-v1 ingress[0]" in details.inner_text()  # the rule this edge justifies
    screenshot(page, "bookinfo-edge-details.png")
    assert page.console.errors == []


def test_verdict_mode_port_label_and_search_filters(page, bookinfo_ui):
    open_map(page, bookinfo_ui)
    verdicts = lambda: set(page.locator(".edge-g").evaluate_all("els => els.map(e => e.dataset.verdict)"))  # noqa: E731
    assert verdicts() == {"not-covered"}  # bookinfo has no policies yet
    page.click('#verdict-mode button[data-mode="candidate"]')
    assert verdicts() == {"allowed"}  # the generated policies allow every observed flow
    page.fill("#port-filter", "53/UDP")
    page.wait_for_function("document.querySelectorAll('.edge-g').length === 3")
    assert set(page.locator(".edge-g").evaluate_all("els => els.map(e => e.dataset.target)")) == {"kube-system/coredns"}
    page.fill("#port-filter", "")
    page.fill("#label-filter", "app=ratings")
    page.wait_for_function("document.querySelectorAll('.edge-g').length === 2")
    shown = set(page.locator(".node").evaluate_all("els => els.map(e => e.dataset.id)"))
    assert shown == {"default/ratings-v1", "default/reviews-v2", "default/reviews-v3"}
    page.fill("#label-filter", "")
    page.fill("#search", "reviews-v2")
    page.wait_for_function("document.querySelectorAll('.node.match').length === 1")
    assert page.locator(".node.match").get_attribute("data-id") == "default/reviews-v2"
    assert page.console.errors == []


def test_clicking_a_workload_shows_its_labels_pods_and_policy(page, bookinfo_ui):
    open_map(page, bookinfo_ui)
    page.click('.node[data-id="default/reviews-v2"]')
    text = page.locator("#details").inner_text()
    assert "reviews-v2" in text and "Deployment in namespace default" in text
    assert "app=reviews" in text and "version=v2" in text
    assert "reviews-v2-" in text  # its pod
    assert "netguard-reviews-v2" in text and "pending" in text.lower()
    assert "egress[" in text and "ratings-v1" in text  # the rule that lets it call ratings, and why
    assert page.console.errors == []


def test_approving_in_the_review_view_changes_what_the_api_reports(page):
    from tests.visualizer.conftest import FLOWS, INVENTORY, running_ui

    with running_ui("--inventory", str(INVENTORY), "--flows", str(FLOWS)) as base:
        open_map(page, base)
        page.click("#tab-review")
        cards = page.locator("article.policy")
        assert cards.count() == 6
        card = page.locator('article.policy[data-workload="default/Deployment/reviews-v2"]')
        card.locator("header").click()  # open it: rules, flows, diff, YAML
        body = card.locator(".body").inner_text()
        assert "from Deployment default/productpage-v1 on 9080/TCP" in body
        assert "+kind: NetworkPolicy" in body  # the diff against the cluster (added)
        card.locator("button.approve").click()
        page.wait_for_function("document.querySelector('#count-approved').textContent === '1'")
        page.locator('article.policy[data-workload="default/Deployment/ratings-v1"] button.reject').click()
        page.wait_for_function("document.querySelector('#count-rejected').textContent === '1'")
        status = {p["workload"]: p["status"] for p in httpx.get(base + "/api/v1/policies").json()["policies"]}
        assert status["default/Deployment/reviews-v2"] == "approved"
        assert status["default/Deployment/ratings-v1"] == "rejected"
        assert status["default/Deployment/details-v1"] == "pending"
        approved_card = page.locator('article.policy[data-workload="default/Deployment/reviews-v2"]')
        assert approved_card.get_attribute("data-status") == "approved"
        page.click('#status-filter button[data-status="pending"]')
        assert page.locator("article.policy").count() == 4
        page.click('#status-filter button[data-status="all"]')
        screenshot(page, "bookinfo-review.png")
        with page.expect_download() as info:
            page.click("#download-approved")
        import zipfile

        names = zipfile.ZipFile(info.value.path()).namelist()
        assert "netguard-policies/default/reviews-v2.yaml" in names
        assert "netguard-policies/default/ratings-v1.yaml" not in names
        assert page.console.errors == []


def test_controller_mode_page_shows_the_controllers_graph_and_waf_blocks(page, tmp_path):
    import json

    from policygen.pipeline import observe
    from policygen.review import build_review
    from tests.visualizer.conftest import FLOWS, INVENTORY, running_ui, serve_in_thread
    from tests.visualizer.test_api import fake_controller

    observed = observe([INVENTORY], [FLOWS])
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    waf_log = tmp_path / "waf.jsonl"
    waf_log.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {
                    "time": 1790000100,
                    "request_id": "r1",
                    "blocked": True,
                    "categories": ["sqli"],
                    "path": "/productpage?u=1'or'1'='1",
                    "client": "203.0.113.7",
                    "host": "productpage.default.svc.cluster.local:9080",
                },
                {
                    "time": 1790000200,
                    "request_id": "r2",
                    "blocked": True,
                    "categories": ["xss"],
                    "path": "/login?next=<script>",
                    "client": "203.0.113.7",
                    "workload": "default/Deployment/productpage-v1",
                },
            ]
        )
        + "\n"
    )
    alerts = [
        {
            "id": 1,
            "source": "default/reviews-v2",
            "target": "default/ratings-v1",
            "port": 9080,
            "protocol": "TCP",
            "namespace": "default",
            "mode": "monitor",
            "reasons": ["new-edge"],
            "first_seen": 1790000300.0,
            "last_seen": 1790000400.0,
            "count": 3,
        }
    ]
    review = build_review(observed.inventory, observed.edges)
    with (
        serve_in_thread(fake_controller(review, "t0ken", alerts)) as controller,
        running_ui("--controller", controller, "--token-file", str(token), "--waf-log", str(waf_log)) as base,
    ):
        open_map(page, base)
        assert "controller" in page.locator("#source").inner_text()
        assert page.locator(".node[data-kind=workload]").count() == 7
        node = page.locator('.node[data-id="default/productpage-v1"]')
        assert "waf" in node.get_attribute("class")
        assert node.locator(".badge text").text_content() == "WAF 2"
        node.click()
        text = page.locator("#details").inner_text()
        assert "WAF BLOCKS (2)" in text.upper() and "sqli: 1" in text and "xss: 1" in text
        alerted = page.locator('.edge-g[data-source="default/reviews-v2"][data-target="default/ratings-v1"] .edge')
        assert "alert" in alerted.get_attribute("class")
        assert page.locator('.node[data-id="default/ratings-v1"] .badge text').text_content() == "! 1"
        assert page.locator('.ns[data-ns="default"] .ns-title').text_content().startswith("default · monitor mode")
        click_edge(page, "default/reviews-v2", "default/ratings-v1")
        assert "no: seen after learning" in page.locator("#details").inner_text()
        page.click('.node[data-id="default/ratings-v1"]')
        assert (
            "Alert: a connection outside the learned baseline — default/reviews-v2 → default/ratings-v1 on 9080/TCP"
            in page.locator("#details").inner_text()
        )
        screenshot(page, "controller-mode-waf.png")
        assert page.console.errors == []


def test_a_big_graph_starts_one_box_per_namespace_and_a_click_opens_one(page, tmp_path):
    from bench.ui_scale import synthesize_cluster
    from tests.visualizer.conftest import running_ui

    inventory, flows = synthesize_cluster(400, tmp_path)
    with running_ui("--inventory", str(inventory), "--flows", str(flows)) as base:
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url.removeprefix(base)))
        open_map(page, base)
        assert page.locator(".node[data-kind=namespace]").count() == 16
        assert page.locator(".node[data-kind=workload]").count() == 0
        # the review pages through the namespaces' policies: the first 300 (12 namespaces), then on demand
        assert not [u for u in asked if u.split("?")[0] in ("/api/v1/policies", "/api/v1/policies/diff", "/api/v1/policies/impact")]
        assert "/api/v1/namespaces/team-000/policies?limit=100" in asked
        page.click("#tab-review")
        assert page.locator(".policy").count() == 300
        assert not [u for u in asked if u.startswith("/api/v1/namespaces/team-015/")]
        page.click("#review-more")
        page.wait_for_function("document.querySelectorAll('.policy').length === 400")
        assert [u for u in asked if u.startswith("/api/v1/namespaces/team-015/policies?limit=")]
        page.click("#tab-map")
        page.click('.node[data-id="ns:team-003"]')
        page.wait_for_function("document.querySelectorAll('.node[data-kind=workload]').length === 25")
        assert page.locator(".node[data-kind=namespace]").count() == 15
        assert page.locator('.ns[data-ns="team-003"]').count() == 1
        page.click('.node[data-id="team-003/svc-00003"]')
        assert page.locator(".edge-g.hl").count() > 0  # its lines stand out
        screenshot(page, "big-drill-down.png")
        page.click('.ns[data-ns="team-003"] .ns-title')  # close it again
        page.wait_for_function("document.querySelectorAll('.node[data-kind=workload]').length === 0")
        assert page.console.errors == []


def test_an_edge_the_current_policies_deny_is_red_and_listed_in_the_review(page):
    from tests.visualizer.conftest import FLOWS, INVENTORY, running_ui

    policies = Path(__file__).parent / "data"
    with running_ui("--inventory", str(INVENTORY), "--flows", str(FLOWS), "--policies", str(policies)) as base:
        open_map(page, base)
        edge = page.locator('.edge-g[data-source="default/reviews-v3"][data-target="default/ratings-v1"]')
        assert edge.get_attribute("data-verdict") == "denied"
        assert "denied" in edge.locator(".edge").get_attribute("class")
        allowed = page.locator('.edge-g[data-source="default/reviews-v2"][data-target="default/ratings-v1"]')
        assert allowed.get_attribute("data-verdict") == "allowed"
        page.click('#verdict-mode button[data-mode="candidate"]')
        assert edge.get_attribute("data-verdict") == "allowed"  # the generated ratings policy adds reviews-v3
        page.click("#tab-review")
        assert "default/reviews-v3 → default/ratings-v1" in page.locator("#current-denied").inner_text()
        assert "default/ratings-lockdown" in page.locator("#review-head").inner_text()
        assert page.locator("#impact-denied").inner_text() == "0"
        screenshot(page, "bookinfo-review-denied-today.png")
        assert page.console.errors == []


def test_the_page_downloads_server_side_pictures(page, bookinfo_ui):
    import shutil

    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is missing (apt-get install graphviz)")
    open_map(page, bookinfo_ui)
    page.select_option("#export-format", "png")
    with page.expect_download() as info:
        page.click("#export-link")
    assert info.value.suggested_filename == "netguard-graph.png"
    assert Path(info.value.path()).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    page.click('#verdict-mode button[data-mode="candidate"]')
    page.select_option("#export-format", "svg")
    assert page.locator("#export-link").get_attribute("href") == "/ui/export.svg?verdict=candidate"
    with page.expect_download() as info:
        page.click("#export-link")
    from tests.visualizer.test_export import svg_texts

    assert "productpage-v1" in svg_texts(Path(info.value.path()).read_bytes())  # Graphviz writes - as &#45;
    assert page.console.errors == []
