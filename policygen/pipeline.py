"""The read side of every command: inventory + flows -> (inventory, edges), with counts.

The CLI, the controller and the UI call this one function; what comes after (synthesize, verify,
graph) is pure.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from netguard.enrich import Aggregation, Enricher
from netguard.flows import ReadStats, read_flows, read_line_range
from netguard.inventory import Inventory, load_inventory
from netguard.model import Edge

Progress = Callable[[str], None]


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def quiet(message: str) -> None:
    pass


@dataclass
class Observed:
    inventory: Inventory  # includes workloads learned from Hubble identities
    edges: list[Edge]
    aggregation: Aggregation
    read: ReadStats


@contextlib.contextmanager
def batch_gc() -> Iterator[None]:
    """For batch commands: no cyclic GC while millions of long-lived objects are built (the
    pipeline makes no reference cycles; refcounting still frees memory). Halves synthesis time
    at 10,000 workloads."""
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.unfreeze()


WORKERS = min(os.cpu_count() or 1, 4)
PARALLEL_BYTES = 32 << 20  # files smaller than this are read in-process: forking costs more than it saves
_FORKED_INVENTORY: Inventory | None = None  # what the forked readers enrich against


def _splittable(path: str | Path) -> bool:
    p = Path(path)
    if WORKERS < 2 or str(path) == "-" or not p.is_file() or p.stat().st_size < PARALLEL_BYTES:
        return False
    with p.open("rb") as fh:
        return fh.read(1) in (b"{", b"[", b" ", b"\n")  # JSON lines, not pcap


def _read_part(job: tuple[str, int, int, int]) -> tuple[Aggregation, ReadStats]:
    assert _FORKED_INVENTORY is not None
    path, start, end, first_lineno = job
    stats = ReadStats()
    enricher = Enricher(_FORKED_INVENTORY)
    for flow in read_line_range(path, start, end, first_lineno, stats, _FORKED_INVENTORY.listening()):
        enricher.add(flow)
    return enricher.agg, stats


def _parallel_aggregate(inventory: Inventory, path: Path) -> tuple[Aggregation, ReadStats]:
    """Read one large JSON-lines file on every core: the file is cut at line boundaries, each part
    is read and aggregated in a forked process, the partial edges are summed. Errors still name the
    file's own line numbers (the first error in file order wins)."""
    global _FORKED_INVENTORY
    size = path.stat().st_size
    cuts = [0]
    with path.open("rb") as fh:
        for k in range(1, WORKERS):
            fh.seek(max(size * k // WORKERS, cuts[-1]))
            fh.readline()  # to the next line start
            cuts.append(min(fh.tell(), size))
    cuts.append(size)
    jobs, lineno = [], 1
    with path.open("rb") as fh:
        for start, end in zip(cuts, cuts[1:], strict=False):
            jobs.append((str(path), start, end, lineno))
            fh.seek(start)
            lineno += fh.read(end - start).count(b"\n")
    _FORKED_INVENTORY = inventory
    try:
        with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
            results = list(pool.imap(_read_part, jobs))  # in file order: the first error is the earliest line
    finally:
        _FORKED_INVENTORY = None
    total, stats = Aggregation(), ReadStats()
    for agg, part in results:
        total.merge(agg)
        stats.merge(part)
    return total, stats


def aggregate_files(
    inventory: Inventory, flow_paths: Iterable[str | Path], progress: Progress = quiet
) -> tuple[Aggregation, ReadStats]:
    """Every flow of the files, aggregated into edges; large JSON-lines files on every core."""
    started = time.perf_counter()
    stats = ReadStats()
    enricher = Enricher(inventory)
    every = 250_000
    serial = []
    for path in flow_paths:
        if _splittable(path):
            progress(f"flows: reading {path} on {WORKERS} cores")
            agg, part = _parallel_aggregate(inventory, Path(path))
            enricher.agg.merge(agg)
            stats.merge(part)
        else:
            serial.append(path)
    for n, flow in enumerate(read_flows(serial, stats, inventory.listening()), 1):
        enricher.add(flow)
        if n % every == 0:
            progress(f"flows: {n:,} read ({time.perf_counter() - started:.1f}s)")
    return enricher.agg, stats


def read_summary(stats: ReadStats) -> str:
    """What the readers saw besides connections, each kind named (nothing is dropped silently)."""
    parts = [
        (stats.mid_connection, "seen only mid-connection (no SYN in the capture)"),
        (stats.duplicates, "more packets of counted connections"),
        (stats.replies, "replies"),
        (stats.undecided, "packets of undecided direction (no is_reply, SYN or listening side)"),
        (stats.not_l4, "without ports (ICMP...)"),
        (stats.dropped_verdicts, "dropped by the dataplane"),
        (stats.other_verdicts, "with other verdicts (TRACED, TRANSLATED...)"),
        (stats.other, "not flows (lost events, node status...)"),
    ]
    return "".join(f"; {n:,} {words}" for n, words in parts if n)


def load_inventory_or_empty(paths: Iterable[str | Path] | None) -> Inventory:
    paths = list(paths or [])
    return load_inventory(paths) if paths else Inventory()


def observe(
    inventory_paths: Iterable[str | Path] | None, flow_paths: Iterable[str | Path], progress: Progress = quiet
) -> Observed:
    inventory = load_inventory_or_empty(inventory_paths)
    progress(
        f"inventory: {len(inventory.workloads)} workloads, {len(inventory.pods)} pods, "
        f"{len(inventory.services)} services, {len(inventory.policies)} policies"
    )
    agg, stats = aggregate_files(inventory, flow_paths, progress)
    progress(f"flows: {stats.flows:,} connections -> {len(agg.stats):,} edges" + read_summary(stats)
             + (f"; {sum(agg.unresolved.values()):,} to unknown Service ports" if agg.unresolved else ""))
    full = inventory.with_workloads(agg.learned.values()) if agg.learned else inventory
    return Observed(full, agg.edges(), agg, stats)
