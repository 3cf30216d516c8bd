"""The controller's state and verbs, without HTTP: ingest a batch, review, approve, apply, alerts.

The HTTP layer (app.py) is a thin caller of this, and so are the tests. Ingest runs in one thread
(the event loop): parse, enrich against the current inventory snapshot, classify each edge by the
mode of its namespaces (a monitored edge against the approved policies, which a worker thread builds:
approved.py), then hand one BatchWrite to the store and answer after the commit.

Several replicas may share one PostgreSQL. Each ingests and serves reads; a duty thread per replica
picks up what the others committed (approvals, modes, new batches for the review) once a
`duty_interval`, and on the leader (lease.py) runs the singletons: alert dispatch (each alert claimed in
the database, so sent once), the automatic apply (a policy applied again only when its digest changed),
and the pruning of raw batches. A single controller without a Lease is its own leader.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from netguard.enrich import Aggregation, Enricher
from netguard.evaluate import Targets, cluster_policy_set
from netguard.inventory import Inventory, WorkloadInfo, load_inventory
from netguard.model import Edge, EdgeKey, EdgeStats
from policygen.approval import Approval, AuditAction, AuditEntry, ReviewState, canonical_text, review_state
from policygen.approval import Decision as ReviewDecision
from policygen.controller.approved import ApprovedSet, ApprovedSets
from policygen.controller.events import EventHub, EventKind
from policygen.controller.ingest import Batch, EdgeBatch, is_edge_body, parse_batch, parse_edge_batch
from policygen.controller.lease import Always, LeaderElector
from policygen.controller.metrics import Metrics
from policygen.controller.modes import ModeResolver, WebhookSender, alertmanager_payload
from policygen.controller.rendered import Renderings, page_body
from policygen.controller.replicas import WINDOW, BatchCursor
from policygen.controller.settings import MODES, Settings
from policygen.controller.store import AlertRow, BatchWrite, EdgeRow, Store, parse_workload_key
from policygen.graph import annotate_verdicts, build_graph, graph_to_dict
from policygen.live import LiveReview
from policygen.review import DECISIONS, Review, build_review
from policygen.synth import GeneratedPolicy

log = logging.getLogger("netguard.controller")
FREEZE_AFTER = 1000  # policies synthesized between two gc.freeze() (see Controller._settle_heap)


def enrich_batch(enricher: Enricher, batch: Batch) -> Aggregation:
    """The batch's edges: each group of native records counted at once on the edges its enrichment inputs
    resolve to (Enricher.resolve, cached), other flows one by one, in the order each first appeared (the
    first flow of an edge names its port and Service). The same result as Enricher.add per flow."""
    agg = enricher.agg = Aggregation()
    stats, groups, unresolved = agg.stats, batch.groups, agg.unresolved
    resolve, add = enricher.resolve, enricher.add
    for item in batch.flows:
        if type(item) is not tuple:
            add(item)  # type: ignore[arg-type]
            continue
        n, nbytes, packets, first, last = groups[item]  # type: ignore[index]
        edges, where = resolve(*item)
        for key, port_name, via in edges:
            mine = stats.get(key)
            if mine is None:
                stats[key] = EdgeStats(n, nbytes, packets, first, last, port_name, via)
            else:
                mine.merge(EdgeStats(n, nbytes, packets, first, last, port_name, via))
        if where:
            unresolved[where] += n
        agg.flows += n
    return agg


def edges_aggregation(edges: list[Edge]) -> Aggregation:
    """Edges an agent aggregated, as the Aggregation enrichment would have built (merged per key; the
    stats are the batch's own, parsed for it, so they are used, not copied)."""
    agg = Aggregation()
    stats = agg.stats
    for edge in edges:
        mine = stats.get(edge.key)
        if mine is None:
            stats[edge.key] = edge.stats
        else:
            mine.merge(edge.stats)
    agg.flows = sum(e.connections for e in edges)
    return agg


_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def _check_namespace(namespace: str) -> None:
    from netguard.errors import InputError

    if not _NAMESPACE.fullmatch(namespace):
        raise InputError(f"namespace {namespace!r}: not a valid Kubernetes namespace name")


class StaleDigest(Exception):
    """A decision sent for a text that is no longer the policy's: the reviewer must look again."""

    def __init__(self, workload: str, sent: str, current: str) -> None:
        super().__init__(f"{workload}: the policy changed since it was shown ({sent[:19]}…, now {current[:19]}…); "
                         "review the new text")
        self.workload, self.sent, self.current = workload, sent, current


class InventorySource(Protocol):
    def snapshot(self) -> tuple[int, Inventory]: ...

    @property
    def ready(self) -> bool: ...

    def close(self) -> None: ...


class FileInventory:
    """`--inventory` files: read once at start."""

    def __init__(self, paths: list[str]) -> None:
        self.inventory = load_inventory(paths) if paths else Inventory()

    def snapshot(self) -> tuple[int, Inventory]:
        return 0, self.inventory

    @property
    def ready(self) -> bool:
        return True

    def close(self) -> None:
        pass


@dataclass
class Staged:
    """A batch enriched into edges, not yet classified (it may have to wait for the approved set)."""

    agg: Aggregation
    write: BatchWrite


@dataclass
class Prepared:
    write: BatchWrite
    new_alerts: list[AlertRow]
    learned_keys: list[EdgeKey]


class Controller:
    def __init__(self, settings: Settings, store: Store, source: InventorySource, metrics: Metrics | None = None,
                 applier: Any = None, leadership: Always | LeaderElector | None = None) -> None:
        self.settings = settings
        self.store = store
        self.source = source
        self.metrics = metrics or Metrics()
        self.applier = applier  # kube.Applier, or None without a cluster
        self._lock = threading.RLock()
        self._inv_gen = -1
        self._inventory = Inventory()
        self._enricher = Enricher(self._inventory)
        self._api_modes = store.modes()  # namespace -> mode set through the API (over the config)
        self._modes = ModeResolver(settings.default_mode, settings.namespaces, {}, self._api_modes)
        self.baseline = store.baseline_keys()
        self.alerted = store.alert_keys()
        self.approvals = store.approvals()
        self.version = 0  # bumped on every commit and approval: the review cache key
        self._review: tuple[tuple, Review, dict, float] | None = None
        # the approved policies batches of monitored namespaces are judged by, built in a worker thread
        self._approved = ApprovedSets(self._build_approved)
        self._approved_of: tuple[dict, tuple] = ({}, ())  # (approvals, their approved (workload, digest)s sorted)
        self._epoch = 0  # bumped when the edges are replaced (rebuild_baseline): every approved set is stale
        self._ready_once = False  # review_ready answered True once: it does not go back
        self._live: LiveReview | None = None  # built from the store on first read, then updated per commit
        self._live_key: tuple[int, int] = (-1, -1)  # (inventory generation, learned workloads) it was made with
        self._live_lock = threading.Lock()
        self._inventory_lock = threading.Lock()  # one inventory hand-over at a time (live())
        self._frozen_at = 0  # live.synthesized when the heap was last frozen
        self._live_pending: list[BatchWrite] | None = None  # commits seen while it is being built
        self._learned = {i.workload for i in store.learned()}
        # workload -> its latest policy rendered (YAML, canonical text, JSON item), in the background on synthesis
        self._renderings = Renderings(current=lambda w: self._live.kept(w) if self._live is not None else None)
        self._learned_count = 0  # bumped when a batch brings workloads known only from flow identities
        self.webhook = WebhookSender(settings.webhook_url, on_failure=self.metrics.webhook_failures.inc) \
            if settings.webhook_url else None
        self.metrics.edges.set(len(self.baseline))
        self.events = EventHub()
        self.leadership = leadership or Always()
        store.may_prune = lambda: self.leadership.is_leader
        store.mark_dispatch_start()
        self._stamp = store.change_stamp()
        self._cursor = BatchCursor()  # the batches the live review includes (replicas.py)
        self._sync_enricher: tuple[int, Enricher] | None = None  # (inventory generation, the duty thread's own)
        self._reconciled: tuple | None = None
        self._apply_failed: dict[str, str] = {}  # ref -> digest whose apply failed (not retried until it changes)
        self._duty_lock = threading.Lock()
        self._stop = threading.Event()
        self.leadership.start()
        self._duties = threading.Thread(target=self._run_duties, name="netguard-duties", daemon=True)
        self._duties.start()

    def close(self) -> None:
        self._stop.set()
        self._duties.join(timeout=30)
        self._approved.close()
        self.leadership.stop()  # hands the Lease over
        if self.webhook is not None:
            self.webhook.close()
        self.source.close()
        self._renderings.close()
        self.store.close()

    # --- several replicas: sync with the database, and the leader's duties --------------------------------

    def _run_duties(self) -> None:
        while not self._stop.wait(self.settings.duty_interval):
            try:
                self.duties()
            except Exception:  # the database is away for a moment: try again next time
                log.exception("duties failed")

    def duties(self) -> None:
        """Once a duty interval, on every replica: sync; on the leader: dispatch alerts, apply."""
        self.sync()
        self.review_ready()  # after a start, builds what monitored batches are judged by before they ask
        self._settle_heap()
        leading = self.leadership.is_leader
        self.metrics.leader.set(1 if leading else 0)
        if leading:
            self.dispatch_alerts()
            self.reconcile()

    def sync(self) -> None:
        """Pick up what other replicas committed: approvals, modes, and batches. The live review follows
        this replica's own commits in place, and the others' batches are merged into it the same way
        (`pick_up`)."""
        stamp = self.store.change_stamp()
        behind = self._live is not None and self._cursor.behind(int(stamp[0]))
        if stamp == self._stamp and not behind:
            return
        old, self._stamp = self._stamp, stamp
        if stamp[1:3] != old[1:3]:
            with self._lock:
                self.approvals = self.store.approvals()
        if stamp[3:] != old[3:]:
            self._reload_modes()
        if stamp[0] != old[0] or behind:
            self.pick_up()
        with self._lock:
            self.version += 1

    def pick_up(self) -> int:
        """Merge the batches other replicas committed since the live review was built into it, as this
        replica's own commits are: their edges (enriched here, as the rebuild does) mark their workloads
        dirty, and learned edges join the baseline. Returns the number of batches picked up."""
        live, cursor = self._live, self._cursor
        if live is None:
            return 0  # built from the database on the next read
        ids = cursor.unseen(self.store.batch_ids_after(cursor.low))
        own = self.store.own_ids
        foreign = [i for i in ids if i not in own]  # own ones reach the review through committed()
        inventory, _, modes = self._current()
        if self._sync_enricher is None or self._sync_enricher[0] != self._inv_gen:
            self._sync_enricher = (self._inv_gen, Enricher(inventory))
        enricher = self._sync_enricher[1]
        stats: list[tuple[EdgeKey, EdgeStats]] = []
        learned: list[WorkloadInfo] = []
        for _, body in self.store.batch_bodies_by_id(foreign):
            if is_edge_body(body):
                agg = edges_aggregation(parse_edge_batch(body, max_records=1 << 62).edges)
            else:
                agg = enrich_batch(enricher, parse_batch(body, max_records=1 << 62))
            stats.extend(agg.stats.items())
            learned.extend(agg.learned.values())
        unknown = [k for k, _ in stats if k not in self.baseline and modes.of_edge(k)[0] != "learn"]
        if unknown:  # monitored: baseline only when a replica learned it before
            self.baseline |= self.store.baseline_among(unknown)
        edges = []
        for key, s in stats:
            if modes.of_edge(key)[0] == "learn":
                self.baseline.add(key)
            edges.append((Edge(key, s), key in self.baseline))
        new = {i.workload for i in learned} - self._learned
        with self._live_lock:
            if self._live is not live or self._cursor is not cursor:
                return 0  # built again meanwhile, from a snapshot that decides what it includes
            if new:  # workloads known only from flow identities: a new review inventory
                self._learned |= new
                self._learned_count += 1
            live.add(edges)
            cursor.mark(ids)
        if edges:
            self.metrics.edges.set(len(self.baseline))
            self.events.publish(EventKind.GRAPH, batches=len(foreign), version=self.version)
        return len(foreign)

    def dispatch_alerts(self) -> int:
        """On the leader: claim the alerts not yet sent (in the database, so once across replicas) and hand
        them to the webhook sender. Returns how many."""
        if self.webhook is None or not self.leadership.is_leader:
            return 0
        with self._duty_lock:
            claimed = self.store.claim_alerts(self.leadership.identity)
        if claimed:
            self.metrics.alerts_sent.inc(len(claimed))
            self.webhook.send([alertmanager_payload(a) for a in claimed])
        return len(claimed)

    def reconcile(self) -> dict | None:
        """On the leader with `auto_apply`: apply the approved policies of protect-mode namespaces whose text
        differs from what was last applied (by any replica); each at most once per text."""
        if not (self.settings.auto_apply and self.applier is not None and self.leadership.is_leader):
            return None
        self._current()
        state = (self._inv_gen, self.version)  # the version moves with every commit, approval and sync
        if state == self._reconciled:
            return None
        with self._duty_lock:
            chosen, _ = self._chosen()
            applied = self.store.applied_digests()
            todo = []
            for g in chosen:
                ref, digest = self._ref_digest(g)
                if applied.get(ref) != digest and self._apply_failed.get(ref) != digest:
                    todo.append(g)
            result = self._apply_chosen(todo, who=f"auto-apply ({self.leadership.identity})") if todo else None
            self._reconciled = state
        return result

    def _ref_digest(self, g: Any) -> tuple[str, str]:
        """The NetworkPolicy's namespace/name, and the digest of its canonical text (what approvals bind to)."""
        meta = g.policy.to_dict()["metadata"]
        return f"{meta['namespace']}/{meta['name']}", self.review_state(g).digest

    def _apply_chosen(self, chosen: list, dry_run_only: bool = False, who: str = "") -> dict:
        """Apply (dry runs first); record each applied policy's digest (so no replica applies that text
        again) and an audit entry."""
        digests = dict(self._ref_digest(g) for g in chosen)
        result = self.applier.apply(chosen, self.store, dry_run_only=dry_run_only)
        for item in result.get("applied", []):
            self.store.record_digest(item["ref"], digests[item["ref"]])
            self._apply_failed.pop(item["ref"], None)
            self.store.add_audit(AuditEntry(time.time(), AuditAction.APPLY, item["workload"], item["ref"],
                                            digests[item["ref"]], who))
        for item in result.get("errors", []):
            if item.get("ref") in digests:
                self._apply_failed[item["ref"]] = digests[item["ref"]]
        if result.get("applied"):
            self.events.publish(EventKind.REVIEW, applied=len(result["applied"]), by=who)
        return result

    # --- inventory ---------------------------------------------------------------------------------

    def _current(self) -> tuple[Inventory, Enricher, ModeResolver]:
        gen, inventory = self.source.snapshot()
        if gen != self._inv_gen:
            with self._lock:
                self._inv_gen, self._inventory = gen, inventory
                self._enricher = Enricher(inventory)
                self._modes = ModeResolver(self.settings.default_mode, self.settings.namespaces, inventory.namespaces,
                                           self._api_modes)
        return self._inventory, self._enricher, self._modes

    # --- modes set at runtime ------------------------------------------------------------------------

    def _mode_entry(self, modes: ModeResolver, namespace: str) -> dict:
        mode, source = modes.source_of(namespace)
        out = {"namespace": namespace, "mode": mode, "source": source}
        if namespace in self._api_modes:
            out["requested"] = self._api_modes[namespace]
        return out

    def _reload_modes(self) -> ModeResolver:
        """A new resolver with the stored API modes: the next batch prepared is judged by it."""
        self._current()
        with self._lock:
            self._api_modes = self.store.modes()
            self._modes = ModeResolver(self.settings.default_mode, self.settings.namespaces, self._inventory.namespaces,
                                       self._api_modes)
            self.version += 1
            self._review = None  # the graph's `modes` at once, even under steady ingest
            self.events.publish(EventKind.REVIEW, modes=True)
            return self._modes

    def set_mode(self, namespace: str, mode: str) -> dict:
        from netguard.errors import InputError

        _check_namespace(namespace)
        if mode not in MODES:
            raise InputError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        self.store.set_mode(namespace, mode)
        modes = self._reload_modes()
        entry = self._mode_entry(modes, namespace)
        log.info("namespace %s: mode %s set through the API (in force: %s, from %s)", namespace, mode, entry["mode"],
                 entry["source"])
        return entry

    def clear_mode(self, namespace: str) -> dict:
        _check_namespace(namespace)
        removed = self.store.clear_mode(namespace)
        modes = self._reload_modes()
        entry = self._mode_entry(modes, namespace)
        entry["removed"] = removed
        return entry

    def modes_json(self) -> dict:
        inventory, _, modes = self._current()
        known = set(inventory.namespaces) | {w.namespace for w in inventory.workloads} | set(modes.configured) \
            | set(modes.api)
        known |= {w.workload.namespace for w in self.store.learned()}
        return {"default_mode": modes.default, "modes": [self._mode_entry(modes, ns) for ns in sorted(known)]}

    def review_inventory(self) -> Inventory:
        inventory, _, _ = self._current()
        learned = self.store.learned()
        return inventory.with_workloads(learned) if learned else inventory

    # --- ingest ------------------------------------------------------------------------------------

    def parse(self, body: bytes) -> Batch:
        return parse_batch(body, self.settings.max_batch)

    def stage(self, batch: Batch, body: bytes) -> Staged:
        """Enrich one valid batch (call from one thread at a time: the event loop)."""
        _, enricher, _ = self._current()
        agg = enrich_batch(enricher, batch)
        return Staged(agg, BatchWrite(batch.agent, body, batch.records, batch.connections,
                                      learned=list(agg.learned.values())))

    def parse_edges(self, body: bytes) -> EdgeBatch:
        return parse_edge_batch(body, self.settings.max_batch)

    def stage_edges(self, batch: EdgeBatch, body: bytes) -> Staged:
        """An agent's edges, already aggregated and named: classified and stored as a flow batch's are."""
        return Staged(edges_aggregation(batch.edges), BatchWrite(batch.agent, body, batch.records, batch.connections))

    def prepare(self, batch: Batch, body: bytes) -> Prepared:
        """stage, wait for the approved set (in this thread: not for the event loop), classify."""
        return self._classify_when_ready(self.stage(batch, body))

    def prepare_edges(self, batch: EdgeBatch, body: bytes) -> Prepared:
        return self._classify_when_ready(self.stage_edges(batch, body))

    def _classify_when_ready(self, staged: Staged) -> Prepared:
        while (waiting := self.awaiting(staged)) is not None:
            waiting.result()
        return self.classify(staged)

    def awaiting(self, staged: Staged) -> Future[ApprovedSet] | None:
        """What a batch must wait for before it is classified: None when it has no edge of a monitored
        namespace, or when the current approved set was made with today's approvals (a newer inventory or
        baseline is then built in the background while the batch is judged by the current set); else the
        build that makes it. The event loop awaits it and so answers meanwhile."""
        _, _, modes = self._current()
        of_edge = modes.of_edge
        if all(of_edge(k)[0] == "learn" for k in staged.agg.stats):
            return None
        key = self._approved_key()
        waiting = self._approved.want(key)
        current = self._approved.current
        if waiting is None or (current is not None and _approvals_of(current.key) == _approvals_of(key)):
            return None
        return waiting

    def classify(self, staged: Staged) -> Prepared:
        """Each edge by the mode of its namespaces: into the baseline (learn), or alerted (monitor, protect)
        (after `awaiting`: the approved set it is judged by is there)."""
        agg, write = staged.agg, staged.write
        _, _, modes = self._current()
        new_alerts: list[AlertRow] = []
        learned_keys: list[EdgeKey] = []
        approved: ApprovedSet | None = None
        baseline, alerted, of_edge = self.baseline, self.alerted, modes.of_edge
        unknown = [k for k in agg.stats if k not in baseline and k not in alerted and of_edge(k)[0] != "learn"]
        if unknown:  # perhaps learned by another replica on the same database
            baseline |= self.store.baseline_among(unknown)
        rows = write.edges
        for key, s in agg.stats.items():
            mode, namespace = of_edge(key)
            if mode == "learn":
                if key not in baseline:
                    learned_keys.append(key)
                    baseline.add(key)
                rows.append(EdgeRow(Edge(key, s), True))
                continue
            in_baseline = key in baseline
            reasons = [] if in_baseline else ["new-edge"]
            if approved is None:
                approved = self._approved_set()  # once per batch
            if approved.denied(key):
                reasons.append("denied")
            if reasons:
                self.metrics.alert_flows.labels(namespace=namespace or "-").inc(s.connections)
                alert = AlertRow(key, namespace, mode, reasons, s.last_seen or time.time(), s.connections)
                write.alerts.append(alert)
                if key not in alerted:
                    alerted.add(key)
                    new_alerts.append(alert)
            rows.append(EdgeRow(Edge(key, s), in_baseline))
        if agg.unresolved:
            self.metrics.unresolved.inc(sum(agg.unresolved.values()))
        return Prepared(write, new_alerts, learned_keys)

    def committed(self, prepared: Prepared) -> None:
        w = prepared.write
        self.version += 1
        self._to_live(w)
        self.metrics.flows.labels(agent=w.agent).inc(w.records)
        self.metrics.connections.inc(w.connections)
        self.metrics.batches.labels(result="accepted").inc()
        self.metrics.edges.set(len(self.baseline))
        for alert in prepared.new_alerts:
            self.metrics.alerts.labels(namespace=alert.namespace or "-", reason=",".join(alert.reasons)).inc()
            log.warning("alert: %s -> %s %d/%s (%s, %s mode)", alert.key.src, alert.key.dst, alert.key.port,
                        alert.key.protocol, ",".join(alert.reasons), alert.mode)
        if prepared.new_alerts:
            self.dispatch_alerts()  # at once on the leader; a follower's wait for the leader's next duty
        new_edges = len(prepared.learned_keys) + sum(1 for a in prepared.new_alerts if "new-edge" in a.reasons)
        if new_edges:
            self.events.publish(EventKind.GRAPH, new_edges=new_edges, version=self.version)
        if prepared.new_alerts:
            self.events.publish(EventKind.ALERT, new_alerts=len(prepared.new_alerts))

    def failed(self, prepared: Prepared) -> None:
        """The commit failed: nothing was acknowledged; forget what prepare() assumed."""
        self.metrics.batches.labels(result="error").inc()
        for key in prepared.learned_keys:
            self.baseline.discard(key)
        for alert in prepared.new_alerts:
            self.alerted.discard(alert.key)

    def ingest(self, body: bytes) -> dict:
        """Parse, enrich, store and commit one batch (synchronously; the app does the same, async)."""
        batch = self.parse(body)
        return self._store(self.prepare(batch, body), batch.records, batch.connections)

    def ingest_edges(self, body: bytes) -> dict:
        """The same for an agent's batch of edges (POST /api/v1/edges)."""
        batch = self.parse_edges(body)
        return self._store(self.prepare_edges(batch, body), batch.records, batch.connections)

    def _store(self, prepared: Prepared, records: int, connections: int) -> dict:
        try:
            self.store.write(prepared.write)
        except Exception:
            self.failed(prepared)
            raise
        self.committed(prepared)
        return {"accepted": records, "connections": connections}

    # --- monitor: denied by the approved policies (built in a worker thread: approved.py) -----------------

    def _approved_key(self) -> tuple:
        """What the approved set depends on: the inventory, the approved (workload, digest)s, the baseline
        (when something is approved: a policy's text moves with it) and the edges' epoch."""
        self._current()
        approvals, approved = self._approved_of
        if approvals is not self.approvals:  # replaced on every change: sorted again only then
            approvals = self.approvals
            approved = tuple(sorted((w, a.digest) for w, a in approvals.items() if a.decision == ReviewDecision.APPROVED))
            self._approved_of = (approvals, approved)
        return (self._inv_gen, approved, len(self.baseline) if approved else 0, self._epoch)

    def _approved_set(self) -> ApprovedSet:
        """The current approved set; the newest is asked for (built in the background). Without one yet,
        this waits: only sync callers get here that way (the app awaits `awaiting` first)."""
        waiting = self._approved.want(self._approved_key())
        current = self._approved.current
        if current is None:
            assert waiting is not None
            current = waiting.result()
        return current

    def _build_approved(self, key: Any) -> ApprovedSet:
        """In the worker thread: the cluster's policies plus the approved generated ones (synthesized from
        the baseline, from the live review: only the approved workloads' policies, no whole rebuild; the
        first one builds the live review itself)."""
        _, approved, _, _ = key
        if approved:
            live = self.live()
            chosen = [g.policy for w, _ in approved for g in (live.policy(parse_workload_key(w)),)
                      if g is not None and str(self.review_state(g).status) == "approved"]
            names = {p.ref for p in chosen}
            inventory = live.inventory
            policies = [p for p in inventory.policies if p.ref not in names] + chosen
        else:
            inventory = self.review_inventory()
            policies = list(inventory.policies)
        return ApprovedSet(key, cluster_policy_set(inventory, policies), Targets(inventory))

    def review_ready(self) -> bool:
        """False while the first approved set of a controller that monitors some namespace is built after
        a start (the live review, up to a minute at 10,000 workloads): its monitored batches wait for it
        meanwhile, so /readyz says so. Asking starts the build. Once ready, a replica stays ready: a
        namespace switched to monitor at runtime makes its batches wait, not the replica leave the Service."""
        if self._ready_once:
            return True
        _, _, modes = self._current()
        if self._approved.current is not None or not modes.monitors_any():
            self._ready_once = True
            return True
        self._approved.want(self._approved_key())
        return False

    # --- review ------------------------------------------------------------------------------------

    def review(self, fresh: bool = False) -> Review:
        """Policies are synthesized from the baseline; the graph (graph_json) shows every edge."""
        return self._review_and_graph(fresh)[0]

    def _review_and_graph(self, fresh: bool = False) -> tuple[Review, dict]:
        """Cached per (inventory, store version); under steady ingest the version moves with every batch,
        so a review younger than `review_max_age` seconds is served as is (approvals are applied when
        serving, so they always show at once)."""
        self._current()
        key = (self._inv_gen, self.version)
        cached = self._review
        if cached is not None and cached[0][0] == key[0] and (
                cached[0][1] == key[1] or (not fresh and time.monotonic() - cached[3] < self.settings.review_max_age)):
            return cached[1], cached[2]
        inventory = self.review_inventory()
        every = self.store.edges()
        baseline = self.store.edges(baseline_only=True)
        review = build_review(inventory, baseline)
        graph_doc = self._graph(review, every, baseline)
        self._review = (key, review, graph_doc, time.monotonic())
        return review, graph_doc

    def _graph(self, review: Review, every: list[Edge], baseline: list[Edge]) -> dict:
        if len(every) == len(baseline):
            doc = review.graph_json()
        else:
            graph = build_graph(every)
            annotate_verdicts(graph, review.inventory, every, review.current, attr="verdict")
            annotate_verdicts(graph, review.inventory, every, review.candidate_policies(), attr="candidate_verdict")
            doc = graph_to_dict(graph)
        known = {(str(e.src), str(e.dst), f"{e.port}/{e.protocol}") for e in baseline}
        for edge in doc["edges"]:
            edge["baseline"] = (edge["source"], edge["target"], edge["key"]) in known
        inventory, _, modes = self._current()
        doc["modes"] = modes.all(doc["namespaces"])
        return doc

    # --- the live review: incremental, per namespace and per workload -------------------------------

    def live(self) -> LiveReview:
        """The live review, built from the store on first use; a new inventory (or newly learned
        workloads) is handed to it, which marks only what changed."""
        self._current()
        with self._live_lock:
            if self._live is None:
                gc.collect(1)  # the young garbage from before the build, while the young generations are small
                self._live = self._build_live()
                self._settle_heap(built=True)
            live, key = self._live, (self._inv_gen, self._learned_count)
            if key == self._live_key:
                return live
        with self._inventory_lock:  # one hand-over at a time, outside _live_lock and the review's own lock
            if key != self._live_key and self._live is live:
                live.set_inventory(self.review_inventory())
                self._live_key = key
        return live

    def _settle_heap(self, built: bool = False) -> None:
        """Move the live review's objects (millions at 10,000 workloads) out of the garbage collector's
        full passes (gc.freeze), after it is built and after every FREEZE_AFTER policies synthesized: a
        full pass over them takes a second and stops every thread, reads included. Young cyclic garbage
        is collected first (the frozen objects are still freed by reference counting), except right after
        a build: then the young generations hold the whole review, and collecting them stopped every
        thread, the event loop too, for 1.9 s at 10,000 workloads; they are frozen as they are (what little
        cyclic garbage the build made stays, once)."""
        live = self._live
        if live is not None and (built or live.synthesized - self._frozen_at >= FREEZE_AFTER):
            self._frozen_at = live.synthesized
            if not built:
                gc.collect(1)
            gc.freeze()

    def _build_live(self) -> LiveReview:
        live = LiveReview(self.review_inventory())
        live.on_synthesized = self._renderings.submit
        self._live_pending = []

        def snapshot(conn: Any, store: Store) -> tuple[int, list, list[int]]:  # in the writer thread: no commit meanwhile
            return store.seq, *store.edges_snapshot(WINDOW)

        try:
            seq, edges, ids = self.store.run_exclusive(snapshot).result()
            live.add(edges)
            live.seq = seq
            self._cursor = BatchCursor.at(ids)
            for write in self._live_pending:
                self._add_to(live, write)
        finally:
            self._live_pending = None
        self._live_key = (self._inv_gen, self._learned_count)
        return live

    def _to_live(self, write: BatchWrite) -> None:
        new = {i.workload for i in write.learned} - self._learned
        if new:  # workloads known only from flow identities: a new review inventory
            self._learned |= new
            self._learned_count += 1
        if self._live_pending is not None:
            self._live_pending.append(write)
        elif self._live is not None:
            self._add_to(self._live, write)

    @staticmethod
    def _add_to(live: LiveReview, write: BatchWrite) -> None:
        if write.seq > live.seq:
            live.add((row.edge, row.baseline) for row in write.edges)

    def graph_json(self, namespace: str | None = None, workload: str | None = None) -> dict:
        inventory, _, modes = self._current()
        if namespace is not None:
            _check_namespace(namespace)
        doc = self.live().graph_json(namespace, parse_workload_key(workload) if workload else None)
        doc["modes"] = modes.all(doc["namespaces"])
        return doc

    def policies_body(self, namespace: str | None = None, limit: int = 0, after: str = "",
                      token: Callable[[str], str] = str) -> bytes:
        """The policies in workload order as JSON, assembled from the kept renderings; with `limit`, one
        page and `metadata` (`continue`: token(the last workload's key), `remainingItemCount`)."""
        if namespace is not None:
            _check_namespace(namespace)
        live = self.live()
        page = live.page(namespace, parse_workload_key(after) if after else None, limit)
        metadata = None
        if limit:
            metadata = {"continue": token(page.next_after.key) if page.next_after else "",
                        "remainingItemCount": page.remaining}
        return page_body([self._policy_body(g) for g in page.items], live.warnings, metadata)

    def policies_json(self, namespace: str | None = None, limit: int = 0, after: str = "") -> dict:
        """policies_body as data."""
        return dict(json.loads(self.policies_body(namespace, limit, after)))

    def workload_policy_body(self, workload: str) -> bytes | None:
        generated = self.live().policy(parse_workload_key(workload))
        return self._policy_body(generated) if generated else None

    def workload_policy_json(self, workload: str) -> dict | None:
        body = self.workload_policy_body(workload)
        return dict(json.loads(body)) if body is not None else None

    # --- review decisions bound to the policy text (policygen/approval.py) ----------------------------

    def review_state(self, g: GeneratedPolicy) -> ReviewState:
        return review_state(g.policy, self.approvals.get(g.workload.key), self._renderings.get(g).text)

    def _statuses(self, generated: list[GeneratedPolicy]) -> dict[str, str]:
        return {g.workload.key: str(self.review_state(g).status) for g in generated}

    def _policy_body(self, g: GeneratedPolicy) -> bytes:
        """policy_json of `g` with its review state, as JSON: the kept rendering and the current state."""
        rendered = self._renderings.get(g)
        state = review_state(g.policy, self.approvals.get(g.workload.key), rendered.text)
        return rendered.json(state.to_json())

    def audit_json(self, limit: int = 500, workload: str = "") -> dict:
        return {"audit": [e.to_json() for e in self.store.audit(limit, workload)]}

    def diff_json(self, namespace: str | None = None, workload: str | None = None) -> dict:
        return self.live().diff_json(namespace, parse_workload_key(workload) if workload else None)

    def impact_json(self, namespace: str | None = None, workload: str | None = None) -> dict:
        return self.live().impact_json(namespace, parse_workload_key(workload) if workload else None)

    def namespaces_json(self) -> dict:
        _, _, modes = self._current()
        doc = self.live().namespaces_json()
        for item in doc["namespaces"]:
            item["mode"] = modes.of_namespace(item["name"])
        return doc

    def approve(self, workload: str, decision: str, who: str = "", digest: str = "") -> dict:
        """Record a decision on the policy's current text. `digest`: the text the reviewer saw; when the
        policy changed since, StaleDigest (nothing recorded)."""
        from netguard.errors import InputError

        if decision not in DECISIONS:
            raise InputError(f"decision {decision!r}: expected one of {', '.join(DECISIONS)}")
        generated = self.live().policy(parse_workload_key(workload))
        if generated is None:
            raise InputError(f"workload {workload!r} has no generated policy")
        state = self.review_state(generated)
        if digest and digest != state.digest:
            raise StaleDigest(workload, digest, state.digest)
        approval = Approval(workload, ReviewDecision(decision), state.digest, canonical_text(generated.policy), who,
                            time.time())
        self.store.set_approval(approval)
        with self._lock:
            self.approvals = self.store.approvals()
            self.version += 1
        self.events.publish(EventKind.REVIEW, workload=workload, decision=decision, by=who)
        return {"workload": workload, "decision": decision, "digest": state.digest, "by": who}

    def rebuild_baseline(self, force: bool = False) -> dict:
        """Re-enrich every retained raw batch against the current inventory and replace the edges with
        the result: for flows that arrived before the inventory knew their pods (a controller started
        without the right --inventory, a watch that lagged). An edge is baseline when the current mode
        of its namespaces is learn, or when it was baseline before. Runs in the store's writer thread,
        so no batch is committed meanwhile. Refused when raw batches were pruned (their edges would be
        lost), unless `force`."""
        from netguard.errors import InputError

        if self.store.pruned() and not force:
            raise InputError("raw batches older than the retention were pruned: a rebuild would lose the edges they "
                             "taught; pass force to rebuild from what is retained")
        inventory, _, modes = self._current()

        def job(conn: Any, store: Store) -> dict:
            enricher = Enricher(inventory)
            total = Aggregation()
            batches = records = 0
            for body in store.batch_bodies(conn):
                if is_edge_body(body):  # named by the agent already: kept as they came
                    edge_batch = parse_edge_batch(body, max_records=1 << 62)
                    agg, count = edges_aggregation(edge_batch.edges), edge_batch.records
                else:
                    batch = parse_batch(body, max_records=1 << 62)
                    agg, count = enrich_batch(enricher, batch), batch.records
                batches += 1
                records += count
                total.merge(agg)
            rows = [EdgeRow(edge, modes.of_edge(edge.key)[0] == "learn" or edge.key in self.baseline)
                    for edge in total.edges()]
            store.replace_edges(conn, rows, list(total.learned.values()))
            return {"batches": batches, "records": records, "edges": len(rows),
                    "baseline": sum(1 for r in rows if r.baseline)}

        result = self.store.run_exclusive(job).result()
        with self._lock:
            self.baseline = self.store.baseline_keys()
            self.version += 1
            self._epoch += 1  # the approved set is made again (batches wait for it: approvals may judge otherwise)
            self._review = None
        with self._live_lock:
            self._live = None  # every edge was replaced: built again from the store on the next read
        self.metrics.edges.set(len(self.baseline))
        return result

    def alerts_json(self) -> dict:
        return {"alerts": self.store.alerts()}

    # --- protect: apply ----------------------------------------------------------------------------

    def apply(self, *, remove: bool = False, dry_run_only: bool = False, who: str = "") -> dict:
        """Apply the policies whose current text is the approved one (dry runs first), or remove what
        netguard applied. Policies approved on another text are listed as skipped."""
        from netguard.errors import InputError

        if self.applier is None:
            raise InputError("no cluster: apply needs the controller to run against Kubernetes (not --inventory)")
        if remove:
            applied = self.store.applied()
            result = self.applier.remove(self.store)
            for ref in result["removed"]:
                self.store.add_audit(AuditEntry(time.time(), AuditAction.DELETE, applied.get(ref, ""), ref, "", who))
            self.events.publish(EventKind.REVIEW, removed=len(result["removed"]), by=who)
            return result
        chosen, skipped = self._chosen()
        result = self._apply_chosen(chosen, dry_run_only=dry_run_only, who=who)
        result["skipped"] = skipped
        return result

    def _chosen(self) -> tuple[list, list[dict]]:
        """The generated policies to apply: approved on their current text, of protect-mode namespaces;
        and those skipped, why."""
        _, _, modes = self._current()
        chosen, skipped = [], []
        for g in self.live().page().items:
            state = self.review_state(g)
            mode = modes.of_namespace(g.workload.namespace)
            if state.status != ReviewDecision.APPROVED:
                if state.changed and state.decided and state.decided.decision == ReviewDecision.APPROVED:
                    skipped.append({"workload": g.workload.key, "reason": "changed since it was approved"})
                continue
            if mode != "protect":
                skipped.append({"workload": g.workload.key, "reason": f"namespace {g.workload.namespace} is in {mode} mode"})
                continue
            chosen.append(g)
        return chosen, skipped


def _approvals_of(key: Any) -> tuple:
    """The part of an approved set's key a batch must not be judged without: the approvals, the epoch."""
    return key[1], key[3]
