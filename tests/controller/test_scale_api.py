"""The API for large clusters: per-namespace and per-workload reads, pages with continue tokens, ETags,
gzip; and the incremental review behind them (a batch re-synthesizes only the workloads it touched)."""

from __future__ import annotations

from tests.controller.conftest import AUTH, batch, bookinfo_records, count_synthesis

RATINGS = "default/Deployment/ratings-v1"


def _ingest(client, records):
    assert client.post("/api/v1/flows", json=batch(records), headers=AUTH).status_code == 200


def test_pages_of_policies_walk_the_whole_list_in_order(client):
    _ingest(client, bookinfo_records())
    whole = client.get("/api/v1/policies").json()["policies"]
    assert len(whole) > 3
    seen, token, first = [], "", None
    while True:
        page = client.get("/api/v1/policies", params={"limit": 2, **({"continue": token} if token else {})}).json()
        assert len(page["policies"]) <= 2
        first = first or page
        seen += page["policies"]
        token = page["metadata"]["continue"]
        if not token:
            break
    assert seen == whole
    assert first["metadata"]["remainingItemCount"] == len(whole) - 2
    assert client.get("/api/v1/policies", params={"limit": 1, "continue": "not-a-token"}).status_code == 400
    one_ns = client.get("/api/v1/namespaces/default/policies").json()["policies"]
    assert one_ns == [p for p in whole if p["namespace"] == "default"]


def test_one_workload_and_one_namespace(client):
    _ingest(client, bookinfo_records())
    whole = {p["workload"]: p for p in client.get("/api/v1/policies").json()["policies"]}
    assert client.get(f"/api/v1/workloads/{RATINGS}/policy").json() == whole[RATINGS]
    assert client.get("/api/v1/workloads/default/Deployment/nothing/policy").status_code == 404
    graph = client.get(f"/api/v1/workloads/{RATINGS}/graph").json()
    assert graph["edges"] and all("default/ratings-v1" in (e["source"], e["target"]) for e in graph["edges"])
    full = client.get("/api/v1/graph").json()
    ns = client.get("/api/v1/namespaces/default/graph").json()
    touching = [e for e in full["edges"] if any(n.startswith("default/") for n in (e["source"], e["target"]))]
    assert ns["edges"] == touching
    namespaces = {n["name"]: n for n in client.get("/api/v1/namespaces").json()["namespaces"]}
    assert namespaces["default"]["policies"] == len([p for p in whole.values() if p["namespace"] == "default"])
    assert namespaces["default"]["mode"] == "learn"
    impact = client.get(f"/api/v1/workloads/{RATINGS}/impact").json()
    assert set(impact) == {"current", "candidate"} and impact["candidate"]["denied"] == []
    diff = client.get(f"/api/v1/workloads/{RATINGS}/diff").json()["changes"]
    assert [c["ref"] for c in diff] == [f"default/{whole[RATINGS]['name']}"]
    assert client.get("/api/v1/namespaces/Not_A_Namespace/graph").status_code == 422


def test_etags_answer_304_until_something_changes_and_bodies_are_gzipped(client):
    records = bookinfo_records()
    _ingest(client, records[:60])
    first = client.get("/api/v1/graph", headers={"Accept-Encoding": "gzip"})
    assert first.headers["content-encoding"] == "gzip" and first.headers["etag"]
    again = client.get("/api/v1/graph", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and not again.content
    _ingest(client, records[60:])
    changed = client.get("/api/v1/graph", headers={"If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200 and changed.headers["etag"] != first.headers["etag"]


def test_a_batch_synthesizes_again_only_the_workloads_it_touched(client, monkeypatch):
    records = bookinfo_records()
    _ingest(client, records)
    client.get("/api/v1/policies")  # everything synthesized once
    calls = count_synthesis(monkeypatch)
    assert client.get("/api/v1/policies").json()["policies"]
    assert calls == []  # nothing changed: nothing synthesized
    to_ratings = next(r for r in records if r.get("dst_pod_ip") == "10.244.1.12")
    _ingest(client, [{**to_ratings, "time": to_ratings["time"] + 10_000}])
    assert client.get("/api/v1/policies").json()["policies"]
    assert len(calls) == 2 and RATINGS in calls  # the two ends of the edge, of the whole cluster
    graph = client.get(f"/api/v1/workloads/{RATINGS}/graph").json()
    assert max(e["last_seen"] for e in graph["edges"]) == to_ratings["time"] + 10_000


def test_the_ui_forwards_the_namespace_reads_to_the_controller_and_files_answer_404():
    from fastapi.testclient import TestClient

    from visualizer.server import create_app

    class Recorder:
        mode, url = "controller", "http://controller"

        def __init__(self) -> None:
            self.paths: list[str] = []

        async def get(self, path, params=None):
            self.paths.append(path)
            return {"path": path, **({"params": params} if params else {})}

        async def post(self, path, body):
            raise AssertionError(path)

        async def close(self) -> None:
            pass

    backend = Recorder()
    with TestClient(create_app(backend)) as ui:
        assert ui.get("/api/v1/namespaces").json() == {"path": "namespaces"}
        assert ui.get("/api/v1/namespaces/team-001/graph").json() == {"path": "namespaces/team-001/graph"}
        assert ui.get("/api/v1/namespaces/Not_A_Namespace/graph").status_code == 404
        page = ui.get("/api/v1/namespaces/team-001/policies", params={"limit": 5, "continue": "dG9rZW4="}).json()
        assert page == {"path": "namespaces/team-001/policies", "params": {"limit": "5", "continue": "dG9rZW4="}}
    assert backend.paths == ["namespaces", "namespaces/team-001/graph", "namespaces/team-001/policies"]
