"""Modes set at runtime: PUT/DELETE /api/v1/modes/{namespace}, GET /api/v1/modes.

Stored (they survive a restart), over the config, under the Namespace label; a flow is judged by the
mode in force when it is ingested.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import yaml
from fastapi.testclient import TestClient

from policygen.controller.app import create_app
from policygen.controller.store import SCHEMA_VERSION, open_store
from tests.controller.conftest import AUTH, CLUSTER, batch, bookinfo_records
from tests.controller.test_modes import LATERAL


def _modes(client) -> dict[str, dict]:
    return {m["namespace"]: m for m in client.get("/api/v1/modes").json()["modes"]}


def test_writes_need_a_token_and_a_bad_mode_is_named(client):
    assert client.put("/api/v1/modes/default", json={"mode": "monitor"}).status_code == 401
    assert client.put("/api/v1/modes/default", json={"mode": "monitor"},
                      headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.delete("/api/v1/modes/default").status_code == 401
    bad = client.put("/api/v1/modes/default", json={"mode": "enforce"}, headers=AUTH)
    assert bad.status_code == 422 and "'enforce'" in bad.json()["detail"]
    assert client.put("/api/v1/modes/default", json={}, headers=AUTH).status_code == 422
    assert client.put("/api/v1/modes/Not_A_Namespace", json={"mode": "learn"}, headers=AUTH).status_code == 422
    assert _modes(client)["default"] == {"namespace": "default", "mode": "learn", "source": "default"}
    assert client.controller.store.modes() == {}


def test_switched_to_monitor_at_runtime_a_new_edge_raises_exactly_one_alert(client):
    assert client.post("/api/v1/flows", json=batch(bookinfo_records()), headers=AUTH).status_code == 200
    answer = client.put("/api/v1/modes/default", json={"mode": "monitor"}, headers=AUTH)
    assert answer.status_code == 200
    assert answer.json() == {"namespace": "default", "mode": "monitor", "requested": "monitor", "source": "api"}
    assert client.get("/api/v1/graph").json()["modes"]["default"] == "monitor"
    # right after the switch: baseline traffic stays quiet, the lateral move raises one alert however often it comes
    assert client.post("/api/v1/flows", json=batch(bookinfo_records()[:10] + [LATERAL]), headers=AUTH).status_code == 200
    for i in range(3):
        flows = [{**LATERAL, "src_port": 51000 + i}] + bookinfo_records()[:5]
        assert client.post("/api/v1/flows", json=batch(flows), headers=AUTH).status_code == 200
    alerts = client.get("/api/v1/alerts").json()["alerts"]
    assert [(a["source"], a["target"], a["mode"], a["reasons"], a["count"]) for a in alerts] == [
        ("default/details-v1", "default/ratings-v1", "monitor", ["new-edge"], 4)]
    metrics = client.get("/metrics").text
    assert 'netguard_controller_alerts_total{namespace="default",reason="new-edge"} 1.0' in metrics


def test_a_flow_is_judged_by_the_mode_when_it_is_ingested(client):
    client.post("/api/v1/flows", json=batch(bookinfo_records()), headers=AUTH)
    client.put("/api/v1/modes/default", json={"mode": "monitor"}, headers=AUTH)
    client.put("/api/v1/modes/default", json={"mode": "learn"}, headers=AUTH)
    client.post("/api/v1/flows", json=batch([LATERAL]), headers=AUTH)  # learned, not alerted
    client.put("/api/v1/modes/default", json={"mode": "monitor"}, headers=AUTH)
    client.post("/api/v1/flows", json=batch([LATERAL]), headers=AUTH)  # now in the baseline
    assert client.get("/api/v1/alerts").json()["alerts"] == []


def test_a_mode_set_through_the_api_survives_a_restart(controller_process, tmp_path, token_file):
    db = tmp_path / "netguard.db"
    args = ["--db", str(db), "--token-file", str(token_file), "--inventory", str(CLUSTER)]
    ctl = controller_process(*args)
    headers = {"Authorization": "Bearer agent-token-1"}
    assert httpx.post(ctl.url + "/api/v1/flows", json=batch(bookinfo_records()), headers=headers).status_code == 200
    answer = httpx.put(ctl.url + "/api/v1/modes/default", json={"mode": "monitor"}, headers=headers)
    assert answer.status_code == 200 and answer.json()["source"] == "api"
    ctl.stop()
    again = controller_process(*args)
    listed = {m["namespace"]: m for m in httpx.get(again.url + "/api/v1/modes").json()["modes"]}
    assert listed["default"] == {"namespace": "default", "mode": "monitor", "requested": "monitor", "source": "api"}
    assert httpx.post(again.url + "/api/v1/flows", json=batch([LATERAL]), headers=headers).status_code == 200
    alerts = httpx.get(again.url + "/api/v1/alerts").json()["alerts"]
    assert len(alerts) == 1 and alerts[0]["mode"] == "monitor"


def test_the_api_mode_wins_over_the_config_and_delete_restores_it(make_controller):
    ctl = make_controller(namespaces={"default": "protect"})
    with TestClient(create_app(ctl)) as client:
        assert _modes(client)["default"] == {"namespace": "default", "mode": "protect", "source": "config"}
        answer = client.put("/api/v1/modes/default", json={"mode": "monitor"}, headers=AUTH).json()
        assert answer == {"namespace": "default", "mode": "monitor", "requested": "monitor", "source": "api"}
        assert client.get("/api/v1/graph").json()["modes"]["default"] == "monitor"
        gone = client.delete("/api/v1/modes/default", headers=AUTH)
        assert gone.status_code == 200
        assert gone.json() == {"namespace": "default", "mode": "protect", "source": "config", "removed": True}
        assert _modes(client)["default"] == {"namespace": "default", "mode": "protect", "source": "config"}
        assert client.get("/api/v1/graph").json()["modes"]["default"] == "protect"
        assert client.delete("/api/v1/modes/default", headers=AUTH).json()["removed"] is False
        # a namespace only the API knows is listed too
        client.put("/api/v1/modes/payments", json={"mode": "protect"}, headers=AUTH)
        assert _modes(client)["payments"]["source"] == "api"
    assert ctl.store.modes() == {"payments": "protect"}


def test_the_namespace_label_wins_over_the_api(make_controller, tmp_path: Path):
    docs = yaml.safe_load(CLUSTER.read_text())
    for item in docs["items"]:
        if item["kind"] == "Namespace" and item["metadata"]["name"] == "default":
            item["metadata"]["labels"]["netguard.io/mode"] = "learn"
    labelled = tmp_path / "labelled.yaml"
    labelled.write_text(yaml.safe_dump(docs))
    ctl = make_controller(inventory=[str(labelled)])
    with TestClient(create_app(ctl)) as client:
        client.post("/api/v1/flows", json=batch(bookinfo_records()), headers=AUTH)
        answer = client.put("/api/v1/modes/default", json={"mode": "monitor"}, headers=AUTH)
        assert answer.status_code == 200
        assert answer.json() == {"namespace": "default", "mode": "learn", "requested": "monitor", "source": "label"}
        client.post("/api/v1/flows", json=batch([LATERAL]), headers=AUTH)
        assert client.get("/api/v1/alerts").json()["alerts"] == []  # still learning
        assert client.get("/api/v1/graph").json()["modes"]["default"] == "learn"
        assert _modes(client)["default"]["source"] == "label"


def test_a_version_1_store_is_migrated(tmp_path: Path):
    db = tmp_path / "old.db"
    store = open_store(str(db))
    store.close()
    with sqlite3.connect(db) as conn:  # as netguard before the modes table wrote it
        conn.execute("DROP TABLE modes")
        conn.execute("ALTER TABLE edges DROP COLUMN dst_names")  # added by version 3
        conn.execute("ALTER TABLE edges DROP COLUMN names_overflow")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    store = open_store(str(db))
    try:
        assert store.schema_version() == SCHEMA_VERSION
        store.set_mode("default", "monitor")
        assert store.modes() == {"default": "monitor"}
    finally:
        store.close()


def test_the_controller_verbs_without_http(make_controller):
    ctl = make_controller()
    assert ctl.set_mode("default", "protect")["source"] == "api"
    listed = json.loads(json.dumps(ctl.modes_json()))
    assert listed["default_mode"] == "learn"
    assert {"namespace": "default", "mode": "protect", "requested": "protect", "source": "api"} in listed["modes"]


def test_the_graph_shows_a_new_mode_at_once_even_when_a_recent_review_is_cached(make_controller):
    ctl = make_controller(review_max_age=3600.0)
    ctl.ingest(json.dumps(batch(bookinfo_records())).encode())
    assert ctl.graph_json()["modes"]["default"] == "learn"
    ctl.set_mode("default", "monitor")
    assert ctl.graph_json()["modes"]["default"] == "monitor"
    ctl.clear_mode("default")
    assert ctl.graph_json()["modes"]["default"] == "learn"
