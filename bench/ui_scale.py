"""How `netguard ui` holds up on big clusters: API time and page layout time in headless Chromium.

For each size (default 500 and 2,000 workloads, 10 outgoing edges each, about 25 workloads per
namespace, 70% of edges inside the namespace) it writes a synthetic inventory and flow file,
starts a real `netguard ui` on a free loopback port, then measures:

  serve      seconds from start to the first healthy answer (reading flows, synthesis, review)
  api        GET /api/v1/graph, median of 5 (and its size)
  page       headless Chromium: navigation until the map is laid out and drawn (the default view,
             where a graph this big starts with one box per namespace)
  layout     the page's own layout + drawing time of that view (window.netguard.layoutMs)
  review     navigation until the review data (policies, diff, impact) has arrived too
  open one   opening one namespace (drill-down): the click until it is drawn again
  all        every namespace opened (every workload and edge drawn): layout + drawing time

Goal: page under 3 s at 2,000 workloads. Run: `.venv/bin/python bench/ui_scale.py [--sizes 500 2000]`.
Needs Debian's chromium (/usr/bin/chromium) and Playwright for Python (the dev extra).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.visualizer.conftest import CHROMIUM, CHROMIUM_ARGS, running_ui  # noqa: E402

PER_NAMESPACE = 25
EDGES_EACH = 10
PORTS = (8080, 9090, 5432, 6379, 443)


def synthesize_cluster(workloads: int, folder: Path, seed: int = 7) -> tuple[Path, Path]:
    """Pods owned by Deployments (through ReplicaSets), and one flow per edge, pod IP to pod IP."""
    rng = random.Random(seed)
    namespaces = max(1, workloads // PER_NAMESPACE)
    items: list[dict] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": f"team-{n:03d}", "labels": {"kubernetes.io/metadata.name": f"team-{n:03d}"}},
        }
        for n in range(namespaces)
    ]
    items.append(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "node-1"},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.11"}]},
        }
    )
    pods = []
    for i in range(workloads):
        ns = f"team-{i % namespaces:03d}"
        name = f"svc-{i:05d}"
        ip = f"10.{64 + i // 65000}.{(i // 250) % 256}.{i % 250 + 1}"
        pods.append((ns, name, ip))
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{name}-7c9d8f6b5-abcde",
                    "namespace": ns,
                    "labels": {"app": name, "tier": rng.choice(["web", "api", "data"]), "pod-template-hash": "7c9d8f6b5"},
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "ReplicaSet",
                            "name": f"{name}-7c9d8f6b5",
                            "controller": True,
                            "uid": f"u-{name}",
                        }
                    ],
                },
                "spec": {
                    "nodeName": "node-1",
                    "containers": [
                        {"name": "app", "image": "example", "ports": [{"containerPort": p, "protocol": "TCP"} for p in PORTS]}
                    ],
                },
                "status": {"podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.0.0.11", "phase": "Running"},
            }
        )
    by_ns: dict[str, list[int]] = {}
    for i, (ns, _, _) in enumerate(pods):
        by_ns.setdefault(ns, []).append(i)
    inventory = folder / f"cluster-{workloads}.json"
    inventory.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    flows = folder / f"flows-{workloads}.jsonl"
    t0 = 1_790_000_000
    with flows.open("w") as fh:
        for i, (ns, _, src_ip) in enumerate(pods):
            seen: set[tuple[int, int]] = set()
            while len(seen) < EDGES_EACH:
                pool = by_ns[ns] if rng.random() < 0.7 and len(by_ns[ns]) > EDGES_EACH else range(len(pods))
                j = rng.choice(list(pool))
                port = rng.choice(PORTS)
                if j == i or (j, port) in seen:
                    continue
                seen.add((j, port))
                dst_ip = pods[j][2]
                fh.write(
                    json.dumps(
                        {
                            "time": t0 + len(seen) + i,
                            "src_ip": src_ip,
                            "src_port": 40000 + len(seen),
                            "protocol": "TCP",
                            "bytes": 1000 + j,
                            "packets": 10,
                            "node": "node-1",
                            "dst_ip": dst_ip,
                            "dst_port": port,
                            "dst_pod_ip": dst_ip,
                        }
                    )
                    + "\n"
                )
    return inventory, flows


def measure(size: int, browser, folder: Path, shots: Path | None = None) -> dict:
    inventory, flows = synthesize_cluster(size, folder)
    started = time.perf_counter()
    with running_ui("--inventory", str(inventory), "--flows", str(flows)) as base:
        serve = time.perf_counter() - started
        times, body = [], b""
        with httpx.Client(timeout=120) as client:
            for _ in range(5):
                t = time.perf_counter()
                body = client.get(base + "/api/v1/graph").content
                times.append(time.perf_counter() - t)
        graph = json.loads(body)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        t = time.perf_counter()
        page.goto(base + "/")
        page.wait_for_function("window.netguard && window.netguard.ready", timeout=120_000)
        page_s = time.perf_counter() - t
        layout_ms = page.evaluate("window.netguard.layoutMs")
        page.wait_for_function("window.netguard.reviewReady", timeout=300_000)
        review_s = time.perf_counter() - t
        boxes = page.locator(".node").count()
        if shots:
            page.screenshot(path=str(shots / f"ui-{size}-namespaces.png"))
        one = page.locator(".node[data-kind=namespace]").first
        t = time.perf_counter()
        if one.count():
            page.evaluate("window.netguard.ready = false")
            one.click()
            page.wait_for_function("window.netguard.ready", timeout=120_000)
        open_one_s = time.perf_counter() - t
        if shots:
            page.screenshot(path=str(shots / f"ui-{size}-one-open.png"))
        page.evaluate("window.netguard.ready = false")
        t = time.perf_counter()
        page.click("#expand-all")
        page.wait_for_function("window.netguard.ready", timeout=300_000)
        all_s = time.perf_counter() - t
        all_layout_ms = page.evaluate("window.netguard.layoutMs")
        drawn_edges = page.locator(".edge-g").count()
        if shots:
            page.screenshot(path=str(shots / f"ui-{size}-all-open.png"))
        page.close()
    return {
        "workloads": graph["stats"]["workloads"],
        "edges": graph["stats"]["edges"],
        "namespaces": len(graph["namespaces"]),
        "serve_s": serve,
        "api_median_s": statistics.median(times),
        "api_bytes": len(body),
        "page_s": page_s,
        "layout_ms": layout_ms,
        "review_s": review_s,
        "boxes": boxes,
        "open_one_s": open_one_s,
        "all_s": all_s,
        "all_layout_ms": all_layout_ms,
        "all_edges_drawn": drawn_edges,
        "console_errors": len(errors),
    }


def report_line(row: dict) -> str:
    return " | ".join(
        [
            f"{row['workloads']:>6,} workloads {row['edges']:>7,} edges {row['namespaces']:>4} ns",
            f"serve {row['serve_s']:5.1f} s",
            f"api {row['api_median_s'] * 1000:6.0f} ms ({row['api_bytes'] / 1e6:4.1f} MB)",
            f"page {row['page_s']:5.2f} s (layout {row['layout_ms']:5.0f} ms, {row['boxes']} boxes)",
            f"review data {row['review_s']:5.1f} s",
            f"open one ns {row['open_one_s']:5.2f} s",
            f"all open {row['all_s']:5.2f} s (layout {row['all_layout_ms']:5.0f} ms, {row['all_edges_drawn']:,} lines)",
            f"console errors {row['console_errors']}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[500, 2000], help="workload counts (default 500 2000)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--screenshots", metavar="DIR", help="save a screenshot of each view here")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"ui_scale: {CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory(prefix="netguard-ui-bench-") as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for size in args.sizes:
                shots = Path(args.screenshots) if args.screenshots else None
                if shots:
                    shots.mkdir(parents=True, exist_ok=True)
                row = measure(size, browser, Path(tmp), shots)
                rows.append(row)
                print(report_line(row), flush=True)
        finally:
            browser.close()
    if args.json:
        print(json.dumps(rows, indent=2))
    goal = [r for r in rows if r["workloads"] >= 2000]
    if goal:
        verdict = "met" if all(r["page_s"] < 3.0 for r in goal) else "NOT met"
        print(f"goal (page under 3 s at 2,000 workloads): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
