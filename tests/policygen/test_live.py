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


def test_commits_and_other_reads_do_not_wait_behind_a_synthesis_and_a_superseded_one_is_not_kept(monkeypatch):
    """A synthesis runs outside the lock: while one workload's is stuck, a commit and another workload's
    read go through; the stuck one, marked again meanwhile, is synthesized again on the next read."""
    import threading

    inventory, edges = _bookinfo()
    live = LiveReview(inventory)
    ratings = next(e for e in edges if e.dst.workload and e.dst.workload.name == "ratings-v1")
    rest = [e for e in edges if e is not ratings]
    live.add((e, True) for e in rest)
    target = ratings.dst.workload
    other = next(e.src.workload for e in rest if e.src.workload and e.src.workload != target
                 and target not in (e.dst.workload,))
    entered, release = threading.Event(), threading.Event()
    real = Synthesizer.policy_for

    def slow(self, workload, ins, outs):
        if workload == target and not release.is_set():
            entered.set()
            assert release.wait(30)
        return real(self, workload, ins, outs)

    monkeypatch.setattr(Synthesizer, "policy_for", slow)
    stuck: list = []
    reader = threading.Thread(target=lambda: stuck.append(live.policy(target)))
    reader.start()
    assert entered.wait(30)
    done: list = []
    other_work = threading.Thread(target=lambda: (live.add([(ratings, True)]), done.append(live.policy(other))))
    other_work.start()
    other_work.join(30)
    assert not other_work.is_alive() and done[0] is not None  # did not wait for the stuck synthesis
    release.set()
    reader.join(30)
    assert stuck and all(ratings.src.workload.name not in line for j in stuck[0].ingress_why for line in j.lines)
    again = live.policy(target)  # the commit marked it while it was being synthesized: synthesized again
    assert again is not stuck[0]
    assert any(ratings.src.workload.name in line for j in again.ingress_why for line in j.lines)
    assert live.policy(target) is again


def test_a_new_inventory_is_prepared_outside_the_lock(monkeypatch):
    """What a new inventory gives (its synthesizer: about a second at 10,000 workloads) is made without the
    review's lock: a commit and a read go through meanwhile; then the change is marked as before."""
    import threading

    inventory, edges = _bookinfo()
    live = LiveReview(inventory)
    live.add((e, True) for e in edges[1:])
    reviews = next(w for w in inventory.workloads if w.name == "reviews-v1")
    before = live.policy(reviews)
    entered, release = threading.Event(), threading.Event()
    real = Synthesizer.__init__

    def slow(self, *args, **kw):
        entered.set()
        assert release.wait(30)
        real(self, *args, **kw)

    monkeypatch.setattr(Synthesizer, "__init__", slow)
    info = inventory.workloads[reviews]
    relabelled = replace(inventory, workloads={**inventory.workloads, reviews: replace(info, labels=(*info.labels, ("x", "y")))})
    handing = threading.Thread(target=live.set_inventory, args=(relabelled,))
    handing.start()
    assert entered.wait(30)
    done: list = []
    other = threading.Thread(target=lambda: (live.add([(edges[0], True)]), done.append(live.policy(reviews))))
    other.start()
    other.join(30)
    assert not other.is_alive() and done  # did not wait for the new inventory's synthesizer
    release.set()
    handing.join(30)
    assert live.inventory is relabelled and live.policy(reviews) is not before
