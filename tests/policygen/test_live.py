"""The live review (policygen/live.py): what it serves equals a review built from scratch, and an
inventory event marks only the workloads whose selectors changed and their peers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from netguard.flows import parse_record
from netguard.inventory import load_inventory
from netguard.selectors import Selector
from policygen.live import LiveReview
from policygen.review import build_review, policy_json
from policygen.synth import Synthesizer

DATA = Path(__file__).resolve().parent / "data"


def _bookinfo(*extra: Path):
    inventory = load_inventory([str(DATA / "bookinfo-cluster.yaml"), *map(str, extra)])
    flows = [parse_record(json.loads(line)) for line in (DATA / "bookinfo-flows.jsonl").read_text().splitlines()]
    from netguard.enrich import aggregate

    return inventory, aggregate([f for f in flows if f is not None], inventory).edges()


@pytest.mark.parametrize("admin", [False, True])
def test_the_live_review_serves_what_a_review_from_scratch_does(admin, tmp_path):
    extra = []
    if admin:  # the cluster's admin tiers decide some edges first
        from tests.policygen.test_admin_warnings import ADMIN

        extra.append(tmp_path / "admin.yaml")
        extra[0].write_text(ADMIN)
    inventory, edges = _bookinfo(*extra)
    live = LiveReview(inventory)
    half = len(edges) // 2
    live.add((e, True) for e in edges[:half])
    live.page()  # synthesized once with half the edges, then the rest arrives
    live.add((e, True) for e in edges[half:])
    review = build_review(inventory, edges)
    assert [policy_json(g, "pending") for g in live.page().items] == [policy_json(g, "pending") for g in review.generated]
    whole = review.graph_json()
    served = live.graph_json()
    assert [(e["source"], e["target"], e["key"], e["verdict"], e["candidate_verdict"]) for e in served["edges"]] == \
        [(e["source"], e["target"], e["key"], e["verdict"], e["candidate_verdict"]) for e in whole["edges"]]
    assert served["nodes"] == whole["nodes"]
    assert live.impact_json() == review.impact_json()
    if admin:
        assert any(e["verdict"] == "denied" for e in served["edges"])


def test_an_inventory_event_marks_the_workload_and_its_peers(monkeypatch):
    inventory, edges = _bookinfo()
    live = LiveReview(inventory)
    live.add((e, True) for e in edges)
    live.page()
    ratings = next(w for w in inventory.workloads if w.name == "ratings-v1")
    info = inventory.workloads[ratings]
    changed = replace(inventory, workloads={**inventory.workloads,
                                            ratings: replace(info, selector=Selector((("app", "ratings"), ("v", "2"))))})
    calls = []
    real = Synthesizer.policy_for
    monkeypatch.setattr(Synthesizer, "policy_for", lambda self, w, i, o: calls.append(w.name) or real(self, w, i, o))
    live.set_inventory(changed)
    items = {g.workload.name: g for g in live.page().items}
    peers = {e.src.workload.name for e in edges if e.dst.workload == ratings and e.src.workload} | \
            {e.dst.workload.name for e in edges if e.src.workload == ratings and e.dst.workload}
    assert set(calls) == {"ratings-v1"} | peers and len(calls) < len(items)
    assert any("v: \"2\"" in line or "v: '2'" in line for name in peers
               for line in policy_json(items[name], "pending")["yaml"].splitlines())
