"""The controller and `netguard policy generate` are two callers of the same pipeline: same flows, same policies."""

from __future__ import annotations

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
