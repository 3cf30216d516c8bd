"""The ingest fast path (plain native records summed per enrichment input) gives exactly the edges and
counters of netguard's own parse_record + Enricher, one flow at a time."""

from __future__ import annotations

import json
import random

import pytest

from netguard.direction import ConnectionTracker
from netguard.enrich import Enricher
from netguard.flows import parse_record
from netguard.inventory import load_inventory
from policygen.controller.ingest import BatchError, parse_batch
from policygen.controller.service import enrich_batch
from tests.controller.conftest import CLUSTER, DATA, bookinfo_records


def _variants(rng: random.Random, base: list[dict], hubble: list[dict]) -> list[dict]:
    out = []
    for _ in range(rng.randint(1, 400)):
        r = dict(rng.choice(base))
        roll = rng.random()
        if roll < 0.1:
            r["time"] = "2026-09-21T10:00:00.123456789Z"  # RFC 3339: the slow path
        elif roll < 0.2:
            r["time"] = r["time"] + rng.random() * 1000
        elif roll < 0.3:
            r["dst_pod_port"] = 9080
        elif roll < 0.35:
            r["dst_ip"], r["dst_port"] = "10.96.10.12", 12345  # a Service port nobody serves: unresolved
            r.pop("dst_pod_ip", None)
        elif roll < 0.45:
            r["protocol"] = "tcp"  # accepted by parse_record only
        elif roll < 0.5:
            r.pop("protocol")
            r.pop("bytes", None)
        elif roll < 0.55:
            r["src_ip"] = f"198.51.100.{rng.randint(1, 254)}"
        elif roll < 0.6:
            r = dict(rng.choice(hubble))
        elif roll < 0.65:  # to the world, with the DNS names it was looked up as
            r["dst_ip"], r["dst_port"] = "203.0.113.9", 443
            r.pop("dst_pod_ip", None)
            r["dst_names"] = rng.sample(["api.example.com", "b.example.com", "c.example.org"], rng.randint(1, 2))
        r_time = r.get("time")
        if isinstance(r_time, float) and rng.random() < 0.5:
            r["time"] = int(r_time)
        out.append(r)
    return out


@pytest.mark.parametrize("seed", range(25))
def test_the_fast_path_gives_the_same_edges_as_one_flow_at_a_time(seed):
    rng = random.Random(seed)
    inventory = load_inventory([str(CLUSTER)])
    hubble = [json.loads(line) for line in (DATA / "bookinfo-hubble.jsonl").read_text().splitlines() if line.strip()]
    records = _variants(rng, bookinfo_records(), hubble)
    batch = parse_batch(json.dumps({"agent": "n", "flows": records}).encode())
    fast = enrich_batch(Enricher(inventory), batch)
    slow = Enricher(inventory)
    n = 0
    tracker = ConnectionTracker()  # a batch counts a Hubble connection's packets once, as a file does
    for r in records:
        flow = parse_record(r, None, tracker)
        if flow is not None:
            n += 1
            slow.add(flow)
    assert batch.connections == n == fast.flows
    assert fast.stats == slow.agg.stats
    assert fast.unresolved == slow.agg.unresolved
    assert fast.learned == slow.agg.learned
    assert batch.groups, "some records took the fast path"


ODD_VALUES = [True, False, 80.0, "80", None, [9080], {"p": 1}, -1, 70000, "10.244.1.11", "", "not-an-ip", 2**40]


@pytest.mark.parametrize("field", ["dst_port", "dst_pod_port", "src_port", "src_ip", "dst_ip", "dst_pod_ip", "protocol",
                                   "bytes", "packets", "time", "node"])
def test_odd_values_are_judged_as_parse_record_judges_them(field):
    """The fast path checks each distinct (addresses, ports, protocol) once and caches the verdict: a value equal
    to a valid one but of another type (True == 1, 80.0 == 80), or unhashable, must still get parse_record's
    verdict: the same refusal, or the same edges."""
    inventory = load_inventory([str(CLUSTER)])
    base = bookinfo_records()[0]
    for value in ODD_VALUES:
        records = [dict(base), {**base, field: value}]  # the valid record first: its group is cached
        try:
            expected = [parse_record(r, None, ConnectionTracker()) for r in records]
        except Exception:
            expected = None
        try:
            batch = parse_batch(json.dumps({"agent": "n", "flows": records}).encode())
        except BatchError:
            assert expected is None, (field, value)
            continue
        assert expected is not None, (field, value)
        slow = Enricher(inventory)
        for flow in expected:
            if flow is not None:
                slow.add(flow)
        assert enrich_batch(Enricher(inventory), batch).stats == slow.agg.stats, (field, value)
