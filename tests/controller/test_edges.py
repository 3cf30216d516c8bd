"""Agents ship edges, not connections: an interval's flows aggregated on the node (the core's Enricher,
the one Edge record) give the controller the same graph, policies and alerts as the raw flows did."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from netguard.agent.metrics import Metrics
from netguard.agent.ship import Kept
from netguard.agent.sink import EdgeBatcher, Sink
from netguard.flows import parse_native
from netguard.inventory import load_inventory
from policygen.controller.app import create_app
from tests.agent.controller import FakeController
from tests.controller.conftest import AUTH, CLUSTER, batch, bookinfo_records
from tests.controller.test_modes import LATERAL


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _edges(records: list[dict], interval: float = 10.0) -> tuple[list[dict], EdgeBatcher]:
    shipper, clock = Kept(), Clock()  # the real shipper is tested in tests/agent/test_ship.py
    batcher = EdgeBatcher(load_inventory([CLUSTER]), shipper, interval=interval, clock=clock)
    sink = Sink(Metrics(), batcher=batcher)
    for record in records:
        sink.emit(parse_native(record), "test")
        sink.tick()  # the interval has not passed: nothing shipped yet
    assert shipper.records == [] and batcher.intervals == 0
    clock.now += interval
    sink.tick()
    return shipper.records, batcher


def test_an_interval_of_flows_ships_as_one_record_per_edge_and_the_controller_agrees(make_controller):
    records = bookinfo_records()
    edges, batcher = _edges(records)
    assert 0 < len(edges) < len(records) / 10 and batcher.intervals == 1
    assert sum(e["connections"] for e in edges) == len(records)
    from_edges, from_flows = make_controller(), make_controller()
    with TestClient(create_app(from_edges)) as client:
        answer = client.post("/api/v1/edges", json={"agent": "node-1", "edges": edges}, headers=AUTH)
        assert answer.status_code == 200 and answer.json() == {"accepted": len(edges), "connections": len(records)}
    from_flows.ingest(json.dumps(batch(records)).encode())
    assert from_edges.policies_json() == from_flows.policies_json()
    assert [e.to_record() for e in from_edges.store.edges()] == [e.to_record() for e in from_flows.store.edges()]
    # durable like a flow batch: kept raw, and a rebuild of the baseline reads it back
    assert from_edges.store.counts()["batches"] == 1
    assert from_edges.rebuild_baseline()["edges"] == len(from_flows.store.edges())
    assert [e.to_record() for e in from_edges.store.edges()] == [e.to_record() for e in from_flows.store.edges()]


def test_edges_are_authenticated_validated_whole_and_alert_like_flows(make_controller):
    learner = make_controller()
    learner.ingest(json.dumps(batch(bookinfo_records())).encode())
    learner.close()
    monitor = make_controller(db=learner.settings.db, namespaces={"default": "monitor"})
    edges, _ = _edges([LATERAL, {**LATERAL, "src_port": 50001}])
    body = {"agent": "node-1", "edges": edges}
    with TestClient(create_app(monitor)) as client:
        assert client.post("/api/v1/edges", json=body).status_code == 401
        assert client.post("/api/v1/edges", json=body, headers={"Authorization": "Bearer nope"}).status_code == 403
        bad = {"agent": "node-1", "edges": [edges[0], {**edges[0], "port": 70000}]}
        answer = client.post("/api/v1/edges", json=bad, headers=AUTH)
        assert answer.status_code == 422 and answer.json()["detail"].startswith("edges[1]: port")
        missing = {"agent": "node-1", "edges": [{k: v for k, v in edges[0].items() if k != "dst"}]}
        assert client.post("/api/v1/edges", json=missing, headers=AUTH).json()["detail"] == "edges[0]: dst: missing"
        assert monitor.store.counts()["batches"] == 1  # the learner's: nothing of a refused batch stored
        assert client.post("/api/v1/edges", json=body, headers=AUTH).status_code == 200
        alerts = client.get("/api/v1/alerts").json()["alerts"]
    assert [(a["source"], a["target"], a["count"], a["reasons"]) for a in alerts] == [
        ("default/details-v1", "default/ratings-v1", 2, ["new-edge"])]


def test_the_agent_ships_edges_through_the_real_shipper():
    from netguard.agent.ship import Shipper

    with FakeController() as controller:
        shipper = Shipper(controller.url, "s3cret", "node-7", Metrics(), interval=30.0, kind="edges")
        batcher = EdgeBatcher(load_inventory([CLUSTER]), shipper, interval=0.0)
        for record in bookinfo_records()[:50]:
            batcher.add(parse_native(record))
        shipped = batcher.flush()
        assert shipper.close(10.0) == 0  # flushed: nothing left behind
    assert [b["agent"] for b in controller.batches] == ["node-7"]
    assert len(controller.batches[0]["edges"]) == shipped and sum(e["connections"] for e in controller.batches[0]["edges"]) == 50
