"""The controller's durable store: SQLite in WAL mode by default, PostgreSQL for large clusters.

What is kept, and why:
- `batches`: every accepted batch as the agent sent it (zlib-compressed JSON). The raw records are the
  ground truth: they can be re-enriched when the inventory changes (a flow that arrived before the
  watch knew its pod), audited, or replayed into another store. Compressed, a native record costs
  tens of bytes; they are kept for `retention_hours` (default 168; 0 keeps them forever).
- `edges`: the baseline, aggregated per (source endpoint, destination endpoint, port, protocol).
  Endpoints are workloads (namespace/kind/name), never pod IPs, so the baseline survives restarts,
  rescheduling and IP changes. `baseline` is 0 for edges first seen in a monitored namespace.
- `learned`: workloads known only from flow identities (Hubble), with their labels.
- `approvals`, `alerts` (one row per edge, deduplicated), `applied` (policies netguard applied).
- `modes`: per-namespace modes set through the API (`PUT /api/v1/modes/{namespace}`), over the config.
- `dispatched`: the alerts whose notification was sent, one row per edge: replicas sharing PostgreSQL
  claim an alert with INSERT ... ON CONFLICT DO NOTHING before sending it, so it is sent once.
- `applied_digests`: the digest of the policy text last applied per NetworkPolicy, so the automatic
  apply (on the leader) applies a policy again only when its text changed, whichever replica led.
  Both tables are created when missing, on any schema version.

Schema versions: 1 (first), 2 (adds `modes`), 3 (the edge's DNS names: the columns of `edges` are the
fields of netguard.model.EdgeStats), 4 (approvals bound to the digest of the policy text, with who
decided; the `audit` trail of approvals, rejections, applies and deletes). An older store is migrated
when opened.

A batch, its edges and its alerts are written in one transaction; the caller is answered only after
the commit (SQLite: WAL with synchronous=FULL, so the WAL is fsync'd on commit). Writes go through one
writer thread that commits whatever batches are waiting together (group commit): concurrent agents
share an fsync. The same SQL runs on both databases; only the DDL types and two function names differ.
"""

from __future__ import annotations

import json
import operator
import queue
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import Field, dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from netguard.errors import InputError
from netguard.inventory import WorkloadInfo
from netguard.model import STAT_FIELDS, Edge, EdgeKey, EdgeStats, Endpoint, Merge, Workload
from netguard.selectors import match_labels_selector
from policygen.approval import DECISION_ACTION, Approval, AuditAction, AuditEntry, Decision

SCHEMA_VERSION = 4

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    id {serial} PRIMARY KEY, agent TEXT NOT NULL, received {real} NOT NULL,
    records {int} NOT NULL, connections {int} NOT NULL, body {blob} NOT NULL);
{edges_table};
CREATE TABLE IF NOT EXISTS learned (workload TEXT PRIMARY KEY, labels TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS approvals (workload TEXT PRIMARY KEY, decision TEXT NOT NULL, updated {real} NOT NULL,
    digest TEXT NOT NULL DEFAULT '', policy_text TEXT NOT NULL DEFAULT '', actor TEXT NOT NULL DEFAULT '');
{audit_table};
CREATE TABLE IF NOT EXISTS alerts (
    id {serial} PRIMARY KEY, src TEXT NOT NULL, dst TEXT NOT NULL, port {int} NOT NULL, protocol TEXT NOT NULL,
    namespace TEXT NOT NULL, mode TEXT NOT NULL, reasons TEXT NOT NULL,
    first_seen {real} NOT NULL, last_seen {real} NOT NULL, count {int} NOT NULL,
    UNIQUE (src, dst, port, protocol));
CREATE TABLE IF NOT EXISTS applied (ref TEXT PRIMARY KEY, workload TEXT NOT NULL, applied {real} NOT NULL);
CREATE TABLE IF NOT EXISTS modes (namespace TEXT PRIMARY KEY, mode TEXT NOT NULL, updated {real} NOT NULL);
CREATE TABLE IF NOT EXISTS dispatched (
    src TEXT NOT NULL, dst TEXT NOT NULL, port {int} NOT NULL, protocol TEXT NOT NULL, claimed_by TEXT NOT NULL,
    sent {real} NOT NULL, PRIMARY KEY (src, dst, port, protocol));
CREATE TABLE IF NOT EXISTS applied_digests (ref TEXT PRIMARY KEY, digest TEXT NOT NULL, applied {real} NOT NULL);
"""
# What each version adds, run in order on an older store (in the schema transaction). A new store gets
# _DDL, which has everything.
_MIGRATIONS = {
    2: """CREATE TABLE IF NOT EXISTS modes (namespace TEXT PRIMARY KEY, mode TEXT NOT NULL, updated {real} NOT NULL)""",
    3: "{add_dst_names};{add_names_overflow}",  # the edge's DNS names, dropped by versions 1 and 2
    4: "ALTER TABLE approvals ADD COLUMN digest TEXT NOT NULL DEFAULT '';"  # approvals bound to the text
       "ALTER TABLE approvals ADD COLUMN policy_text TEXT NOT NULL DEFAULT '';"
       "ALTER TABLE approvals ADD COLUMN actor TEXT NOT NULL DEFAULT '';{audit_table}",
}
_AUDIT_TABLE = ("CREATE TABLE IF NOT EXISTS audit (id {serial} PRIMARY KEY, at {real} NOT NULL, action TEXT NOT NULL, "
                "workload TEXT NOT NULL, ref TEXT NOT NULL, digest TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL)")
_TYPES = {
    "sqlite": {"serial": "INTEGER", "real": "REAL", "int": "INTEGER", "blob": "BLOB"},
    "postgres": {"serial": "BIGSERIAL", "real": "DOUBLE PRECISION", "int": "BIGINT", "blob": "BYTEA"},
}
_FUNCS = {"sqlite": {"least": "min", "greatest": "max"}, "postgres": {"least": "LEAST", "greatest": "GREATEST"}}

# --- the edges table, derived from the one Edge record --------------------------------------------------
# Columns: the EdgeKey (endpoints as Endpoint.key), then every EdgeStats field by its name, then `baseline`.
# The upsert merges each stats column as its field's Merge says; names are merged in Python first
# (_merge_stored_names), as a bounded sorted union is not SQL.

_KEY_COLUMNS = ("src", "dst", "port", "protocol")
STAT_COLUMNS = tuple(f.name for f in STAT_FIELDS)
OWN_IDS = 100_000  # own batch ids remembered (Store.own_ids)
EDGE_COLUMNS = (*_KEY_COLUMNS, *STAT_COLUMNS, "baseline")


def _kind(f: Field) -> str:
    """An EdgeStats field's type name (the annotations are strings: `from __future__ import annotations`)."""
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")


def _column_type(f: Field) -> str:
    kind = _kind(f)
    if kind.startswith("tuple"):
        return "TEXT NOT NULL DEFAULT ''"  # comma-joined (DNS names never hold a comma)
    return {"int": "{int} NOT NULL DEFAULT 0", "bool": "{int} NOT NULL DEFAULT 0", "float": "{real} NOT NULL DEFAULT 0",
            "str": "TEXT NOT NULL DEFAULT ''"}[kind]


def _edges_table() -> str:
    stats = ", ".join(f"{f.name} {_column_type(f)}" for f in STAT_FIELDS)
    return ("CREATE TABLE IF NOT EXISTS edges (src TEXT NOT NULL, dst TEXT NOT NULL, port {int} NOT NULL, "
            f"protocol TEXT NOT NULL, {stats}, baseline {{int}} NOT NULL, PRIMARY KEY (src, dst, port, protocol))")


def _add_column(name: str) -> str:
    f = next(f for f in STAT_FIELDS if f.name == name)
    return f"ALTER TABLE edges ADD COLUMN {name} {_column_type(f)}"


_MERGE_SQL = {
    Merge.SUM: "{c} = edges.{c} + excluded.{c}",
    Merge.MIN: "{c} = {{least}}(edges.{c}, excluded.{c})",
    Merge.MAX: "{c} = {{greatest}}(edges.{c}, excluded.{c})",
    Merge.NAMES: "{c} = CASE WHEN excluded.{c} = '' THEN edges.{c} ELSE excluded.{c} END",
}


def _upsert_edge(rows: int = 1) -> str:
    """The edges' upsert of `rows` rows (one VALUES tuple each; their keys must differ: coalesce first)."""
    updates = [_MERGE_SQL[f.metadata["merge"]].format(c=f.name) for f in STAT_FIELDS if f.metadata["merge"] in _MERGE_SQL]
    updates.append("baseline = {greatest}(edges.baseline, excluded.baseline)")
    values = ", ".join([f"({', '.join('?' * len(EDGE_COLUMNS))})"] * rows)
    return (f"INSERT INTO edges ({', '.join(EDGE_COLUMNS)}) VALUES {values} "
            f"ON CONFLICT (src, dst, port, protocol) DO UPDATE SET {', '.join(updates)}")


_DDL = _DDL.replace("{edges_table}", _edges_table()).replace("{audit_table}", _AUDIT_TABLE)
_MIGRATIONS[4] = _MIGRATIONS[4].replace("{audit_table}", _AUDIT_TABLE)
_MIGRATIONS[3] = _MIGRATIONS[3].format(add_dst_names=_add_column("dst_names"),
                                       add_names_overflow=_add_column("names_overflow"))
_UPSERT_EDGE = _upsert_edge()
_UPSERT_ALERT = """
INSERT INTO alerts (src, dst, port, protocol, namespace, mode, reasons, first_seen, last_seen, count)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (src, dst, port, protocol) DO UPDATE SET
    count = alerts.count + excluded.count,
    reasons = excluded.reasons,
    last_seen = {greatest}(alerts.last_seen, excluded.last_seen)
"""


# --- endpoint keys -------------------------------------------------------------------------------


def endpoint_key(endpoint: Endpoint) -> str:
    return endpoint.key


def parse_endpoint_key(key: str) -> Endpoint:
    return Endpoint.parse(key)


def parse_workload_key(key: str) -> Workload:
    parts = key.split("/")
    if len(parts) != 3 or not all(parts):
        raise InputError(f"workload {key!r}: expected namespace/Kind/name")
    return Workload(*parts)


# --- what one batch writes -----------------------------------------------------------------------


@dataclass
class EdgeRow:
    edge: Edge
    baseline: bool


@dataclass
class AlertRow:
    key: EdgeKey
    namespace: str
    mode: str
    reasons: list[str]
    time: float
    count: int = 1


@dataclass
class BatchWrite:
    agent: str
    body: bytes  # the request body as received
    records: int
    connections: int
    edges: list[EdgeRow] = field(default_factory=list)
    learned: list[WorkloadInfo] = field(default_factory=list)
    alerts: list[AlertRow] = field(default_factory=list)
    seq: int = 0  # set at commit: the store's commit sequence number (Store.seq)
    batch_id: int = 0  # set at commit: its row in `batches` (replicas tell their own commits from others')


_STATS = operator.attrgetter(*STAT_COLUMNS)  # an EdgeStats' values in column order
_JOINED = tuple(i for i, f in enumerate(STAT_FIELDS) if _kind(f).startswith("tuple"))  # comma-joined columns
_FLAGS = tuple(i for i, f in enumerate(STAT_FIELDS) if _kind(f) == "bool")  # 0/1 columns


def _edge_params(row: EdgeRow) -> tuple:
    """The upsert's parameters: the key's columns, the stats' columns (EDGE_COLUMNS' order), baseline."""
    k = row.edge.key
    values = list(_STATS(row.edge.stats))
    for i in _JOINED:
        values[i] = ",".join(values[i])
    for i in _FLAGS:
        values[i] = int(values[i])
    return (k.src.key, k.dst.key, k.port, k.protocol, *values, int(row.baseline))


def coalesce(rows: list[EdgeRow]) -> list[EdgeRow]:
    """Rows of one edge (a group commit holds several agents' batches) merged into one, with the one
    EdgeStats.merge, so the store upserts each edge once per commit. The rows' own stats are not changed."""
    out: dict[EdgeKey, EdgeRow] = {}
    shared: set[EdgeKey] = set()  # keys whose row in `out` still holds a caller's stats object
    for row in rows:
        key = row.edge.key
        mine = out.get(key)
        if mine is None:
            out[key] = row
            shared.add(key)
            continue
        if key in shared:
            mine = out[key] = EdgeRow(Edge(key, mine.edge.stats.copy()), mine.baseline)
            shared.discard(key)
        mine.edge.stats.merge(row.edge.stats)
        mine.baseline = mine.baseline or row.baseline
    return list(out.values())


def _edge_from_row(row: tuple) -> Edge:
    s, d, port, proto, *values = row
    stats = EdgeStats(*(_from_column(f, v) for f, v in zip(STAT_FIELDS, values, strict=True)))
    return Edge(EdgeKey(Endpoint.parse(s), Endpoint.parse(d), int(port), proto), stats)


def _from_column(f: Field, value: Any) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
    if kind.startswith("tuple"):
        return tuple(value.split(",")) if value else ()
    return {"int": int, "bool": bool, "float": float, "str": str}[kind](value)


def _alert_params(row: AlertRow) -> tuple:
    k = row.key
    return (endpoint_key(k.src), endpoint_key(k.dst), k.port, k.protocol, row.namespace, row.mode,
            json.dumps(row.reasons), row.time, row.time, row.count)


# --- the store -----------------------------------------------------------------------------------


class Store:
    """Open with `open_store(url)`. Reads may come from any thread; writes go through `submit`."""

    dialect = "sqlite"
    _lock_row = ""  # PostgreSQL: FOR UPDATE (replicas writing names of one edge at once)

    def __init__(self) -> None:
        self._read_lock = threading.Lock()
        self._queue: queue.Queue[tuple[Any, Future] | None] = queue.Queue()  # (BatchWrite or job, future)
        self._writer: threading.Thread | None = None
        self.max_group = 64  # batches committed together at most
        self.retention: float = 0.0  # seconds raw batches are kept (0: forever); edges are kept regardless
        self.prune_every: float = 60.0
        self._pruned_at = time.monotonic()
        self.may_prune: Any = lambda: True  # replicas sharing a database: only the leader prunes
        self.seq = 0  # commits so far (by the writer thread): what a reader's snapshot includes
        # ids of the batches this store inserted (the latest OWN_IDS), recorded before their commit: a
        # replica tells its own commits from the others' even before it heard of its own
        self.own_ids: dict[int, None] = {}

    # -- connections (per dialect) --
    def _connect(self) -> Any:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql.format(**_FUNCS[self.dialect])

    def _init_schema(self, conn: Any) -> None:
        cur = conn.cursor()
        cur.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        cur.execute(self._q("SELECT value FROM meta WHERE key = ?"), ("schema_version",))
        row = cur.fetchone()
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            conn.rollback()
            raise InputError(f"the store's schema is version {row[0]}; this netguard knows up to {SCHEMA_VERSION}")
        self._run_ddl(cur, _DDL)  # every table of a new store (CREATE IF NOT EXISTS: nothing for an old one)
        if row is None:
            cur.execute(self._q("INSERT INTO meta (key, value) VALUES (?, ?)"), ("schema_version", str(SCHEMA_VERSION)))
        else:
            for version in range(int(row[0]) + 1, SCHEMA_VERSION + 1):
                self._run_ddl(cur, _MIGRATIONS[version])
                cur.execute(self._q("UPDATE meta SET value = ? WHERE key = ?"), (str(version), "schema_version"))
        conn.commit()

    def _run_ddl(self, cur: Any, ddl: str) -> None:
        for statement in ddl.format(**_TYPES[self.dialect]).split(";"):
            if statement.strip() and not self._column_exists(cur, statement):
                cur.execute(statement)

    def _column_exists(self, cur: Any, statement: str) -> bool:
        """An `ALTER TABLE t ADD COLUMN c` whose column is there (a table the same run just created)."""
        words = statement.split()
        if words[:2] != ["ALTER", "TABLE"] or words[3:5] != ["ADD", "COLUMN"]:
            return False
        return words[5] in self._columns(cur, words[2])

    def _columns(self, cur: Any, table: str) -> set[str]:
        cur.execute(f"PRAGMA table_info({table})")
        return {row[1] for row in cur.fetchall()}

    def schema_version(self) -> int:
        (value,), = self._all("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(value)

    def _q(self, sql: str) -> str:
        return sql

    def start(self) -> Store:
        self._reader = self._connect()
        self._init_schema(self._reader)
        self._writer = threading.Thread(target=self._write_loop, name="netguard-store-writer", daemon=True)
        self._writer_conn = self._connect()
        self._writer.start()
        return self

    def close(self) -> None:
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout=10)
            self._writer = None
            self._writer_conn.close()
            self._reader.close()

    # -- writes --
    def submit(self, write: BatchWrite) -> Future:
        """Queue a batch; the future resolves (to the batch id) once it is committed."""
        fut: Future = Future()
        self._queue.put((write, fut))
        return fut

    def write(self, write: BatchWrite) -> int:
        return self.submit(write).result()

    def run_exclusive(self, job: Any) -> Future:
        """Run `job(conn, store)` in the writer thread between batches (nothing else writes meanwhile);
        it commits itself. The future resolves to its result."""
        fut: Future = Future()
        self._queue.put((job, fut))
        return fut

    def _write_loop(self) -> None:
        conn = self._writer_conn
        pending = None
        while True:
            item = pending if pending is not None else self._queue.get()
            pending = None
            if item is None:
                return
            if callable(item[0]):
                job, fut = item  # type: ignore[misc]
                try:
                    fut.set_result(job(conn, self))
                except Exception as exc:
                    try:
                        conn.rollback()
                    except Exception:
                        pass
                    fut.set_exception(exc)
                continue
            group = [item]
            while len(group) < self.max_group:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None or callable(nxt[0]):
                    pending = nxt  # a stop or a job: after this group
                    break
                group.append(nxt)
            try:
                ids = self._write_group(conn, [w for w, _ in group])
            except Exception as exc:  # the whole group failed: every caller hears it, nothing was acknowledged
                try:
                    conn.rollback()
                except Exception:
                    pass
                for _, fut in group:
                    fut.set_exception(exc)
                continue
            self.seq += 1
            for (write, fut), batch_id in zip(group, ids, strict=True):
                write.seq, write.batch_id = self.seq, batch_id
                fut.set_result(batch_id)
            if self.retention and self.may_prune() and time.monotonic() - self._pruned_at >= self.prune_every:
                self._pruned_at = time.monotonic()
                try:
                    self.prune(conn)
                except Exception:  # pruning is housekeeping: a failure must not stop ingest
                    conn.rollback()

    def prune(self, conn: Any = None, now: float | None = None) -> int:
        """Delete raw batches older than the retention (the aggregated edges stay)."""
        if not self.retention:
            return 0
        cutoff = (time.time() if now is None else now) - self.retention
        if conn is None:
            with self._read_lock:
                return self._prune(self._reader, cutoff)
        return self._prune(conn, cutoff)

    def _prune(self, conn: Any, cutoff: float) -> int:
        cur = conn.cursor()
        cur.execute(self._q("DELETE FROM batches WHERE received < ?"), (cutoff,))
        removed = max(cur.rowcount, 0)
        if removed:
            cur.execute(self._q("INSERT INTO meta (key, value) VALUES ('pruned', ?) "
                                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"), (str(cutoff),))
        conn.commit()
        return removed

    def pruned(self) -> bool:
        """Whether raw batches were ever pruned (then the edges hold more than the raw batches)."""
        return bool(self._all("SELECT value FROM meta WHERE key = 'pruned'"))

    def replace_edges(self, conn: Any, edges: list[EdgeRow], learned: list[WorkloadInfo]) -> None:
        """The baseline rebuilt: every edge replaced (call from a job in the writer thread)."""
        cur = conn.cursor()
        cur.execute("DELETE FROM edges")
        if edges:
            self._upsert_edges(cur, [_edge_params(r) for r in edges])
        rows = sorted({i.workload.key: json.dumps(dict(i.labels)) for i in learned}.items())
        if rows:
            cur.executemany(self._q("INSERT INTO learned (workload, labels) VALUES (?, ?) ON CONFLICT (workload) DO NOTHING"),
                            rows)
        conn.commit()

    def batch_bodies(self, conn: Any) -> Iterator[bytes]:
        """Every retained batch body, oldest first, through `conn` (the writer's, in a job)."""
        last = 0
        while True:
            cur = conn.cursor()
            cur.execute(self._q("SELECT id, body FROM batches WHERE id > ? ORDER BY id LIMIT 100"), (last,))
            rows = cur.fetchall()
            if not rows:
                return
            for batch_id, body in rows:
                last = int(batch_id)
                yield zlib.decompress(bytes(body))

    def _write_group(self, conn: Any, writes: list[BatchWrite]) -> list[int]:
        cur = conn.cursor()
        ids = []
        now = time.time()
        for w in writes:
            ids.append(self._insert_batch(cur, w, now))
        self.own_ids.update(dict.fromkeys(ids))
        while len(self.own_ids) > OWN_IDS:
            del self.own_ids[next(iter(self.own_ids))]
        rows = [r for w in writes for r in w.edges]
        if len(writes) > 1:
            rows = coalesce(rows)  # one row per edge (PostgreSQL's multi-row upsert needs it too)
        edges = [_edge_params(r) for r in self._merge_stored_names(cur, rows)]
        if edges:
            self._upsert_edges(cur, edges)
        learned = {info.workload.key: json.dumps(dict(info.labels)) for w in writes for info in w.learned}
        if learned:
            cur.executemany(self._q("INSERT INTO learned (workload, labels) VALUES (?, ?) ON CONFLICT (workload) DO NOTHING"),
                            sorted(learned.items()))
        alerts = [_alert_params(r) for w in writes for r in w.alerts]
        if alerts:
            cur.executemany(self._q(self._sql(_UPSERT_ALERT)), alerts)
        conn.commit()
        return ids

    def _upsert_edges(self, cur: Any, params: list[tuple]) -> None:
        """Upsert edge rows of distinct keys. SQLite: executemany (in-process, no round trips)."""
        cur.executemany(self._q(self._sql(_UPSERT_EDGE)), params)

    def _merge_stored_names(self, cur: Any, rows: list[EdgeRow]) -> list[EdgeRow]:
        """Rows carrying DNS names get the names stored (and those of earlier rows of this group) merged
        in with EdgeStats.add_names, in this transaction; the upsert then writes the union. Few rows
        carry names (outside destinations only)."""
        union: dict[EdgeKey, EdgeStats] = {}
        out = []
        for row in rows:
            if row.edge.dst_names:
                k = row.edge.key
                names = union.get(k)
                if names is None:
                    names = union[k] = EdgeStats()
                    cur.execute(self._q("SELECT dst_names, names_overflow FROM edges WHERE src = ? AND dst = ? AND port = ? "
                                        "AND protocol = ?" + self._lock_row), (k.src.key, k.dst.key, k.port, k.protocol))
                    stored = cur.fetchone()
                    if stored is not None and stored[0]:
                        names.add_names(tuple(stored[0].split(",")), bool(stored[1]))
                names.add_names(row.edge.dst_names, row.edge.names_overflow)
                stats = row.edge.stats.copy()
                stats.dst_names, stats.names_overflow = names.dst_names, names.names_overflow
                row = EdgeRow(Edge(k, stats), row.baseline)
            out.append(row)
        return out

    def _insert_batch(self, cur: Any, w: BatchWrite, now: float) -> int:
        cur.execute(self._q("INSERT INTO batches (agent, received, records, connections, body) VALUES (?, ?, ?, ?, ?)"),
                    (w.agent, now, w.records, w.connections, zlib.compress(w.body, 1)))
        return int(cur.lastrowid)

    def _direct(self, sql: str, params: tuple = ()) -> None:
        """A small write outside the batch path (approvals, applied): committed before returning."""
        with self._read_lock:
            cur = self._reader.cursor()
            cur.execute(self._q(sql), params)
            self._reader.commit()

    # -- reads --
    def _all(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._read_lock:
            cur = self._reader.cursor()
            cur.execute(self._q(sql), params)
            rows = cur.fetchall()
            self._reader.commit()  # end the read transaction: the next read sees new commits
            return [tuple(r) for r in rows]

    def edges(self, baseline_only: bool = False) -> list[Edge]:
        sql = (f"SELECT {', '.join((*_KEY_COLUMNS, *STAT_COLUMNS))} FROM edges"
               + (" WHERE baseline = 1" if baseline_only else ""))
        return sorted((_edge_from_row(r) for r in self._all(sql)), key=lambda e: e.key)

    def edges_with_baseline(self) -> list[tuple[Edge, bool]]:
        sql = f"SELECT {', '.join((*_KEY_COLUMNS, *STAT_COLUMNS))}, baseline FROM edges"
        return [(_edge_from_row(r[:-1]), bool(r[-1])) for r in self._all(sql)]

    def baseline_keys(self) -> set[EdgeKey]:
        return {
            EdgeKey(parse_endpoint_key(s), parse_endpoint_key(d), int(port), proto)
            for s, d, port, proto in self._all("SELECT src, dst, port, protocol FROM edges WHERE baseline = 1")
        }

    def learned(self) -> list[WorkloadInfo]:
        out = []
        for key, labels in self._all("SELECT workload, labels FROM learned ORDER BY workload"):
            lab = json.loads(labels)
            out.append(WorkloadInfo(parse_workload_key(key), tuple(sorted(lab.items())), match_labels_selector(lab)))
        return out

    def ping(self) -> None:
        """Cheap: the database answers (readiness)."""
        self._all("SELECT 1")

    def counts(self) -> dict[str, int]:
        (batches, records, connections), = self._all(
            "SELECT COUNT(*), COALESCE(SUM(records), 0), COALESCE(SUM(connections), 0) FROM batches")
        (edges,), = self._all("SELECT COUNT(*) FROM edges")
        (alerts,), = self._all("SELECT COUNT(*) FROM alerts")
        return {"batches": int(batches), "records": int(records), "connections": int(connections),
                "edges": int(edges), "alerts": int(alerts)}

    def iter_records(self) -> Iterator[dict]:
        """Every stored flow record, in arrival order (for re-enrichment and audits)."""
        last = 0
        while True:
            rows = self._all("SELECT id, body FROM batches WHERE id > ? ORDER BY id LIMIT 100", (last,))
            if not rows:
                return
            for batch_id, body in rows:
                last = int(batch_id)
                yield from json.loads(zlib.decompress(bytes(body))).get("flows", [])  # edge batches hold none

    def approvals(self) -> dict[str, Approval]:
        rows = self._all("SELECT workload, decision, digest, policy_text, actor, updated FROM approvals")
        return {w: Approval(w, Decision(d), digest, text, actor, float(at)) for w, d, digest, text, actor, at in rows}

    def set_approval(self, approval: Approval) -> None:
        """Store a decision and its audit entry in one transaction."""
        a = approval
        with self._read_lock:
            cur = self._reader.cursor()
            cur.execute(self._q(
                "INSERT INTO approvals (workload, decision, updated, digest, policy_text, actor) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (workload) DO UPDATE SET decision = excluded.decision, updated = excluded.updated, "
                "digest = excluded.digest, policy_text = excluded.policy_text, actor = excluded.actor"),
                (a.workload, str(a.decision), a.when, a.digest, a.text, a.who))
            self._insert_audit(cur, AuditEntry(a.when, DECISION_ACTION[a.decision], a.workload, "", a.digest, a.who))
            self._reader.commit()

    def add_audit(self, entry: AuditEntry) -> None:
        with self._read_lock:
            cur = self._reader.cursor()
            self._insert_audit(cur, entry)
            self._reader.commit()

    def _insert_audit(self, cur: Any, e: AuditEntry) -> None:
        cur.execute(self._q("INSERT INTO audit (at, action, workload, ref, digest, actor, detail) VALUES (?, ?, ?, ?, ?, ?, ?)"),
                    (e.at, str(e.action), e.workload, e.ref, e.digest, e.actor, e.detail))

    def audit(self, limit: int = 500, workload: str = "") -> list[AuditEntry]:
        """The newest entries first."""
        where, params = (" WHERE workload = ?", (workload,)) if workload else ("", ())
        rows = self._all(f"SELECT id, at, action, workload, ref, digest, actor, detail FROM audit{where} "
                         f"ORDER BY id DESC LIMIT {int(limit)}", params)
        return [AuditEntry(float(at), AuditAction(action), w, ref, digest, actor, detail, int(i))
                for i, at, action, w, ref, digest, actor, detail in rows]

    def modes(self) -> dict[str, str]:
        """Namespace -> mode set through the API."""
        return dict(self._all("SELECT namespace, mode FROM modes"))

    def set_mode(self, namespace: str, mode: str) -> None:
        self._direct("INSERT INTO modes (namespace, mode, updated) VALUES (?, ?, ?) "
                     "ON CONFLICT (namespace) DO UPDATE SET mode = excluded.mode, updated = excluded.updated",
                     (namespace, mode, time.time()))

    def clear_mode(self, namespace: str) -> bool:
        """Drop a namespace's API mode; whether there was one."""
        with self._read_lock:
            cur = self._reader.cursor()
            cur.execute(self._q("DELETE FROM modes WHERE namespace = ?"), (namespace,))
            removed = max(cur.rowcount, 0)
            self._reader.commit()
        return bool(removed)

    def alerts(self) -> list[dict]:
        rows = self._all("SELECT id, src, dst, port, protocol, namespace, mode, reasons, first_seen, last_seen, count "
                         "FROM alerts ORDER BY id")
        return [
            {"id": int(i), "source": str(parse_endpoint_key(s)), "target": str(parse_endpoint_key(d)),
             "source_key": s, "target_key": d, "port": int(port), "protocol": proto, "namespace": ns, "mode": mode,
             "reasons": json.loads(reasons), "first_seen": float(f), "last_seen": float(last), "count": int(c)}
            for i, s, d, port, proto, ns, mode, reasons, f, last, c in rows
        ]

    def alert_keys(self) -> set[EdgeKey]:
        return {
            EdgeKey(parse_endpoint_key(s), parse_endpoint_key(d), int(port), proto)
            for s, d, port, proto in self._all("SELECT src, dst, port, protocol FROM alerts")
        }

    def record_applied(self, ref: str, workload: str) -> None:
        self._direct("INSERT INTO applied (ref, workload, applied) VALUES (?, ?, ?) "
                     "ON CONFLICT (ref) DO UPDATE SET workload = excluded.workload, applied = excluded.applied",
                     (ref, workload, time.time()))

    def forget_applied(self, ref: str) -> None:
        self._direct("DELETE FROM applied WHERE ref = ?", (ref,))
        self._direct("DELETE FROM applied_digests WHERE ref = ?", (ref,))

    def applied(self) -> dict[str, str]:
        return dict(self._all("SELECT ref, workload FROM applied"))

    # -- several replicas on one database --
    def change_stamp(self) -> tuple:
        """Cheap: changes when any replica commits a batch, an approval or a mode (what a replica caches)."""
        (stamp,) = self._all("SELECT (SELECT COALESCE(MAX(id), 0) FROM batches), "
                             "(SELECT COUNT(*) FROM approvals), (SELECT COALESCE(MAX(updated), 0) FROM approvals), "
                             "(SELECT COUNT(*) FROM modes), (SELECT COALESCE(MAX(updated), 0) FROM modes)")
        return tuple(stamp)

    def batch_ids_after(self, last: int) -> list[int]:
        """Ids of the batches committed after `last` (by any replica)."""
        return [int(i) for (i,) in self._all("SELECT id FROM batches WHERE id > ?", (last,))]

    def batch_bodies_by_id(self, ids: list[int]) -> list[tuple[int, bytes]]:
        """(id, body) of these batches (those still retained), in id order."""
        out: list[tuple[int, bytes]] = []
        for start in range(0, len(ids), 100):
            chunk = ids[start:start + 100]
            rows = self._all(f"SELECT id, body FROM batches WHERE id IN ({', '.join('?' * len(chunk))}) ORDER BY id",
                             tuple(chunk))
            out.extend((int(i), zlib.decompress(bytes(body))) for i, body in rows)
        return out

    def edges_snapshot(self, window: int) -> tuple[list[tuple[Edge, bool]], list[int]]:
        """Every edge with its baseline flag, and the ids of the batches among the last `window` ids that
        they include, read in one snapshot (other replicas commit meanwhile: on PostgreSQL, REPEATABLE READ)."""
        sql = f"SELECT {', '.join((*_KEY_COLUMNS, *STAT_COLUMNS))}, baseline FROM edges"
        with self._read_lock:
            cur = self._reader.cursor()
            if self.dialect == "postgres":
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute(sql)
            rows = cur.fetchall()
            cur.execute(self._q("SELECT id FROM batches WHERE id > (SELECT COALESCE(MAX(id), 0) FROM batches) - ?"),
                        (window,))
            ids = [int(i) for (i,) in cur.fetchall()]
            self._reader.commit()
        return [(_edge_from_row(tuple(r[:-1])), bool(r[-1])) for r in rows], ids

    def baseline_among(self, keys: list[EdgeKey]) -> set[EdgeKey]:
        """Which of `keys` another replica recorded into the baseline."""
        found: set[EdgeKey] = set()
        for key in keys:
            rows = self._all("SELECT baseline FROM edges WHERE src = ? AND dst = ? AND port = ? AND protocol = ?",
                             (endpoint_key(key.src), endpoint_key(key.dst), key.port, key.protocol))
            if rows and int(rows[0][0]):
                found.add(key)
        return found

    def mark_dispatch_start(self) -> None:
        """Alerts stored before dispatch was recorded (an older store) are not sent again."""
        self._direct("INSERT INTO meta (key, value) SELECT 'dispatch_after', CAST(COALESCE(MAX(id), 0) AS TEXT) "
                     "FROM alerts WHERE true ON CONFLICT (key) DO NOTHING")  # WHERE: SQLite parses the upsert after it

    def claim_alerts(self, by: str, limit: int = 500) -> list[AlertRow]:
        """Alerts not yet sent, each claimed for `by` in the database (INSERT ... ON CONFLICT DO NOTHING: of
        two replicas claiming one alert, one gets it). Claimed means sent: a claimer that dies before
        sending loses that notification (the alert stays in /api/v1/alerts), it never sends twice."""
        rows = self._all(
            "SELECT a.src, a.dst, a.port, a.protocol, a.namespace, a.mode, a.reasons, a.last_seen, a.count FROM alerts a "
            "WHERE a.id > (SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'dispatch_after') AND NOT EXISTS "
            "(SELECT 1 FROM dispatched d WHERE d.src = a.src AND d.dst = a.dst AND d.port = a.port AND d.protocol = a.protocol)"
            " ORDER BY a.id LIMIT ?", (limit,))
        claimed = []
        now = time.time()
        with self._read_lock:
            cur = self._reader.cursor()
            for src, dst, port, proto, ns, mode, reasons, last, count in rows:
                cur.execute(self._q("INSERT INTO dispatched (src, dst, port, protocol, claimed_by, sent) "
                                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (src, dst, port, protocol) DO NOTHING"),
                            (src, dst, port, proto, by, now))
                if cur.rowcount == 1:
                    key = EdgeKey(parse_endpoint_key(src), parse_endpoint_key(dst), int(port), proto)
                    claimed.append(AlertRow(key, ns, mode, json.loads(reasons), float(last), int(count)))
            self._reader.commit()
        return claimed

    def applied_digests(self) -> dict[str, str]:
        return dict(self._all("SELECT ref, digest FROM applied_digests"))

    def record_digest(self, ref: str, digest: str) -> None:
        self._direct("INSERT INTO applied_digests (ref, digest, applied) VALUES (?, ?, ?) "
                     "ON CONFLICT (ref) DO UPDATE SET digest = excluded.digest, applied = excluded.applied",
                     (ref, digest, time.time()))

    def size_bytes(self) -> int:
        raise NotImplementedError


class SQLiteStore(Store):
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # fsync the WAL on every commit: acknowledged means on disk
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def size_bytes(self) -> int:
        import os

        with self._read_lock:
            self._reader.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return os.path.getsize(self.path)


UPSERT_ROWS = 512  # edges a PostgreSQL upsert statement (14 parameters each: well under the protocol's 65,535)
_UPSERT_SQL: dict[int, str] = {}  # rows -> the statement, made once per size


class PostgresStore(Store):
    """PostgreSQL through pg8000 (pure Python, BSD). URL: postgresql://user:password@host:port/database."""

    dialect = "postgres"
    _lock_row = " FOR UPDATE"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def _connect(self) -> Any:
        import pg8000.dbapi

        u = urlparse(self.url)
        return pg8000.dbapi.connect(
            user=unquote(u.username or "postgres"), password=unquote(u.password) if u.password else None,
            host=u.hostname or "127.0.0.1", port=u.port or 5432, database=(u.path or "/postgres").lstrip("/") or "postgres",
        )

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _columns(self, cur: Any, table: str) -> set[str]:
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,))
        return {row[0] for row in cur.fetchall()}

    def _upsert_edges(self, cur: Any, params: list[tuple]) -> None:
        """pg8000's executemany is one round trip a row: upsert UPSERT_ROWS rows a statement instead (the keys of
        one statement must differ: the writer coalesces a group's rows first)."""
        start = 0
        while start < len(params):  # chunks of UPSERT_ROWS, the rest in powers of two: a dozen statements in all
            left = len(params) - start
            size = UPSERT_ROWS if left >= UPSERT_ROWS else 1 << (left.bit_length() - 1)
            chunk = params[start:start + size]
            start += size
            sql = _UPSERT_SQL.get(len(chunk))
            if sql is None:
                sql = _UPSERT_SQL[len(chunk)] = self._q(self._sql(_upsert_edge(len(chunk))))
            cur.execute(sql, tuple(value for row in chunk for value in row))

    def _insert_batch(self, cur: Any, w: BatchWrite, now: float) -> int:
        cur.execute("INSERT INTO batches (agent, received, records, connections, body) VALUES (%s, %s, %s, %s, %s) RETURNING id",
                    (w.agent, now, w.records, w.connections, zlib.compress(w.body, 1)))
        return int(cur.fetchone()[0])

    def size_bytes(self) -> int:
        (size,), = self._all("SELECT pg_database_size(current_database())")
        return int(size)


def open_store(url: str, retention_hours: float = 0.0) -> Store:
    """`PATH` or `sqlite:///PATH` -> SQLite; `postgresql://...` -> PostgreSQL. Started (schema ready)."""
    if url.startswith(("postgresql://", "postgres://")):
        store: Store = PostgresStore(url)
    else:
        store = SQLiteStore(url.removeprefix("sqlite://") if url.startswith("sqlite://") else url)
    store.retention = retention_hours * 3600.0
    return store.start()
