"""The agent's sink: JSON lines identical to the core's native records, a bounded edge cache."""

from __future__ import annotations

import io
import json

from hypothesis import given
from hypothesis import strategies as st

from netguard.agent.metrics import Metrics
from netguard.agent.sink import EdgeCache, Sink, _line
from netguard.enrich import aggregate
from netguard.flows import flow_to_record, parse_native
from netguard.inventory import load_inventory
from netguard.model import Edge, Flow
from tests.agent.test_podcache import CLUSTER

ips = st.ip_addresses(v=4).map(str) | st.ip_addresses(v=6).map(str)
ports = st.integers(0, 65535)


@given(time=st.floats(0, 4e9, allow_nan=False), src=ips, sport=ports, dst=ips, dport=ports,
       proto=st.sampled_from(["TCP", "UDP", "SCTP"]), count=st.integers(0, 2**40), node=st.text(max_size=20),
       pod=st.none() | ips)
def test_lines_are_the_native_records(time, src, sport, dst, dport, proto, count, node, pod):
    flow = Flow(time, src, sport, dst, dport, proto, count, count, node, pod or "", dport if pod else 0)
    record = flow_to_record(flow)
    line = _line(record)
    assert line.endswith("\n") and json.loads(line) == record
    assert flow_to_record(parse_native(json.loads(line))) == record  # what the policy CLI reads back


def test_edge_cache_is_bounded_and_counts_evictions():
    metrics = Metrics()
    edges = EdgeCache(load_inventory([CLUSTER]), metrics, max_edges=2)
    out = io.StringIO()
    sink = Sink(metrics, out, edges)
    for dst in ("10.96.10.11", "10.96.10.12", "10.96.10.13"):  # details, ratings, reviews (3 backends)
        sink.emit(Flow(1.0, "10.244.1.10", 40000, dst, 9080), "test")
    assert len(edges.enricher.agg.stats) == 2
    assert metrics.edges_evicted._value.get() >= 1
    assert len(out.getvalue().splitlines()) == 3  # every flow is written, whatever the cache keeps


def test_edges_file_records_are_the_one_edge_record():
    """The agent's --edges file (EdgeCache.records) is Edge.to_record of what the core's enrichment gives:
    one schema with /api/v1/edges and the store; it reads back through Edge.from_record unchanged."""
    inventory = load_inventory([CLUSTER])
    flows = [Flow(1.0 + i, "10.244.1.10", 40000 + i, dst, 9080, bytes=100 * i, packets=i)
             for i, dst in enumerate(("10.96.10.11", "10.96.10.12", "10.96.10.11", "203.0.113.9"))]
    edges = EdgeCache(inventory, Metrics())
    for flow in flows:
        edges.add(flow)
    records = edges.records()
    assert records == [e.to_record() for e in aggregate(flows, inventory).edges()]
    assert [Edge.from_record(json.loads(json.dumps(r))).to_record() for r in records] == records
    assert {r["src"] for r in records} == {"w:default/Deployment/productpage-v1"}
    assert ("w:default/Deployment/details-v1", 9080, 2, "default/details") in {
        (r["dst"], r["port"], r["connections"], r["via_service"]) for r in records}
