"""The controller's write path: a batch committed but not yet answered is this replica's own, not another's."""

from __future__ import annotations

import json

from tests.controller.conftest import batch, bookinfo_records


def test_a_batch_between_its_commit_and_its_answer_is_not_taken_for_another_replicas(make_controller):
    """The duty thread's sync may run after the writer committed a batch and before the ingest answered it
    (Controller.committed): it must not take that batch for another replica's and drop the live review."""
    controller = make_controller(review_max_age=0.0)
    controller.ingest(json.dumps(batch(bookinfo_records()[:20])).encode())
    live = controller.live()
    body = json.dumps(batch(bookinfo_records()[20:40])).encode()
    prepared = controller.prepare(controller.parse(body), body)
    controller.store.write(prepared.write)  # committed; committed() not called yet
    controller.sync()
    assert controller.live() is live  # not dropped for a rebuild from the database
    controller.committed(prepared)
    assert sum(s.connections for s in live.edges.values()) == sum(e.connections for e in controller.store.edges())
