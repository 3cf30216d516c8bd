"""One Edge record: the CLI and the controller (its ingest fast path, its store, its graph) keep the same
fields, DNS names included, and the store's columns and merge follow the record's fields."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netguard.cli import main as netguard_main
from netguard.model import MAX_DST_NAMES, STAT_FIELDS, Edge, EdgeKey, EdgeStats, Endpoint, EndpointKind, Merge, Workload
from policygen.cli import main as policy_main
from policygen.controller.store import EdgeRow, open_store
from tests.controller.conftest import AUTH, CLUSTER, batch, bookinfo_records

NAMES = ["api.example.com", "cdn.example.net", "a.example.org", "b.example.org", "c.example.org", "d.example.org",
         "e.example.org", "f.example.org", "g.example.org", "h.example.org"]


def _records_with_names() -> list[dict]:
    """bookinfo's calls, and productpage's calls out to two outside addresses looked up under several names
    (more than an edge keeps on one of them), spread so that each batch brings some."""
    out = bookinfo_records()
    t = 1_790_000_500
    for i in range(40):
        names = [NAMES[i % len(NAMES)], NAMES[(i * 3 + 1) % len(NAMES)]] if i % 4 else []
        record = {"time": t + i, "src_ip": "10.244.1.10", "src_port": 45000 + i, "dst_ip": f"203.0.113.{9 + i % 2}",
                  "dst_port": 443, "protocol": "TCP", "bytes": 500 + i, "packets": 6}
        if names and not (i % 2 and i > 20):  # .10 gets names only early on: later batches must not wipe them
            record["dst_names"] = names
        out.insert((i * 7) % len(out), record)
    return out


def _cli(tmp_path: Path, records: list[dict]) -> tuple[dict[str, str], dict]:
    flows = tmp_path / "flows.jsonl"
    flows.write_text("".join(json.dumps(r) + "\n" for r in records))
    out, graph = tmp_path / "generated", tmp_path / "graph.json"
    assert policy_main(["generate", "--inventory", str(CLUSTER), "--flows", str(flows), "-o", str(out), "-q"]) == 0
    assert netguard_main(["graph", "export", "--inventory", str(CLUSTER), "--flows", str(flows), "--format", "json",
                        "-o", str(graph)]) == 0
    files = {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*.yaml"))}
    return files, json.loads(graph.read_text())


def _edge_fields(doc: dict) -> dict:
    """Each graph edge with the Edge record's fields (the controller adds verdicts and baseline)."""
    record = {"port", "protocol", *(f.name for f in STAT_FIELDS)}
    return {(e["source"], e["target"], e["key"]): {k: e[k] for k in record} for e in doc["edges"]}


def test_the_cli_and_the_controller_produce_the_same_graph_policies_and_comments(client, tmp_path: Path):
    records = _records_with_names()
    for start in range(0, len(records), 30):  # several batches from two agents: merged by the store
        agent = "node-1" if start % 60 == 0 else "node-2"
        assert client.post("/api/v1/flows", json=batch(records[start:start + 30], agent), headers=AUTH).status_code == 200
    files, cli_graph = _cli(tmp_path, records)
    served = {p["path"]: p["yaml"] for p in client.get("/api/v1/policies").json()["policies"]}
    assert served == files
    productpage = next(text for path, text in files.items() if "productpage" in path)
    assert "api.example.com" in productpage and ", ..." in productpage  # the names and their overflow, in comments
    graph = client.get("/api/v1/graph").json()
    assert _edge_fields(graph) == _edge_fields(cli_graph)
    assert [n["id"] for n in graph["nodes"]] == [n["id"] for n in cli_graph["nodes"]]
    world = [e for e in graph["edges"] if e["target"].startswith("world:")]
    assert len(world) == 2 and all(e["dst_names"] for e in world)
    assert any(len(e["dst_names"]) == MAX_DST_NAMES and e["names_overflow"] for e in world)
    stored = {str(e.dst): (e.dst_names, e.names_overflow) for e in client.controller.store.edges()
              if e.dst.kind is EndpointKind.WORLD}
    assert stored == {e["target"]: (tuple(e["dst_names"]), e["names_overflow"]) for e in world}


def test_a_version_2_store_keeps_its_edges_and_learns_names(tmp_path: Path):
    db = tmp_path / "v2.db"
    with sqlite3.connect(db) as conn:  # the edges table as netguard wrote it before the names were kept
        conn.executescript("""
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO meta VALUES ('schema_version', '2');
            CREATE TABLE edges (src TEXT NOT NULL, dst TEXT NOT NULL, port INTEGER NOT NULL, protocol TEXT NOT NULL,
                connections INTEGER NOT NULL, bytes INTEGER NOT NULL, packets INTEGER NOT NULL,
                first_seen REAL NOT NULL, last_seen REAL NOT NULL, port_name TEXT NOT NULL, via_service TEXT NOT NULL,
                baseline INTEGER NOT NULL, PRIMARY KEY (src, dst, port, protocol));
            INSERT INTO edges VALUES ('w:default/Deployment/productpage-v1', 'world:203.0.113.9', 443, 'TCP',
                3, 300, 9, 10.0, 20.0, '', '', 1);
        """)
    store = open_store(str(db))
    try:
        assert store.schema_version() >= 3  # migrated to the newest
        (old,) = store.edges()
        assert old.connections == 3 and old.dst_names == () and not old.names_overflow
        more = EdgeStats(1, 100, 2, 30.0, 30.0, dst_names=("api.example.com",))
        store.write(_write(Edge(old.key, more)))
        store.write(_write(Edge(old.key, EdgeStats(1, 1, 1, 5.0, 5.0))))  # no names: keeps those stored
        (new,) = store.edges()
        assert (new.connections, new.first_seen, new.last_seen, new.dst_names) == (5, 5.0, 30.0, ("api.example.com",))
    finally:
        store.close()


def _write(edge: Edge):
    from policygen.controller.store import BatchWrite

    return BatchWrite("node-1", b"{}", 0, 0, edges=[EdgeRow(edge, True)])


_names = st.lists(st.sampled_from(NAMES), max_size=4).map(lambda n: tuple(sorted(set(n))))
_stats = st.builds(EdgeStats, st.integers(1, 10**6), st.integers(0, 10**9), st.integers(0, 10**6),
                   st.floats(0, 2e9), st.floats(0, 2e9), st.sampled_from(["", "http"]), st.sampled_from(["", "ns/svc"]),
                   _names, st.booleans())


@given(_stats, _stats)
def test_merge_follows_each_fields_merge_rule(a: EdgeStats, b: EdgeStats):
    merged = a.copy()
    merged.merge(b)
    for f in STAT_FIELDS:
        mine, theirs, got = getattr(a, f.name), getattr(b, f.name), getattr(merged, f.name)
        rule = f.metadata["merge"]
        if rule is Merge.SUM:
            assert got == mine + theirs
        elif rule is Merge.MIN:
            assert got == min(mine, theirs)
        elif rule is Merge.MAX:
            assert got == max(mine, theirs) or (f.name == "names_overflow" and got)
        elif rule is Merge.FIRST:
            assert got == mine
        else:
            assert got == tuple(sorted(set(mine) | set(theirs)))[:MAX_DST_NAMES]


@given(_stats)
def test_an_edge_survives_its_json_record(stats: EdgeStats):
    edge = Edge(Edge.of(Endpoint.of(Workload("ns", "Deployment", "a")), Endpoint(EndpointKind.WORLD, address="192.0.2.1"),
                        443, "TCP").key, stats)
    back = Edge.from_record(json.loads(json.dumps(edge.to_record())))
    assert back == edge


_ends = st.sampled_from([Endpoint.of(Workload("ns", "Deployment", n)) for n in "abc"]
                        + [Endpoint(EndpointKind.WORLD, address="192.0.2.1")])
_rows = st.lists(st.tuples(_ends, _ends, st.sampled_from([80, 443]), _stats, st.booleans()), min_size=1, max_size=12)


@settings(deadline=None, max_examples=30)  # every commit is fsync'd
@given(_rows)
def test_a_group_commit_coalesces_rows_as_separate_commits_merge_them(rows):
    """The writer merges the rows of one group commit per edge (coalesce) before its upsert: the stored edges
    are those of one commit per row, and the rows handed in keep their own stats (the live review reads them)."""
    import tempfile

    from policygen.controller.store import BatchWrite, coalesce

    made = [EdgeRow(Edge(EdgeKey(s, d, port, "TCP"), stats), base) for s, d, port, stats, base in rows]
    before = [(r.edge.to_record(), r.baseline) for r in made]
    merged = coalesce(made)
    assert [(r.edge.to_record(), r.baseline) for r in made] == before
    assert len({r.edge.key for r in merged}) == len(merged)
    with tempfile.TemporaryDirectory() as tmp:
        one, each = open_store(str(Path(tmp) / "one.db")), open_store(str(Path(tmp) / "each.db"))
        try:
            one.write(BatchWrite("n", b"{}", 0, 0, edges=merged))
            for row in made:
                each.write(BatchWrite("n", b"{}", 0, 0, edges=[row]))
            assert [e.to_record() for e in one.edges()] == [e.to_record() for e in each.edges()]
            assert one.baseline_keys() == each.baseline_keys()
        finally:
            one.close()
            each.close()


_ODD = [True, 1.5, "80", None, [1], {"a": 1}, -1, 70000, "", "w:ns/Deployment", "w://", "bogus:1.2.3.4", "tcp", ["x", 1]]


@pytest.mark.parametrize("field", ["port", "protocol", "src", "dst", "connections", "bytes", "packets", "first_seen",
                                   "last_seen", "port_name", "via_service", "dst_names", "names_overflow"])
def test_the_edge_fast_path_judges_as_edge_from_record(field: str):
    """POST /api/v1/edges builds a record of exactly Edge.to_record's types without conversions (and remembers
    its key); any other record goes through Edge.from_record and its checks. Both give the same edges, or both
    refuse the batch with the same message."""
    from unittest import mock

    from policygen.controller import ingest

    edge = Edge(EdgeKey(Endpoint.of(Workload("ns", "Deployment", "a")), Endpoint(EndpointKind.WORLD, address="192.0.2.1"),
                        443, "TCP"), EdgeStats(3, 300, 9, 10.0, 20.0, "https", "ns/svc", ("api.example.com",)))

    def parse(body: bytes) -> list[dict] | str:
        try:
            return [e.to_record() for e in ingest.parse_edge_batch(body).edges]
        except ingest.BatchError as exc:
            return exc.message

    for value in [*_ODD, 10.0, 20, 0]:
        record = {**edge.to_record(), field: value}
        body = json.dumps({"agent": "n", "edges": [edge.to_record(), record]}).encode()
        fast = parse(body)
        with mock.patch.object(ingest, "_plain_edge", lambda record: None):
            assert parse(body) == fast, (field, value)
