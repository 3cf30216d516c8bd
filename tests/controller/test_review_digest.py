"""Approvals are bound to the digest of the policy text; a changed policy is pending again with the
diff; apply takes only approved digests; every decision, apply and delete is in the audit trail."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from policygen.controller.app import create_app
from policygen.controller.events import EventHub, EventKind
from policygen.controller.metrics import Metrics
from policygen.controller.service import Controller, FileInventory
from policygen.controller.settings import Settings, read_tokens
from policygen.controller.store import SCHEMA_VERSION, open_store
from tests.controller.conftest import CLUSTER, batch, bookinfo_records

ALICE = {"Authorization": "Bearer w-alice"}
AGENT = {"Authorization": "Bearer w-agent"}
UI = {"Authorization": "Bearer r-ui"}
REVIEWS = "default/Deployment/reviews-v1"
# details-v1 starts calling reviews-v1: reviews-v1's ingress changes
NEW_CALLER = {"time": 1790000500, "src_ip": "10.244.1.11", "src_port": 41000, "dst_ip": "10.244.1.13", "dst_port": 9080,
              "protocol": "TCP", "bytes": 10, "packets": 1}  # fmt: skip


@pytest.fixture
def client(tmp_path: Path):
    tokens = tmp_path / "tokens"
    tokens.write_text("w-agent name=agents\nw-alice name=alice\nr-ui name=ui role=read\n")
    settings = Settings(tokens=read_tokens(str(tokens)), token_file=str(tokens), db=str(tmp_path / "c.db"),
                        review_max_age=0.0, read_auth=True).validate()  # fmt: skip
    controller = Controller(settings, open_store(settings.db), FileInventory([str(CLUSTER)]), Metrics())
    with TestClient(create_app(controller)) as c:
        c.controller = controller
        yield c
    controller.close()


def _policy(client, workload: str) -> dict:
    return next(p for p in client.get("/api/v1/policies", headers=UI).json()["policies"] if p["workload"] == workload)


def test_a_changed_policy_goes_back_to_pending_with_the_diff_and_a_stale_digest_is_refused(client):
    assert client.post("/api/v1/flows", json=batch(bookinfo_records()), headers=AGENT).status_code == 200
    first = _policy(client, REVIEWS)
    assert first["status"] == "pending" and first["digest"].startswith("sha256:")
    decision = {"workload": REVIEWS, "decision": "approved", "digest": first["digest"]}
    assert client.post("/api/v1/policies/approve", json=decision, headers=UI).status_code == 403  # read-only token
    answer = client.post("/api/v1/policies/approve", json=decision, headers=ALICE)
    assert answer.status_code == 200 and answer.json()["by"] == "alice"
    approved = _policy(client, REVIEWS)
    assert approved["status"] == "approved" and approved["decision"]["by"] == "alice"

    assert client.post("/api/v1/flows", json=batch([NEW_CALLER]), headers=AGENT).status_code == 200
    changed = _policy(client, REVIEWS)
    assert changed["status"] == "pending" and changed["changed_since_decision"]
    assert changed["digest"] != first["digest"] and changed["decision"]["digest"] == first["digest"]
    added = [line for line in changed["decided_diff"].splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert any("details-v1" in line or "app: details" in line for line in added), changed["decided_diff"]

    stale = client.post("/api/v1/policies/approve", json=decision, headers=ALICE)
    assert stale.status_code == 409 and stale.json()["digest"] == changed["digest"]
    assert _policy(client, REVIEWS)["status"] == "pending"  # nothing recorded
    again = {**decision, "digest": changed["digest"]}
    assert client.post("/api/v1/policies/approve", json=again, headers=ALICE).status_code == 200
    assert _policy(client, REVIEWS)["status"] == "approved"

    trail = client.get("/api/v1/audit", headers=UI).json()["audit"]
    assert [(e["action"], e["by"], e["digest"]) for e in trail] == [
        ("approve", "alice", changed["digest"]), ("approve", "alice", first["digest"])]
    assert client.get("/api/v1/audit").status_code == 401


def test_apply_takes_only_policies_whose_text_is_the_approved_one(client):
    applied: list[list[str]] = []

    class Applier:
        def apply(self, generated, store, dry_run_only=False):
            applied.append([g.workload.key for g in generated])
            refs = [{"ref": f"{g.workload.namespace}/{g.policy.name}", "workload": g.workload.key} for g in generated]
            return {"dry_run": refs, "applied": [] if dry_run_only else refs, "errors": []}

    client.controller.applier = Applier()
    client.post("/api/v1/flows", json=batch(bookinfo_records()), headers=AGENT)
    client.put("/api/v1/modes/default", json={"mode": "protect"}, headers=ALICE)
    for workload in (REVIEWS, "default/Deployment/ratings-v1"):
        client.post("/api/v1/policies/approve", json={"workload": workload, "decision": "approved",
                                                      "digest": _policy(client, workload)["digest"]}, headers=ALICE)
    client.put("/api/v1/modes/default", json={"mode": "learn"}, headers=ALICE)
    client.post("/api/v1/flows", json=batch([NEW_CALLER]), headers=AGENT)  # reviews-v1's text moves
    client.put("/api/v1/modes/default", json={"mode": "protect"}, headers=ALICE)
    result = client.post("/api/v1/policies/apply", json={}, headers=ALICE).json()
    assert applied == [["default/Deployment/ratings-v1"]]
    assert {"workload": REVIEWS, "reason": "changed since it was approved"} in result["skipped"]
    trail = client.get("/api/v1/audit", headers=UI).json()["audit"]
    assert trail[0]["action"] == "apply" and trail[0]["workload"] == "default/Deployment/ratings-v1"
    assert trail[0]["by"] == "alice" and trail[0]["ref"] == "default/netguard-ratings-v1"


def test_a_version_3_store_keeps_its_decisions_as_pending_and_gets_the_audit_table(tmp_path: Path):
    db = tmp_path / "v3.db"
    open_store(str(db)).close()
    with sqlite3.connect(db) as conn:  # approvals as netguard wrote them before digests
        conn.executescript("""
            DROP TABLE approvals; DROP TABLE audit;
            CREATE TABLE approvals (workload TEXT PRIMARY KEY, decision TEXT NOT NULL, updated REAL NOT NULL);
            INSERT INTO approvals VALUES ('default/Deployment/reviews-v1', 'approved', 1.0);
            UPDATE meta SET value = '3' WHERE key = 'schema_version';
        """)
    store = open_store(str(db))
    try:
        assert store.schema_version() == SCHEMA_VERSION
        (old,) = store.approvals().values()
        assert old.digest == ""  # bound to no text: shown as pending, to be reviewed again
        assert store.audit() == []
    finally:
        store.close()


def test_events_reach_every_subscriber_and_a_slow_one_is_told_to_resync():
    async def run() -> tuple[list[bytes], list[bytes]]:
        hub = EventHub(backlog=2)
        fast, slow = hub.stream(keepalive=0.05), hub.stream(keepalive=0.05)
        assert (await anext(fast)).startswith(b"retry:") and (await anext(slow)).startswith(b"retry:")
        hub.publish(EventKind.REVIEW, workload="w")
        got_fast = [await anext(fast)]
        for i in range(5):
            hub.publish(EventKind.GRAPH, new_edges=i)
        await asyncio.sleep(0.01)
        got_slow = [await anext(slow)]
        await fast.aclose()
        await slow.aclose()
        return got_fast, got_slow

    fast, slow = asyncio.run(run())
    assert b"event: review" in fast[0] and json.loads(fast[0].split(b"data: ")[1]) == {"workload": "w"}
    assert b"event: resync" in slow[0] or b"event: graph" in slow[0]


def test_an_agents_ingest_token_sends_flows_and_edges_and_nothing_else(tmp_path: Path):
    tokens = tmp_path / "tokens"
    tokens.write_text("i-agent name=agents role=ingest\nr-ui name=ui role=read\n")
    settings = Settings(tokens=read_tokens(str(tokens)), token_file=str(tokens), db=str(tmp_path / "c.db"),
                        read_auth=True).validate()  # fmt: skip
    controller = Controller(settings, open_store(settings.db), FileInventory([str(CLUSTER)]), Metrics())
    agent = {"Authorization": "Bearer i-agent"}
    try:
        with TestClient(create_app(controller)) as c:
            assert c.post("/api/v1/flows", json=batch(bookinfo_records()), headers=agent).status_code == 200
            assert c.post("/api/v1/flows", json=batch(bookinfo_records()), headers=UI).status_code == 403
            edges = {"agent": "node-1", "edges": [{"src": "w:default/Deployment/productpage-v1", "port": 9080,
                                                   "dst": "w:default/Deployment/details-v1", "protocol": "TCP",
                                                   "connections": 3}]}  # what the DaemonSet's agents ship
            assert c.post("/api/v1/edges", json=edges, headers=agent).status_code == 200
            assert c.post("/api/v1/edges", json=edges, headers=UI).status_code == 403
            assert c.get("/api/v1/graph", headers=agent).status_code == 403  # the map is not the agent's to read
            assert c.get("/api/v1/graph", headers=UI).status_code == 200
            refused = c.post("/api/v1/policies/approve", json={"workload": REVIEWS, "decision": "approved"}, headers=agent)
            assert refused.status_code == 403 and "may only send flows" in refused.text
    finally:
        controller.close()
