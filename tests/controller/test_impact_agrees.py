"""Impact and the graph's verdicts come from one computation: on every edge they agree, in the
controller (new edges in monitor mode included) and in the UI's file mode."""

from __future__ import annotations

import json
from pathlib import Path

from policygen.pipeline import observe
from policygen.review import build_review
from tests.controller.conftest import CLUSTER, FLOWS, batch, bookinfo_records
from tests.controller.test_modes import LATERAL

POLICIES = Path(__file__).resolve().parents[1] / "visualizer" / "data"  # the cluster denies reviews-v3 -> ratings


def _check_agreement(graph: dict, impact: dict) -> None:
    for label, attr in (("current", "verdict"), ("candidate", "candidate_verdict")):
        denied = {(d["source"], d["target"], f"{d['port']}/{d['protocol']}") for d in impact[label]["denied"]}
        marked = {(e["source"], e["target"], e["key"]) for e in graph["edges"] if e[attr] == "denied"}
        assert denied == marked, label
        assert impact[label]["edges"] == len(graph["edges"])


def test_the_controllers_impact_counts_a_new_edge_the_map_marks_denied(make_controller):
    ctl = make_controller()
    ctl.ingest(json.dumps(batch(bookinfo_records())).encode())
    ctl.set_mode("default", "monitor")
    ctl.ingest(json.dumps(batch([LATERAL])).encode())  # details-v1 -> ratings-v1, outside the baseline
    graph, impact = ctl.graph_json(), ctl.impact_json()
    _check_agreement(graph, impact)
    new = [e for e in graph["edges"] if not e["baseline"]]
    assert len(new) == 1 and new[0]["candidate_verdict"] == "denied"
    assert any(d["source"] == "default/details-v1" and d["target"] == "default/ratings-v1" for d in impact["candidate"]["denied"])
    for ns in graph["namespaces"]:  # the per-namespace views agree as well
        _check_agreement(ctl.graph_json(ns), ctl.impact_json(ns))


def test_the_file_modes_impact_is_the_graphs_verdicts():
    from netguard.inventory import load_policies

    observed = observe([str(CLUSTER)], [str(FLOWS)])
    review = build_review(observed.inventory, observed.edges, load_policies([str(POLICIES)]))
    graph, impact = review.graph_json(), review.impact_json()
    _check_agreement(graph, impact)
    assert impact["current"]["denied"]  # the cluster's policies deny reviews-v3 -> ratings-v1 today
