"""Strict validation of one ingest batch: all of it is good, or none of it is stored.

Body: `{"agent": "<node name>", "flows": [<record>, ...]}` where each record is a native flow record
(as `netguard.flows.flow_to_record` writes it) or a Hubble record. The first bad record names the
batch: `flows[17]: dst_port: invalid port 'x'`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from netguard.direction import ConnectionTracker
from netguard.errors import InputError
from netguard.flows import ReadStats, parse_record
from netguard.inventory import is_ip
from netguard.model import PROTOCOLS, Edge, EdgeKey, EdgeStats, Endpoint, Flow


class BatchError(Exception):
    """Why a batch was refused (422), or too large (413)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Batch:
    agent: str
    records: int
    flows: list[Flow | tuple]  # in order of first appearance: a Flow (records off the fast path), or a group's key
    groups: dict[GroupKey, list]  # plain native records summed per enrichment input: [n, bytes, packets, first, last]
    connections: int  # new connections among the records (Hubble replies etc. are not)
    stats: ReadStats


BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["agent", "flows"],
    "additionalProperties": False,
    "properties": {
        "agent": {"type": "string", "minLength": 1, "maxLength": 253, "description": "the node name of the agent"},
        "flows": {
            "type": "array",
            "description": "native flow records (time, src_ip, src_port, dst_ip, dst_port, protocol, bytes?, packets?, "
                           "node?, dst_pod_ip?, dst_pod_port?) or Hubble flow records",
            "items": {"type": "object"},
        },
    },
}


def _envelope(body: bytes, key: str, max_records: int) -> tuple[str, list[Any]]:
    """The agent's name and the records of a batch `{"agent": ..., key: [...]}` (flows or edges)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BatchError(f"body: not JSON ({getattr(exc, 'msg', exc)})") from None
    if not isinstance(doc, dict):
        raise BatchError(f"body: expected a JSON object, got {type(doc).__name__}")
    extra = set(doc) - {"agent", key}
    if extra:
        raise BatchError(f"body: unknown keys {', '.join(sorted(extra))} (expected agent, {key})")
    agent = doc.get("agent")
    if not isinstance(agent, str) or not agent or len(agent) > 253:
        raise BatchError("agent: expected the node name (a non-empty string)")
    records = doc.get(key)
    if not isinstance(records, list):
        raise BatchError(f"{key}: expected a list of {key[:-1]} records")
    if len(records) > max_records:
        raise BatchError(f"{key}: {len(records)} records; at most {max_records} per batch", status=413)
    return agent, records


def parse_batch(body: bytes, max_records: int = 50_000) -> Batch:
    agent, records = _envelope(body, "flows", max_records)
    stats = ReadStats()
    flows: list[Flow | tuple] = []
    groups: dict[GroupKey, list] = {}
    append = flows.append
    known = _GROUP_KEYS
    if len(known) > 200_000:  # bounded: a long run of ever new addresses
        known.clear()
    fast = 0
    tracker = ConnectionTracker()  # a Hubble connection's packets in one batch count once
    for i, record in enumerate(records):
        if type(record) is not dict:
            raise BatchError(f"flows[{i}]: expected a JSON object, got {type(record).__name__}")
        if "flow" not in record and "dst_names" not in record:  # not Hubble, no DNS names to keep: try the fast path
            get = record.get
            dst_port, pod_port = get("dst_port"), get("dst_pod_port")
            t, src_port, nbytes, packets, node = get("time"), get("src_port"), get("bytes"), get("packets"), get("node")
            if (type(dst_port) is _INT and (pod_port is None or type(pod_port) is _INT)
                    and (type(t) is _FLOAT or type(t) is _INT or t is None)
                    and (src_port is None or (type(src_port) is _INT and 0 <= src_port <= 65535))
                    and (nbytes is None or (type(nbytes) is _INT and nbytes >= 0))
                    and (packets is None or (type(packets) is _INT and packets >= 0))
                    and (node is None or type(node) is str)):
                raw = (get("src_ip"), get("dst_ip"), dst_port, get("protocol"), get("dst_pod_ip"), pod_port)
                try:
                    key = known[raw]
                except KeyError:
                    key = known[raw] = _group_key(raw)
                except TypeError:  # an unhashable value (a list where an address goes): parse_record explains
                    key = None
                if key is not None:
                    when = _FLOAT(t or 0.0)
                    acc = groups.get(key)
                    if acc is None:
                        groups[key] = [1, nbytes or 0, packets or 0, when, when]
                        append(key)  # a new group: its key, where its first record stood
                    else:
                        acc[0] += 1
                        acc[1] += nbytes or 0
                        acc[2] += packets or 0
                        if when < acc[3]:
                            acc[3] = when
                        elif when > acc[4]:
                            acc[4] = when
                    fast += 1
                    continue
        try:
            flow = parse_record(record, stats, tracker)  # validates names and labels as the API server would
        except InputError as exc:
            raise BatchError(f"flows[{i}]: {exc.message}") from None
        except (TypeError, ValueError, AttributeError) as exc:  # odd shapes inside Hubble records
            raise BatchError(f"flows[{i}]: malformed record ({exc})") from None
        if flow is not None:
            append(flow)
    stats.records = len(records)
    stats.flows = len(flows) - len(groups) + fast
    return Batch(agent, len(records), flows, groups, stats.flows, stats)


# --- edges aggregated by the agents ----------------------------------------------------------------------
# An agent with a pod cache ships, per interval, one record per edge it saw (`Edge.to_record`: source and
# destination as endpoint keys, port, protocol, connections, bytes, packets, first and last seen, DNS
# names), not one per connection: POST /api/v1/edges, `{"agent": NODE, "edges": [...]}`.


@dataclass
class EdgeBatch:
    agent: str
    records: int  # edge records
    edges: list[Edge]
    connections: int  # the connections they stand for


EDGE_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["agent", "edges"],
    "additionalProperties": False,
    "properties": {
        "agent": BODY_SCHEMA["properties"]["agent"],
        "edges": {
            "type": "array",
            "description": "one record per edge seen in the interval (netguard.model.Edge.to_record): src, dst "
                           "(endpoint keys such as w:ns/Deployment/name or world:203.0.113.7), port, protocol, "
                           "connections, bytes, packets, first_seen, last_seen, dst_names?, port_name?, via_service?",
            "items": {"type": "object"},
        },
    },
}


def _edge(i: int, record: object) -> Edge:
    if type(record) is not dict:
        raise BatchError(f"edges[{i}]: expected a JSON object, got {type(record).__name__}")
    edge = _plain_edge(record)
    if edge is not None:
        return edge
    for name in ("src", "dst", "port", "protocol", "connections"):
        if name not in record:
            raise BatchError(f"edges[{i}]: {name}: missing")
    try:
        edge = Edge.from_record(record)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # AttributeError: an endpoint that is no string
        raise BatchError(f"edges[{i}]: malformed edge ({exc})") from None
    if edge.protocol not in PROTOCOLS:
        raise BatchError(f"edges[{i}]: protocol: {edge.protocol!r} is not one of {', '.join(PROTOCOLS)}")
    if not 0 <= edge.port <= 65535:
        raise BatchError(f"edges[{i}]: port: invalid port {edge.port}")
    if min(edge.connections, edge.bytes, edge.packets) < 0 or edge.first_seen > edge.last_seen:
        raise BatchError(f"edges[{i}]: counters must not be negative, first_seen not after last_seen")
    for end in (edge.src, edge.dst):
        if end.workload is not None and not all((end.workload.namespace, end.workload.kind, end.workload.name)):
            raise BatchError(f"edges[{i}]: {end.key!r}: expected w:namespace/Kind/name")
    return edge


_EDGE_KEYS: dict[tuple[str, str, int, str], EdgeKey] = {}  # an agent's edges come back every interval: made once
_ENDPOINTS: dict[str, Endpoint | None] = {}  # endpoint key -> the Endpoint, or None: malformed (the slow path says why)


def _endpoint(key: object) -> Endpoint | None:
    if type(key) is not str:
        return None
    found = _ENDPOINTS.get(key, False)
    if found is False:
        if len(_ENDPOINTS) > 200_000:
            _ENDPOINTS.clear()
        try:
            found = Endpoint.parse(key)
        except ValueError:
            found = None
        if found is not None and found.workload is not None and not all(
                (found.workload.namespace, found.workload.kind, found.workload.name)):
            found = None
        _ENDPOINTS[key] = found
    return found  # type: ignore[return-value]


def _plain_edge(r: dict) -> Edge | None:
    """The Edge of a record of exactly Edge.to_record's types and valid values (what the agents send),
    built without conversions; None to let Edge.from_record and the checks above decide (and explain)."""
    get = r.get
    port, protocol, connections = get("port"), get("protocol"), get("connections")
    nbytes, packets, first, last = get("bytes", 0), get("packets", 0), get("first_seen", 0.0), get("last_seen", 0.0)
    port_name, via = get("port_name", ""), get("via_service", "")
    names, overflow = get("dst_names", ()), get("names_overflow", False)
    if not (type(port) is _INT and 0 <= port <= 65535 and (protocol == "TCP" or protocol == "UDP" or protocol == "SCTP")
            and type(connections) is _INT and type(nbytes) is _INT and type(packets) is _INT
            and connections >= 0 and nbytes >= 0 and packets >= 0
            and (type(first) is _FLOAT or type(first) is _INT) and (type(last) is _FLOAT or type(last) is _INT)
            and first <= last and type(port_name) is str and type(via) is str and type(overflow) is bool
            and (names == () or names == [] or (type(names) is list and all(type(n) is str for n in names)))):
        return None
    raw = (get("src"), get("dst"), port, protocol)
    if type(raw[0]) is not str or type(raw[1]) is not str:
        return None
    key = _EDGE_KEYS.get(raw)  # type: ignore[arg-type]
    if key is None:
        src, dst = _endpoint(raw[0]), _endpoint(raw[1])
        if src is None or dst is None:
            return None
        if len(_EDGE_KEYS) > 500_000:
            _EDGE_KEYS.clear()
        key = _EDGE_KEYS[raw] = EdgeKey(src, dst, port, protocol)  # type: ignore[index]
    stats = EdgeStats(connections, nbytes, packets, _FLOAT(first), _FLOAT(last), port_name, via,
                      tuple(names) if names else (), overflow)
    return Edge(key, stats)


def parse_edge_batch(body: bytes, max_records: int = 50_000) -> EdgeBatch:
    """All the edges are good, or the batch is refused naming the first bad one (`edges[3]: port: ...`)."""
    agent, records = _envelope(body, "edges", max_records)
    edges = [_edge(i, r) for i, r in enumerate(records)]
    return EdgeBatch(agent, len(edges), edges, sum(e.connections for e in edges))


def is_edge_body(body: bytes) -> bool:
    """A stored batch body that came through /api/v1/edges (the raw batches table keeps both kinds)."""
    doc = orjson.loads(body)
    return isinstance(doc, dict) and "edges" in doc


# --- the fast path for the agent's own records -------------------------------------------------------
# An agent sends native records of one shape (flow_to_record's): plain ints, one of three protocols,
# a handful of pod IPs over and over. Those are checked here, with the IP validity cached, and
# summed per enrichment input (src IP, dst IP, dst port, protocol, post-DNAT pod IP and port): a
# batch of 1,000 connections between a few pods is enriched as a few groups, with the same edges and
# counters as one Flow at a time (tests/controller/test_fast_path.py checks both agree). Any record
# not of exactly that shape (one with DNS names included) goes to netguard.flows.parse_record, which has the last word and the
# error messages.

GroupKey = tuple[str, str, int, str, str, int]
_VALID_IPS: dict[str, bool] = {}
_GROUP_KEYS: dict[tuple, GroupKey | None] = {}  # the raw enrichment inputs of a record -> its group, or None: slow path
_PROTOCOLS = {"TCP": "TCP", "UDP": "UDP", "SCTP": "SCTP", None: "TCP"}
_INT = int
_FLOAT = float


def _valid_ip(value: object) -> bool:
    if type(value) is not str:
        return False
    ok = _VALID_IPS.get(value)
    if ok is None:
        if len(_VALID_IPS) > 200_000:
            _VALID_IPS.clear()
        ok = _VALID_IPS[value] = bool(value) and is_ip(value)
    return ok


def _group_key(raw: tuple) -> GroupKey | None:
    """A record's (src_ip, dst_ip, dst_port, protocol, dst_pod_ip, dst_pod_port) as its group's key, checked
    once per distinct tuple (the ports' types are checked per record: 1, 1.0 and True are equal keys); None
    when parse_record must decide."""
    src_ip, dst_ip, dst_port, protocol, pod_ip, pod_port = raw
    proto = _PROTOCOLS.get(protocol) if protocol is None or type(protocol) is str else None
    if not (proto and _valid_ip(src_ip) and _valid_ip(dst_ip) and 0 <= dst_port <= 65535
            and (pod_ip is None or pod_ip == "" or _valid_ip(pod_ip))
            and (pod_port is None or 0 <= pod_port <= 65535)):
        return None
    key = (src_ip, dst_ip, dst_port, proto, pod_ip or "", pod_port or 0)
    return raw if key == raw else key  # one tuple kept, not two, for the usual complete record
