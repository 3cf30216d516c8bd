"""learn -> monitor: a flow outside the baseline raises one alert per edge, stored, counted, POSTed to a webhook."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from policygen.controller.app import create_app
from tests.controller.conftest import AUTH, CLUSTER, batch, bookinfo_records

# details-v1 calling ratings-v1 directly: never seen while learning
LATERAL = {"time": 1790001000, "src_ip": "10.244.1.11", "src_port": 50000, "dst_ip": "10.244.1.12", "dst_port": 9080,
           "protocol": "TCP", "bytes": 300, "packets": 3, "node": "node-1"}


class Receiver:
    """A real HTTP receiver on 127.0.0.1 standing in for Alertmanager's POST /api/v2/alerts."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, list]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.posts.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v2/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _learn(make_controller, **kw):
    learner = make_controller(**kw)
    learner.ingest(json.dumps(batch(bookinfo_records())).encode())
    return learner


def test_a_new_edge_in_monitor_mode_raises_exactly_one_alert(make_controller, receiver):
    learner = _learn(make_controller)
    assert learner.store.counts()["alerts"] == 0
    learner.close()
    monitor = make_controller(db=learner.settings.db, namespaces={"default": "monitor"}, webhook_url=receiver.url)
    with TestClient(create_app(monitor)) as client:
        # baseline traffic again: no alert
        assert client.post("/api/v1/flows", json=batch(bookinfo_records()), headers=AUTH).status_code == 200
        assert client.get("/api/v1/alerts").json()["alerts"] == []
        # the lateral move, many times, over several batches mixed with baseline traffic
        for i in range(4):
            flows = [{**LATERAL, "src_port": 50000 + i * 10 + j} for j in range(5)] + bookinfo_records()[:10]
            assert client.post("/api/v1/flows", json=batch(flows), headers=AUTH).status_code == 200
        alerts = client.get("/api/v1/alerts").json()["alerts"]
        assert len(alerts) == 1
        alert = alerts[0]
        where = (alert["source"], alert["target"], alert["port"], alert["protocol"])
        assert where == ("default/details-v1", "default/ratings-v1", 9080, "TCP")
        assert alert["reasons"] == ["new-edge"] and alert["count"] == 20 and alert["mode"] == "monitor"
        metrics = client.get("/metrics").text
        assert 'netguard_controller_alerts_total{namespace="default",reason="new-edge"} 1.0' in metrics
        graph = client.get("/api/v1/graph").json()
        lateral = [e for e in graph["edges"] if e["source"] == "default/details-v1" and e["target"] == "default/ratings-v1"]
        assert len(lateral) == 1 and lateral[0]["baseline"] is False and lateral[0]["candidate_verdict"] == "denied"
        assert graph["modes"]["default"] == "monitor"
        # the monitored edge does not leak into the generated policies
        ratings = next(p for p in client.get("/api/v1/policies").json()["policies"] if p["workload"].endswith("/ratings-v1"))
        assert "details" not in ratings["yaml"].split("spec:")[1]
    monitor.webhook.close()  # drains what is queued
    monitor.webhook = None
    assert len(receiver.posts) == 1
    path, payload = receiver.posts[0]
    assert path == "/api/v2/alerts" and len(payload) == 1
    sent = payload[0]
    assert sent["labels"]["alertname"] == "NetguardLateralMovement"
    assert sent["labels"]["source"] == "default/details-v1" and sent["labels"]["destination"] == "default/ratings-v1"
    assert sent["labels"]["port"] == "9080/TCP" and sent["startsAt"].endswith("Z")
    assert "summary" in sent["annotations"]


def test_the_alert_survives_a_restart_and_is_not_raised_again(make_controller):
    learner = _learn(make_controller)
    learner.close()
    from policygen.controller.metrics import Metrics
    from policygen.controller.service import Controller, FileInventory
    from policygen.controller.settings import Settings
    from policygen.controller.store import open_store

    settings = Settings(db=learner.settings.db, no_auth=True, namespaces={"default": "monitor"}).validate()
    for expected_new in (1, 0):
        ctl = Controller(settings, open_store(settings.db), FileInventory([str(CLUSTER)]), Metrics())
        try:
            ctl.ingest(json.dumps(batch([LATERAL])).encode())
            new = ctl.metrics.alerts.labels(namespace="default", reason="new-edge")._value.get()
            assert new == expected_new
            assert len(ctl.store.alerts()) == 1
        finally:
            ctl.close()


def test_the_namespace_label_sets_the_mode_and_approved_policies_flag_denied_flows(make_controller, tmp_path: Path):
    docs = yaml.safe_load(CLUSTER.read_text())
    learner = _learn(make_controller)
    learner.approve("default/Deployment/ratings-v1", "approved")
    learner.close()
    for item in docs["items"]:
        if item["kind"] == "Namespace" and item["metadata"]["name"] == "default":
            item["metadata"]["labels"]["netguard.io/mode"] = "monitor"
    labelled = tmp_path / "labelled.yaml"
    labelled.write_text(yaml.safe_dump(docs))
    from policygen.controller.metrics import Metrics
    from policygen.controller.service import Controller, FileInventory
    from policygen.controller.settings import Settings
    from policygen.controller.store import open_store

    settings = Settings(db=learner.settings.db, no_auth=True).validate()  # default_mode learn: only the label says monitor
    ctl = Controller(settings, open_store(settings.db), FileInventory([str(labelled)]), Metrics())
    try:
        ctl.ingest(json.dumps(batch(bookinfo_records() + [LATERAL])).encode())
        alerts = ctl.store.alerts()
        assert len(alerts) == 1
        assert alerts[0]["reasons"] == ["new-edge", "denied"]
    finally:
        ctl.close()


def test_learn_mode_records_the_baseline_without_alerts(make_controller):
    ctl = _learn(make_controller)
    ctl.ingest(json.dumps(batch([LATERAL])).encode())
    assert ctl.store.alerts() == []
    edges = ctl.store.edges(baseline_only=True)
    assert any(str(e.src) == "default/details-v1" and str(e.dst) == "default/ratings-v1" for e in edges)


def test_an_approval_made_while_monitoring_is_used_for_the_next_batch(make_controller):
    learner = _learn(make_controller)
    learner.close()
    monitor = make_controller(db=learner.settings.db, namespaces={"default": "monitor"})
    # reviews-v2 -> ratings is in the baseline: no alert, and nothing is approved yet
    baseline_flow = next(r for r in bookinfo_records() if r["src_ip"] == "10.244.1.14")
    monitor.ingest(json.dumps(batch([baseline_flow, LATERAL])).encode())
    alerts = monitor.store.alerts()
    assert [(a["source"], a["reasons"], a["count"]) for a in alerts] == [("default/details-v1", ["new-edge"], 1)]
    monitor.approve("default/Deployment/ratings-v1", "approved")
    monitor.ingest(json.dumps(batch([baseline_flow, LATERAL])).encode())
    alerts = monitor.store.alerts()  # still one alert for the edge, now also denied by the approved policy
    assert [(a["source"], a["reasons"], a["count"]) for a in alerts] == [("default/details-v1", ["new-edge", "denied"], 2)]
