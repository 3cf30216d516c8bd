"""The controller and `netguard policy generate` are two callers of the same pipeline: same flows, same policies."""

from __future__ import annotations

import time
from pathlib import Path

from policygen.cli import main as policy_main
from tests.controller.conftest import AUTH, CLUSTER, FLOWS, batch, bookinfo_records


def test_get_policies_returns_what_policy_generate_writes(client, tmp_path: Path):
    records = bookinfo_records()
    for start in range(0, len(records), 40):  # several batches, from two agents
        agent = "node-1" if start % 80 == 0 else "node-2"
        assert client.post("/api/v1/flows", json=batch(records[start:start + 40], agent), headers=AUTH).status_code == 200
    out = tmp_path / "generated"
    assert policy_main(["generate", "--inventory", str(CLUSTER), "--flows", str(FLOWS), "-o", str(out), "-q"]) == 0
    files = {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*.yaml"))}
    served = client.get("/api/v1/policies").json()
    assert served["policies"], served
    assert {p["path"]: p["yaml"] for p in served["policies"]} == files


def test_hubble_flows_without_an_inventory_give_the_same_policies_as_policy_generate(make_controller, tmp_path: Path):
    import json

    from fastapi.testclient import TestClient

    from policygen.controller.app import create_app
    from tests.controller.conftest import DATA

    hubble = DATA / "bookinfo-hubble.jsonl"
    records = [json.loads(line) for line in hubble.read_text().splitlines() if line.strip()]
    controller = make_controller(inventory=[])
    with TestClient(create_app(controller)) as client:
        for start in range(0, len(records), 100):
            response = client.post("/api/v1/flows", json=batch(records[start:start + 100]), headers=AUTH)
            assert response.status_code == 200, response.text
        served = client.get("/api/v1/policies").json()
    out = tmp_path / "generated"
    assert policy_main(["generate", "--flows", str(hubble), "-o", str(out), "-q"]) == 0
    files = {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*.yaml"))}
    assert files and {p["path"]: p["yaml"] for p in served["policies"]} == files


def test_rebuilding_the_baseline_re_enriches_flows_that_came_before_the_inventory(make_controller, tmp_path: Path):
    import json

    from fastapi.testclient import TestClient

    from policygen.controller.app import create_app

    records = bookinfo_records()
    blind = make_controller(inventory=[])  # started without the inventory: every address is the world
    blind.ingest(json.dumps(batch(records)).encode())
    assert all(not e.src.is_workload and not e.dst.is_workload for e in blind.store.edges())
    blind.close()
    controller = make_controller(db=blind.settings.db)  # now with bookinfo-cluster.yaml
    with TestClient(create_app(controller)) as client:
        assert client.post("/api/v1/baseline/rebuild").status_code == 401
        response = client.post("/api/v1/baseline/rebuild", headers=AUTH)
        assert response.status_code == 200, response.text
        assert response.json()["records"] == len(records) and response.json()["batches"] == 1
        served = client.get("/api/v1/policies").json()
        # pruned raw batches: a rebuild would lose what they taught, so it is refused unless forced
        controller.store.retention = 1.0
        assert controller.store.prune(now=time.time() + 10) == 1
        assert client.post("/api/v1/baseline/rebuild", headers=AUTH).status_code == 422
    out = tmp_path / "generated"
    assert policy_main(["generate", "--inventory", str(CLUSTER), "--flows", str(FLOWS), "-o", str(out), "-q"]) == 0
    files = {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*.yaml"))}
    assert {p["path"]: p["yaml"] for p in served["policies"]} == files
    assert sum(e.connections for e in controller.store.edges()) == len(records)
