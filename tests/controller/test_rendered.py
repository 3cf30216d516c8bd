"""Policies rendered ahead of their reads (policygen/controller/rendered.py): what the background thread
kept is exactly a fresh render, and the API's items are policy_json with the review state."""

from __future__ import annotations

import json

from policygen.approval import canonical_text
from policygen.controller.rendered import page_body, render
from policygen.review import policy_json
from tests.controller.conftest import AUTH, batch, bookinfo_records


def test_policies_rendered_in_the_background_equal_a_fresh_render(client):
    assert client.post("/api/v1/flows", json=batch(bookinfo_records()), headers=AUTH).status_code == 200
    controller = client.controller
    client.get("/api/v1/graph")  # synthesizes every policy: each is queued for rendering
    renderings = controller._renderings
    assert renderings.idle(60)
    live = controller.live()
    generated = live.page().items
    assert len(generated) > 3
    for g in generated:
        kept = renderings._cache.get(g.workload)
        assert kept is not None and kept.policy is g  # rendered before any read asked for it
        fresh = render(g)
        assert kept.item == fresh.item and kept.text == fresh.text == canonical_text(g.policy)
    served = {p["workload"]: p for p in client.get("/api/v1/policies").json()["policies"]}
    for g in generated:
        state = controller.review_state(g).to_json()
        assert served[g.workload.key] == {**policy_json(g, state["status"]), **state}
    assert client.post("/api/v1/policies/approve", json={"workload": generated[0].workload.key, "decision": "approved"},
                       headers=AUTH).status_code == 200
    one = client.get(f"/api/v1/workloads/{generated[0].workload.key}/policy").json()
    assert one["status"] == "approved" and one["yaml"] == served[generated[0].workload.key]["yaml"]


def test_a_page_body_is_json_of_the_items_and_metadata():
    items = [b'{"a":1}', b'{"b":"x"}']
    assert json.loads(page_body(items, ["w"], {"continue": "", "remainingItemCount": 0})) == {
        "policies": [{"a": 1}, {"b": "x"}], "warnings": ["w"], "metadata": {"continue": "", "remainingItemCount": 0}}
    assert json.loads(page_body([], [])) == {"policies": [], "warnings": []}


def test_the_yaml_of_an_item_is_the_policy_rendered_with_its_explanation(client):
    """The item's YAML (its rules worded once for both the comments and ingress_why/egress_why) is exactly
    render_policy's, also for a titled rule with more than 20 edges (the comments stop at 20)."""
    from dataclasses import replace

    from policygen.render import render_policy
    from policygen.review import policy_parts
    from policygen.synth import Justification

    assert client.post("/api/v1/flows", json=batch(bookinfo_records()), headers=AUTH).status_code == 200
    generated = client.controller.live().page().items
    edges = next(j.edges for g in generated for j in g.ingress_why if j.edges)
    many = Justification(generated[0].ingress_why[0].direction, edges * 25, "a titled rule")
    for g in [*generated, replace(generated[0], ingress_why=(many, *generated[0].ingress_why))]:
        item, canonical = policy_parts(g)
        assert item["yaml"] == render_policy(g) and item["yaml"].endswith(canonical)
    assert "... and " in policy_parts(replace(generated[0], ingress_why=(many,)))[0]["yaml"]
