"""The page in headless Chromium, served by a real `netguard ui` process."""

from __future__ import annotations

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
