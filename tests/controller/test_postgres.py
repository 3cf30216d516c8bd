"""The same store on a real PostgreSQL, started by the test in a temp dir on 127.0.0.1 (and stopped)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import httpx
import pytest
import yaml

from policygen.controller.metrics import Metrics
from policygen.controller.service import Controller, FileInventory
from policygen.controller.settings import Settings
from policygen.controller.store import SCHEMA_VERSION, open_store
from tests.controller.conftest import AUTH, CLUSTER, batch, bookinfo_records, count_synthesis, free_port
from tests.controller.test_kube import wait_for
from tests.controller.test_modes import LATERAL
from tests.tools import must_not_skip, require_tool


@pytest.fixture(scope="module")
def postgres():
    initdb, pg_ctl = require_tool("initdb", "pg_ctl", why="Debian package postgresql; scripts/system-deps.sh installs it as root")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            message = "running as root and there is no postgres user to run PostgreSQL as"
            if must_not_skip():
                pytest.fail(message)
            pytest.skip(message)
        as_user = ["runuser", "-u", "postgres", "--"]
    base = tempfile.mkdtemp(prefix="netguard-pg-")
    data, sock = os.path.join(base, "data"), os.path.join(base, "sock")
    os.makedirs(sock)
    if as_user:
        for path in (base, sock):
            os.chown(path, pw.pw_uid, pw.pw_gid)
    port = free_port()
    started = False
    try:
        subprocess.run([*as_user, initdb, "-D", data, "-U", "netguard", "--auth=trust", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True)
        opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=on"
        subprocess.run([*as_user, pg_ctl, "-D", data, "-o", opts, "-l", os.path.join(base, "log"), "-w", "-t", "60", "start"],
                       check=True, capture_output=True)
        started = True
        yield f"postgresql://netguard@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run([*as_user, pg_ctl, "-D", data, "-m", "fast", "-w", "-t", "60", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _controller(url: str, **kw) -> Controller:
    settings = Settings(db=url, no_auth=True, **kw).validate()
    return Controller(settings, open_store(url), FileInventory([str(CLUSTER)]), Metrics())


def _timeless(doc: dict) -> dict:
    """The policies without the time of their decision (two stores, two moments)."""
    return {**doc, "policies": [{**p, "decision": {**p["decision"], "at": 0}} if "decision" in p else p
                                for p in doc["policies"]]}


def test_postgres_store_keeps_batches_edges_approvals_and_alerts(postgres, make_controller):
    records = bookinfo_records()
    ctl = _controller(postgres)
    try:
        assert ctl.store.dialect == "postgres"
        for start in range(0, len(records), 50):
            assert ctl.ingest(json.dumps(batch(records[start:start + 50])).encode())["accepted"] == len(records[start:start + 50])
        ctl.approve("default/Deployment/ratings-v1", "approved")
        pg_policies = ctl.policies_json()
    finally:
        ctl.close()
    sqlite = make_controller()
    sqlite.ingest(json.dumps(batch(records)).encode())
    sqlite.approve("default/Deployment/ratings-v1", "approved")
    assert _timeless(pg_policies) == _timeless(sqlite.policies_json())  # the same queries, the same answers

    again = _controller(postgres, namespaces={"default": "monitor"})
    try:
        assert list(again.store.iter_records()) == records
        counts = again.store.counts()
        assert counts["records"] == len(records) and counts["batches"] == 4
        assert {w: str(a.decision) for w, a in again.approvals.items()} == {"default/Deployment/ratings-v1": "approved"}
        for _ in range(3):
            again.ingest(json.dumps(batch([LATERAL, LATERAL])).encode())
        alerts = again.store.alerts()
        assert len(alerts) == 1 and alerts[0]["count"] == 6 and alerts[0]["reasons"] == ["new-edge", "denied"]
        assert again.store.size_bytes() > 0
    finally:
        again.close()


def test_postgres_keeps_modes_set_through_the_api_and_migrates_a_version_1_store(postgres):
    ctl = _controller(postgres, namespaces={"default": "protect"})
    try:
        assert ctl.set_mode("default", "monitor") == {"namespace": "default", "mode": "monitor", "requested": "monitor",
                                                      "source": "api"}
        conn = ctl.store._reader  # back to version 1: no modes table (2), no DNS names on edges (3)
        with ctl.store._read_lock:
            cur = conn.cursor()
            cur.execute("DROP TABLE modes")
            cur.execute("ALTER TABLE edges DROP COLUMN dst_names, DROP COLUMN names_overflow")
            cur.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
            conn.commit()
    finally:
        ctl.close()
    again = _controller(postgres, namespaces={"default": "protect"})
    try:
        assert again.store.schema_version() == SCHEMA_VERSION and again.store.modes() == {}
        again.set_mode("default", "monitor")
    finally:
        again.close()
    third = _controller(postgres, namespaces={"default": "protect"})
    try:
        assert [m for m in third.modes_json()["modes"] if m["namespace"] == "default"] == [
            {"namespace": "default", "mode": "monitor", "requested": "monitor", "source": "api"}]
        assert third.clear_mode("default")["mode"] == "protect"
        assert third.store.modes() == {}
    finally:
        third.close()


# --- three replicas on one PostgreSQL, the leader killed mid-ingest ---------------------------------------

LEASE_SECONDS = 2
BATCHES = 15  # per agent; each brings a new edge (one alert) and 20 known flows


def _database(url: str, name: str) -> str:
    import pg8000.dbapi

    conn = pg8000.dbapi.connect(user="netguard", host="127.0.0.1", port=int(url.rsplit(":", 1)[1].split("/")[0]),
                                database="postgres")
    conn.autocommit = True
    conn.cursor().execute(f"CREATE DATABASE {name}")
    conn.close()
    return url.rsplit("/", 1)[0] + "/" + name


def _rows(url: str, sql: str) -> list[tuple]:
    store = open_store(url)
    try:
        return store._all(sql)
    finally:
        store.close()


def _kubeconfig(path, standin) -> str:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "standin",
        "clusters": [{"name": "standin", "cluster": {"server": standin.url}}],
        "users": [{"name": "u", "user": {"token": "cluster-token"}}],
        "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "u"}}]}))
    return str(path)


def _leader(replicas) -> object | None:
    for r in replicas:
        if r.proc.poll() is None:
            try:
                if httpx.get(r.url + "/api/v1/leader", timeout=2).json()["leader"]:
                    return r
            except httpx.HTTPError:
                pass
    return None


class Agent(threading.Thread):
    """Posts numbered batches to its replica; on a failure, the same batch to the next replica.
    Records which batches were acknowledged (HTTP 200)."""

    def __init__(self, n: int, replicas, batches: int, flows: list[dict]) -> None:
        super().__init__(daemon=True)
        self.n, self.replicas, self.batches, self.flows = n, replicas, batches, flows
        self.acked: list[str] = []

    def run(self) -> None:
        target = self.n % len(self.replicas)
        with httpx.Client(timeout=10) as client:
            for seq in range(self.batches):
                name = f"node-{self.n}#{seq}"
                lateral = {**LATERAL, "dst_port": 9100 + seq, "src_port": 40000 + self.n}  # a new edge: an alert
                body = batch([lateral, *self.flows], agent=name)
                for _ in range(20):
                    try:
                        if client.post(self.replicas[target].url + "/api/v1/flows", json=body, headers=AUTH).status_code == 200:
                            self.acked.append(name)
                            break
                    except httpx.HTTPError:
                        pass
                    target = (target + 1) % len(self.replicas)
                    time.sleep(0.05)
                time.sleep(0.02)


def test_three_replicas_survive_a_kill_9_of_the_leader_mid_ingest(postgres, controller_process, tmp_path, token_file):
    from tests.controller.standin import StandIn
    from tests.controller.test_kube import bookinfo_objects
    from tests.controller.test_modes import Receiver

    url = _database(postgres, "replicas")
    standin, receiver = StandIn(token="cluster-token"), Receiver()
    for obj in bookinfo_objects():
        standin.put(obj)
    try:
        common = ["--db", url, "--kube", "kubeconfig", "--kubeconfig", _kubeconfig(tmp_path / "kubeconfig", standin),
                  "--token-file", str(token_file), "--lease", "netguard-system/netguard-controller",
                  "--lease-duration", str(LEASE_SECONDS), "--auto-apply", "--webhook-url", receiver.url]
        replicas = [controller_process(*common, "--identity", f"replica-{i}") for i in range(3)]
        # learn on every replica, then approve everything and protect the namespace (through two others)
        records = bookinfo_records()
        for i, r in enumerate(replicas):
            part = records[i::3]
            assert httpx.post(r.url + "/api/v1/flows", json=batch(part, agent=f"learn-{i}"), headers=AUTH).json()["accepted"] == len(part)
        time.sleep(3.5)  # replica 1 picks up the others' batches (duty interval)
        policies = httpx.get(replicas[1].url + "/api/v1/policies", timeout=30).json()["policies"]
        for p in policies:
            decision = {"workload": p["workload"], "decision": "approved"}
            assert httpx.post(replicas[1].url + "/api/v1/policies/approve", json=decision, headers=AUTH, timeout=30).status_code == 200
        assert httpx.put(replicas[2].url + "/api/v1/modes/default", json={"mode": "protect"}, headers=AUTH).status_code == 200

        def applies() -> dict[str, int]:
            out: dict[str, int] = {}
            for r in list(standin.requests):
                if r["method"] == "PATCH" and r["query"].get("dryRun") != "All":
                    out[r["path"]] = out.get(r["path"], 0) + 1
            return out

        wait_for(lambda: len(applies()) == len(policies), "the leader applies the approved policies", timeout=60)
        leader = wait_for(lambda: _leader(replicas), "a leader")
        agents = [Agent(n, replicas, batches=BATCHES, flows=records[:20]) for n in range(6)]
        for a in agents:
            a.start()
        wait_for(lambda: sum(len(a.acked) for a in agents) >= 30, "ingest under way", timeout=60)
        leader_identity = f"replica-{replicas.index(leader)}"
        leader.kill9()
        killed_at = time.monotonic()
        survivors = [r for r in replicas if r is not leader]
        new_leader = wait_for(lambda: _leader(survivors), "a new leader", timeout=30)
        takeover = time.monotonic() - killed_at
        for a in agents:
            a.join(timeout=120)
        acked = [name for a in agents for name in a.acked]
        assert len(acked) == 6 * BATCHES

        # no acknowledged flow lost
        stored = {agent for (agent,) in _rows(url, "SELECT agent FROM batches")}
        assert set(acked) <= stored
        # a new leader within the lease duration (plus the poll; a wide margin for a loaded machine)
        assert new_leader is not leader and takeover < LEASE_SECONDS * 3, takeover
        # no alert sent twice; every alert sent but those the dead leader had claimed when it died
        alerts = {(s, d, int(port)) for s, d, port in _rows(url, "SELECT src, dst, port FROM alerts")}
        assert len(alerts) == BATCHES

        def sent() -> list[str]:
            return [a["labels"]["port"] for _, payload in receiver.posts for a in payload]

        wait_for(lambda: len(_rows(url, "SELECT 1 FROM dispatched")) == BATCHES, "every alert claimed", timeout=30)
        by_survivors = {f"{port}/TCP" for (port,) in _rows(url, f"SELECT port FROM dispatched WHERE claimed_by <> '{leader_identity}'")}
        wait_for(lambda: by_survivors <= set(sent()), "the alerts the survivors claimed are sent", timeout=30)
        assert len(sent()) == len(set(sent())), sorted(sent())
        # every replica serves what the others ingested (picked up into its live review)
        lateral = {f"{9100 + seq}/TCP" for seq in range(BATCHES)}

        def served(r) -> set[str]:
            edges = httpx.get(r.url + "/api/v1/graph", timeout=30).json()["edges"]
            return {e["key"] for e in edges if e["source"] == "default/details-v1" and e["target"] == "default/ratings-v1"}

        for r in survivors:
            wait_for(lambda r=r: lateral <= served(r), f"{r.url} serves every replica's edges", timeout=30)
        # no policy applied twice
        assert applies() and all(n == 1 for n in applies().values()), applies()
    finally:
        standin.close()
        receiver.close()


def test_a_replica_picks_up_another_replicas_batches_into_its_live_review_without_a_rebuild(postgres, make_controller,
                                                                                           monkeypatch):
    """Replica B follows A's batches incrementally: its live review stays the same object, only the workloads
    at the ends of A's new edge are synthesized again, B's own batches are not counted twice, and B then
    serves exactly what one controller given every batch serves."""

    url = _database(postgres, "pickup")
    records = bookinfo_records()
    half = len(records) // 2
    a, b = _controller(url, duty_interval=3600.0), _controller(url, duty_interval=3600.0)
    try:
        a.ingest(json.dumps(batch(records[:half])).encode())
        b.ingest(json.dumps(batch(records[half:], agent="node-2")).encode())
        b.policies_json()  # B's live review: built from the database, every policy synthesized
        live = b.live()
        calls = count_synthesis(monkeypatch)
        a.ingest(json.dumps(batch([LATERAL])).encode())  # a new edge, from another replica
        b.ingest(json.dumps(batch([LATERAL], agent="node-2")).encode())  # and the same from B itself
        b.sync()
        assert b.pick_up() == 0  # each batch is picked up once
        served = b.policies_json()
        assert b.live() is live  # incremental: no rebuild
        assert sorted(set(calls)) == ["default/Deployment/details-v1", "default/Deployment/ratings-v1"]
        graph = b.graph_json()
    finally:
        a.close()
        b.close()
    one = make_controller()
    for body in (records[:half], records[half:], [LATERAL], [LATERAL]):
        one.ingest(json.dumps(batch(body)).encode())
    assert _timeless(served) == _timeless(one.policies_json())
    whole = one.graph_json()
    assert [(e["source"], e["target"], e["key"], e["connections"], e["baseline"]) for e in graph["edges"]] == \
        [(e["source"], e["target"], e["key"], e["connections"], e["baseline"]) for e in whole["edges"]]


def test_a_group_commit_of_many_edges_upserts_on_postgres_as_on_sqlite(postgres, tmp_path):
    """PostgreSQL takes a group's edges in multi-row upserts (pg8000's executemany is a round trip a row): 700
    edges in chunks of 512 and powers of two, the same edges again in a second group (a stats merge), names
    merged with the stored ones; the stored edges are exactly SQLite's."""
    from netguard.model import Edge, EdgeKey, EdgeStats, Endpoint, EndpointKind, Workload
    from policygen.controller.store import BatchWrite, EdgeRow

    def writes(t: float) -> list[BatchWrite]:
        rows = [EdgeRow(Edge(EdgeKey(Endpoint.of(Workload("ns", "Deployment", f"w{i % 70}")),
                                     Endpoint.of(Workload("ns", "Deployment", f"w{i // 70}")), 8080, "TCP"),
                             EdgeStats(1 + i % 3, 100, 2, t + i, t + i + 1, "http")), i % 2 == 0) for i in range(700)]
        rows.append(EdgeRow(Edge(EdgeKey(Endpoint.of(Workload("ns", "Deployment", "w0")),
                                         Endpoint(EndpointKind.WORLD, address="203.0.113.9"), 443, "TCP"),
                                 EdgeStats(1, 1, 1, t, t, dst_names=(f"n{int(t)}.example.com",))), True))
        return [BatchWrite("a", b"{}", 1, 1, edges=rows[:400]), BatchWrite("b", b"{}", 1, 1, edges=rows[350:])]

    stores = [open_store(_database(postgres, "manyedges")), open_store(str(tmp_path / "many.db"))]
    try:
        for store in stores:
            for t in (1000.0, 5000.0):
                group = writes(t)
                futures = [store.submit(w) for w in group]  # queued together: one group commit, coalesced
                for future in futures:
                    future.result()
        pg, lite = ([e.to_record() for e in s.edges()] for s in stores)
        assert len(pg) == 701 and pg == lite
        assert stores[0].baseline_keys() == stores[1].baseline_keys()
    finally:
        for store in stores:
            store.close()
