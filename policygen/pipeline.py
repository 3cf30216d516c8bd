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
from netguard.errors import InputError
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
        first = fh.readline(65536)
    # Native JSON lines only: each is a connection. Hubble records are packets, counted once per
    # connection by one tracker over the whole capture, which parts read apart could not share.
    return first[:1] in (b"{", b" ") and b'"src_ip"' in first


def _read_part(job: tuple[str, int, int, int, bool]) -> tuple[Aggregation, ReadStats]:
    assert _FORKED_INVENTORY is not None
    path, start, end, first_lineno, skip_invalid = job
    stats = ReadStats()
    enricher = Enricher(_FORKED_INVENTORY)
    listening = _FORKED_INVENTORY.listening()
    for flow in read_line_range(path, start, end, first_lineno, stats, listening, skip_invalid):
        enricher.add(flow)
    return enricher.agg, stats


def _parallel_aggregate(inventory: Inventory, path: Path, skip_invalid: bool = False) -> tuple[Aggregation, ReadStats]:
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
            jobs.append((str(path), start, end, lineno, skip_invalid))
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
    inventory: Inventory, flow_paths: Iterable[str | Path], progress: Progress = quiet, skip_invalid: bool = False
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
            agg, part = _parallel_aggregate(inventory, Path(path), skip_invalid)
            enricher.agg.merge(agg)
            stats.merge(part)
        else:
            serial.append(path)
    for n, flow in enumerate(read_flows(serial, stats, inventory.listening(), skip_invalid), 1):
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
        (stats.invalid, "invalid lines skipped"),
    ]
    return "".join(f"; {n:,} {words}" for n, words in parts if n)


def load_inventory_or_empty(paths: Iterable[str | Path] | None) -> Inventory:
    paths = list(paths or [])
    return load_inventory(paths) if paths else Inventory()


def observe(
    inventory_paths: Iterable[str | Path] | None,
    flow_paths: Iterable[str | Path],
    progress: Progress = quiet,
    *,
    skip_invalid: bool = False,
    allow_empty: bool = True,
    need_identity: bool = False,
) -> Observed:
    """Read the inventory and the flows. With `allow_empty` False, flows that hold no connection are
    an error (they would make deny-all policies); with `need_identity`, so is an inventory that knows
    no workload when the flows carry no identity either (nothing could be attributed)."""
    inventory_paths, flow_paths = list(inventory_paths or []), list(flow_paths)
    inventory = load_inventory_or_empty(inventory_paths)
    progress(
        f"inventory: {len(inventory.workloads)} workloads, {len(inventory.pods)} pods, "
        f"{len(inventory.services)} services, {len(inventory.policies)} policies"
    )
    if not allow_empty:
        for path in flow_paths:
            if _blank(path):
                raise InputError("no flow records: the file is empty (--allow-empty to accept it)", source=str(path))
    agg, stats = aggregate_files(inventory, flow_paths, progress, skip_invalid)
    progress(f"flows: {stats.flows:,} connections -> {len(agg.stats):,} edges" + read_summary(stats)
             + (f"; {sum(agg.unresolved.values()):,} to unknown Service ports" if agg.unresolved else ""))
    if stats.invalid:
        progress(f"flows: skipped {stats.invalid:,} invalid line{'s' if stats.invalid != 1 else ''}, the first:")
        for example in stats.invalid_examples:
            progress(f"  {example}")
    if not allow_empty and stats.flows == 0:
        raise InputError(_no_connections(stats), source=", ".join(str(p) for p in flow_paths))
    if need_identity and stats.flows and not stats.identified and not (inventory.workloads or inventory.services):
        where = "the inventory holds no workload, pod or Service" if inventory_paths else "no --inventory was given"
        raise InputError(f"{where}, and the flows carry no identity (only Hubble records do): "
                         "nothing could be attributed to a workload")
    full = inventory.with_workloads(agg.learned.values()) if agg.learned else inventory
    return Observed(full, agg.edges(), agg, stats)


def _blank(path: str | Path) -> bool:
    p = Path(path)
    if str(path) == "-" or not p.is_file():
        return False
    with p.open("rb") as fh:
        head = fh.read(4096)
    return not head.strip() and p.stat().st_size <= 4096


def _no_connections(stats: ReadStats) -> str:
    if stats.records and stats.invalid == stats.records:
        what = f"every one of the {stats.records:,} lines was invalid and skipped"
    elif stats.records:
        what = f"no connection among {stats.records:,} records ({read_summary(stats).lstrip('; ')})"
    else:
        what = "no flow records"
    return f"{what}: policies from no traffic deny everything (--allow-empty to write them anyway)"
