from __future__ import annotations

import copy

from tests.controller.conftest import AUTH, CLUSTER, batch, bookinfo_records


def test_ingest_without_a_token_is_refused_with_401(client):
    response = client.post("/api/v1/flows", json=batch(bookinfo_records()[:5]))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert client.controller.store.counts()["records"] == 0


def test_ingest_with_a_wrong_token_is_refused_with_403(client):
    for header in ("Bearer not-a-token", "Bearer agent-token-1x", "Bearer agent-token-"):
        response = client.post("/api/v1/flows", json=batch(bookinfo_records()[:5]), headers={"Authorization": header})
        assert response.status_code == 403, header
    assert client.post("/api/v1/flows", json=batch([]), headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.controller.store.counts()["records"] == 0


def test_a_good_batch_is_acknowledged_with_its_count_and_stored(client):
    records = bookinfo_records()
    response = client.post("/api/v1/flows", json=batch(records[:100]), headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 100, "connections": 100}
    response = client.post("/api/v1/flows", json=batch(records[100:]), headers={"Authorization": "Bearer reviewer-token"})
    assert response.json()["accepted"] == len(records) - 100
    counts = client.controller.store.counts()
    assert counts["records"] == len(records) and counts["batches"] == 2
    assert list(client.controller.store.iter_records()) == records


def test_a_malformed_record_rejects_the_whole_batch_naming_its_index(client):
    records = bookinfo_records()[:50]
    bad = copy.deepcopy(records)
    bad[37]["dst_port"] = "http"
    response = client.post("/api/v1/flows", json=batch(bad), headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("flows[37]: dst_port")
    for broken, where in (
        ({"agent": "n1"}, "flows"),
        ({"flows": records}, "agent"),
        ({"agent": "n1", "flows": records[:3] + [42]}, "flows[3]"),
        ({"agent": "n1", "flows": records[:5] + [{"src_ip": "10.0.0.1", "dst_ip": "nope", "dst_port": 80}]}, "flows[5]: dst_ip"),
        ({"agent": "n1", "flows": records[:2] + [{**records[2], "protocol": "ICMP"}]}, "flows[2]: unknown protocol"),
        ({"agent": "n1", "flows": [{"hello": 1}]}, "flows[0]: unrecognized"),
        ({"agent": "n1", "flows": records, "extra": 1}, "unknown keys"),
    ):
        response = client.post("/api/v1/flows", json=broken, headers=AUTH)
        assert response.status_code == 422, broken
        assert where in response.json()["detail"]
    headers = {**AUTH, "content-type": "application/json"}
    response = client.post("/api/v1/flows", content=b'{"agent": "n1", "flows": [', headers=headers)
    assert response.status_code == 422 and "not JSON" in response.json()["detail"]
    assert client.controller.store.counts() == {"batches": 0, "records": 0, "connections": 0, "edges": 0, "alerts": 0}


def test_hubble_records_are_accepted_and_replies_are_not_connections(client):
    import json

    from tests.controller.conftest import DATA

    records = [json.loads(line) for line in (DATA / "bookinfo-hubble.jsonl").read_text().splitlines() if line.strip()]
    response = client.post("/api/v1/flows", json=batch(records), headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == len(records)
    assert 0 < body["connections"] < len(records)


def test_graph_has_verdicts_and_the_read_endpoints_answer(client):
    client.post("/api/v1/flows", json=batch(bookinfo_records()), headers=AUTH)
    graph = client.get("/api/v1/graph").json()
    assert graph["stats"]["edges"] > 0
    assert {"verdict", "candidate_verdict", "baseline"} <= set(graph["edges"][0])
    assert all(e["candidate_verdict"] == "allowed" for e in graph["edges"] if e["target"].startswith("default/"))
    assert "default" in graph["namespaces"]
    assert client.get("/api/v1/policies/diff").json()["changes"]
    impact = client.get("/api/v1/policies/impact").json()
    assert impact["candidate"]["denied"] == [] and impact["candidate"]["edges"] == graph["stats"]["edges"]
    assert client.get("/api/v1/alerts").json() == {"alerts": []}
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    metrics = client.get("/metrics").text
    assert 'netguard_controller_flow_records_total{agent="node-1"} 155.0' in metrics
    schema = client.get("/openapi.json").json()
    assert "/api/v1/flows" in schema["paths"] and "/api/v1/policies/approve" in schema["paths"]


def test_approvals_are_persisted_and_need_a_token(make_controller, tmp_path):
    from fastapi.testclient import TestClient

    from policygen.controller.app import create_app

    controller = make_controller()
    with TestClient(create_app(controller)) as client:
        client.post("/api/v1/flows", json=batch(bookinfo_records()), headers=AUTH)
        workload = "default/Deployment/reviews-v1"
        assert client.post("/api/v1/policies/approve", json={"workload": workload, "decision": "approved"}).status_code == 401
        response = client.post("/api/v1/policies/approve", json={"workload": workload, "decision": "approved"}, headers=AUTH)
        assert response.status_code == 200, response.text
        bad = client.post("/api/v1/policies/approve", json={"workload": workload, "decision": "maybe"}, headers=AUTH)
        assert bad.status_code == 422
        other = {"workload": "x/Deployment/y", "decision": "approved"}
        unknown = client.post("/api/v1/policies/approve", json=other, headers=AUTH)
        assert unknown.status_code == 422
        statuses = {p["workload"]: p["status"] for p in client.get("/api/v1/policies").json()["policies"]}
        assert statuses[workload] == "approved"
        assert set(statuses.values()) == {"approved", "pending"}
    # a second controller on the same database sees the approval
    from policygen.controller.metrics import Metrics
    from policygen.controller.service import Controller, FileInventory
    from policygen.controller.store import open_store

    again = Controller(controller.settings, open_store(controller.settings.db), FileInventory([str(CLUSTER)]), Metrics())
    try:
        assert {w: str(a.decision) for w, a in again.approvals.items()} == {workload: "approved"}
        assert again.approvals[workload].who == "token-1" and again.approvals[workload].digest.startswith("sha256:")
        assert {p["workload"]: p["status"] for p in again.policies_json()["policies"]}[workload] == "approved"
    finally:
        again.close()


def test_read_endpoints_can_require_the_token(make_controller):
    from fastapi.testclient import TestClient

    from policygen.controller.app import create_app

    with TestClient(create_app(make_controller(read_auth=True))) as client:
        assert client.get("/api/v1/graph").status_code == 401
        assert client.get("/api/v1/policies", headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert client.get("/api/v1/policies", headers=AUTH).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_raw_batches_past_the_retention_are_pruned_and_the_edges_stay(make_controller):
    import json

    controller = make_controller()
    controller.store.retention = 3600.0
    records = bookinfo_records()
    controller.ingest(json.dumps(batch(records)).encode())
    edges = controller.store.edges()
    assert controller.store.prune(now=time_now() + 1800) == 0
    assert controller.store.prune(now=time_now() + 7200) == 1
    assert controller.store.counts()["batches"] == 0 and list(controller.store.iter_records()) == []
    assert controller.store.edges() == edges


def time_now() -> float:
    import time

    return time.time()


def test_too_large_a_batch_is_refused_with_413_and_not_stored(make_controller):
    from fastapi.testclient import TestClient

    from policygen.controller.app import create_app

    controller = make_controller(max_batch=100, max_body=20_000)
    with TestClient(create_app(controller)) as client:
        response = client.post("/api/v1/flows", json=batch(bookinfo_records()[:101]), headers=AUTH)
        assert response.status_code == 413  # over max_body
        controller.settings.max_body = 10 << 20
        response = client.post("/api/v1/flows", json=batch(bookinfo_records()[:101]), headers=AUTH)
        assert response.status_code == 413 and "at most 100" in response.json()["detail"]

        def chunks():  # no Content-Length: the limit holds while streaming
            yield b'{"agent": "n1", "flows": ['
            for _ in range(200):
                yield b'{"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "dst_port": 80},' * 100
        controller.settings.max_body = 50_000
        response = client.post("/api/v1/flows", content=chunks(), headers={**AUTH, "content-type": "application/json"})
        assert response.status_code == 413
    assert controller.store.counts()["records"] == 0


def test_a_rotated_token_file_is_picked_up(make_controller, token_file):
    import os
    import time as _time

    from fastapi.testclient import TestClient

    from policygen.controller.app import create_app

    controller = make_controller()
    with TestClient(create_app(controller)) as client:
        new = {"Authorization": "Bearer rotated-token"}
        assert client.post("/api/v1/flows", json=batch([]), headers=new).status_code == 403
        token_file.write_text("rotated-token\n")
        stat = token_file.stat()
        os.utime(token_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
        for _ in range(40):  # the file is looked at no more than once a second (bounded poll)
            if client.post("/api/v1/flows", json=batch([]), headers=new).status_code == 200:
                break
            _time.sleep(0.1)
        assert client.post("/api/v1/flows", json=batch([]), headers=new).status_code == 200
        assert client.post("/api/v1/flows", json=batch([]), headers=AUTH).status_code == 403  # the old one is gone


def test_cors_lets_a_configured_origin_read(make_controller):
    from fastapi.testclient import TestClient

    from policygen.controller.app import create_app

    with TestClient(create_app(make_controller(cors_origins=["http://127.0.0.1:8081"]))) as client:
        response = client.get("/api/v1/alerts", headers={"Origin": "http://127.0.0.1:8081"})
        assert response.headers["access-control-allow-origin"] == "http://127.0.0.1:8081"
        response = client.get("/api/v1/alerts", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in response.headers


def test_under_steady_ingest_each_batch_shows_at_once_and_so_do_approvals(make_controller):
    import json

    controller = make_controller(review_max_age=3600.0)
    records = bookinfo_records()
    controller.ingest(json.dumps(batch(records[:60])).encode())
    first = controller.graph_json()
    controller.ingest(json.dumps(batch(records[60:])).encode())
    second = controller.graph_json()  # the live review: updated in place, never an older copy
    assert second["stats"]["connections"] == len(records) > first["stats"]["connections"]
    controller.approve("default/Deployment/ratings-v1", "approved")
    statuses = {p["workload"]: p["status"] for p in controller.policies_json()["policies"]}
    assert statuses["default/Deployment/ratings-v1"] == "approved"
    fresh = controller.review(fresh=True)
    assert sum(e.connections for e in fresh.edges) == len(records)


def test_hubble_names_are_checked_as_the_api_server_would_and_the_batch_refused(client):
    import json

    from tests.controller.conftest import DATA

    records = [json.loads(line) for line in (DATA / "bookinfo-hubble.jsonl").read_text().splitlines() if line.strip()][:3]
    bad = copy.deepcopy(records[0])
    flow = bad.get("flow", bad)
    flow["source"]["namespace"] = "../../etc"
    response = client.post("/api/v1/flows", json=batch([records[0], bad]), headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"].startswith('flows[1]: source.namespace: Invalid value: "../../etc"')
    flow["source"]["namespace"] = "default"
    flow["source"]["labels"] = ["k8s:app=<script>"]
    response = client.post("/api/v1/flows", json=batch([bad]), headers=AUTH)
    assert response.status_code == 422 and "invalid label value" in response.json()["detail"]
    assert client.controller.store.counts()["records"] == 0
