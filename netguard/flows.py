"""Flow readers: native JSON lines, Hubble JSON (wrapped or bare), and pcap through scapy.

The format is detected per line, so a file may mix them. Readers are generators: a million records
stream through enrichment and aggregation without being held in memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from netguard.direction import ConnectionTracker, Listening, Orientation, never_listening, tcp_orientation
from netguard.errors import InputError
from netguard.inventory import guess_workload, is_ip, top_owner
from netguard.model import PROTOCOLS, Flow, PodHint, Workload, freeze_labels
from netguard.validation import check_name, check_namespace, label_problem

_PROTO_NUMBERS = {"6": "TCP", "17": "UDP", "132": "SCTP"}
_FRACTION = re.compile(r"(\.\d{6})\d+")
# Labels Cilium adds to an identity: no podSelector can match them.
_CILIUM_LABEL_PREFIXES = ("io.kubernetes.pod.namespace", "io.cilium.k8s.", "io.cilium.")
# A DNS name as Cilium's toFQDNs matchName accepts it (letters, digits, '-', '_', dots between labels).
_DNS_NAME = re.compile(r"(?:[A-Za-z0-9_-]+\.)*[A-Za-z0-9_-]+\.?")
_KIND = re.compile(r"[A-Z][A-Za-z0-9]{0,62}")
_PCAP_MAGIC = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a")


MAX_INVALID_EXAMPLES = 5


@dataclass
class ReadStats:
    """What a reader saw besides flows, so nothing is dropped silently."""

    records: int = 0
    flows: int = 0  # connections: each counted once, from its first packet going from client to server
    mid_connection: int = 0  # of those, connections whose first packet seen was not a SYN (or SCTP INIT)
    replies: int = 0  # packets from the server back to the client: not new connections
    duplicates: int = 0  # more packets of a connection already counted
    undecided: int = 0  # packets whose direction nothing told (no is_reply, no SYN, no listening side)
    not_l4: int = 0  # ICMP and other records without TCP/UDP/SCTP ports
    dropped_verdicts: int = 0  # Hubble flows the dataplane dropped: traffic that did not happen
    other_verdicts: int = 0  # Hubble verdicts that are no evidence of a connection (TRACED, TRANSLATED, ...)
    other: int = 0  # non-flow Hubble records (lost events, node status)
    identified: int = 0  # connections whose record carries an identity (Hubble): usable without an inventory
    invalid: int = 0  # lines skipped as invalid (with skip_invalid)
    invalid_examples: list[str] = field(default_factory=list)  # the first few, as their errors word them

    @property
    def not_connections(self) -> int:
        """Records that were read but are not new connections (each kind counted above)."""
        return (self.replies + self.duplicates + self.undecided + self.not_l4 + self.dropped_verdicts
                + self.other_verdicts + self.other + self.invalid)

    def merge(self, other: ReadStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        del self.invalid_examples[MAX_INVALID_EXAMPLES:]

    def skip(self, error: InputError) -> None:
        self.invalid += 1
        if len(self.invalid_examples) < MAX_INVALID_EXAMPLES:
            self.invalid_examples.append(str(error))


def read_flows(
    paths: Iterable[str | Path],
    stats: ReadStats | None = None,
    listening: Listening = never_listening,
    skip_invalid: bool = False,
) -> Iterator[Flow]:
    """Every connection in the files, once each, in file order. `-` reads standard input.

    One tracker spans the files (a capture cut into files is one capture); `listening` says which
    (ip, port, protocol) an inventory declares, to orient packets that do not say their direction.
    A bad line stops the read (InputError naming it), or with `skip_invalid` is counted in `stats`."""
    stats = stats if stats is not None else ReadStats()
    tracker = ConnectionTracker(listening)
    for path in paths:
        path_s = str(path)
        if path_s == "-":
            import sys

            yield from _read_lines(sys.stdin, "<stdin>", stats, tracker, skip_invalid=skip_invalid)
            continue
        p = Path(path_s)
        if not p.is_file():
            raise InputError("no such file", source=path_s)
        with p.open("rb") as fh:
            magic = fh.read(4)
        if magic in _PCAP_MAGIC:
            yield from read_pcap(p, stats, tracker)
            continue
        try:
            with p.open(encoding="utf-8") as fh:
                yield from _read_lines(fh, path_s, stats, tracker, skip_invalid=skip_invalid)
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text nor a pcap file ({exc.reason})", source=path_s) from None


def read_line_range(
    path: str | Path,
    start: int,
    end: int,
    first_lineno: int,
    stats: ReadStats,
    listening: Listening = never_listening,
    skip_invalid: bool = False,
) -> Iterator[Flow]:
    """The flows of the lines in bytes [start, end) of a JSON-lines file (for parallel readers);
    `start` is at a line start, and errors name the line as in the whole file."""
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text nor a pcap file ({exc.reason})", source=str(path)) from None
    yield from _read_lines(text.split("\n"), str(path), stats, ConnectionTracker(listening), first_lineno, skip_invalid)


def _read_lines(
    lines: Iterable[str],
    source: str,
    stats: ReadStats,
    tracker: ConnectionTracker,
    first_lineno: int = 1,
    skip_invalid: bool = False,
) -> Iterator[Flow]:
    for lineno, line in enumerate(lines, first_lineno):
        line = line.strip()
        if not line:
            continue
        stats.records += 1
        try:
            flow = _parse_line(line, lineno, source, stats, tracker)
        except InputError as exc:
            if not skip_invalid:
                raise
            stats.skip(exc)
            continue
        if flow is not None:
            stats.flows += 1
            yield flow


def _parse_line(line: str, lineno: int, source: str, stats: ReadStats, tracker: ConnectionTracker) -> Flow | None:
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        msg, colno, pos = getattr(exc, "msg", "nested too deeply"), getattr(exc, "colno", 0), getattr(exc, "pos", 0)
        truncated = line.startswith("{") and (pos >= len(line) - 1 or "Unterminated" in msg)
        what = "truncated JSON" if truncated else "not JSON"
        raise InputError(f"line {lineno}: {what} ({msg} at column {colno})", source=source) from None
    if not isinstance(record, dict):
        raise InputError(f"line {lineno}: expected a JSON object, got {type(record).__name__}", source=source)
    try:
        return parse_record(record, stats, tracker)
    except InputError as exc:
        raise InputError(f"line {lineno}: {exc.message}", source=source) from None


def parse_record(
    record: Mapping[str, Any], stats: ReadStats | None = None, tracker: ConnectionTracker | None = None
) -> Flow | None:
    """One JSON record -> a Flow, or None when it is not a new connection. A native record is one
    connection; a Hubble record is a packet, counted once per connection by `tracker` (without one,
    every packet going from client to server is a flow)."""
    stats = stats if stats is not None else ReadStats()
    if "flow" in record and isinstance(record["flow"], dict):
        return parse_hubble(record["flow"], stats, tracker)
    if "src_ip" in record or "dst_ip" in record:
        return parse_native(record)
    if "IP" in record or "l4" in record or ("source" in record and "destination" in record):
        return parse_hubble(record, stats, tracker)
    if any(k in record for k in ("lost_events", "node_status", "debug_event", "agent_event")):
        stats.other += 1
        return None
    raise InputError(f"unrecognized flow record (keys: {', '.join(sorted(record)[:6])})")


def _protocol(value: Any) -> str:
    proto = str(value if value is not None else "TCP").upper()
    proto = _PROTO_NUMBERS.get(proto, proto)
    if proto not in PROTOCOLS:
        raise InputError(f"unknown protocol {value!r} (TCP, UDP or SCTP)")
    return proto


def _port(record: Mapping[str, Any], key: str, required: bool = True) -> int:
    value = record.get(key)
    if type(value) is int and 0 <= value <= 65535:
        return value
    if value is None and not required:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit() or not 0 <= int(value) <= 65535:
        raise InputError(f"{key}: invalid port {value!r}")
    return int(value)


def _ip(record: Mapping[str, Any], key: str, required: bool = True) -> str:
    value = record.get(key)
    if not value and not required:
        return ""
    if type(value) is not str or not is_ip(value):
        raise InputError(f"{key}: invalid IP address {value!r}")
    return value


def parse_time(value: Any) -> float:
    if value is None or value == "":
        return 0.0
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(_FRACTION.sub(r"\1", value.replace("Z", "+00:00"))).timestamp()
        except ValueError:
            pass
    raise InputError(f"time: not RFC 3339 nor epoch seconds: {value!r}")


def _count(record: Mapping[str, Any], key: str) -> int:
    value = record.get(key) or 0
    if type(value) is not int or value < 0:
        raise InputError(f"{key}: expected a non-negative integer, got {value!r}")
    return value


def _names(record: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """An optional list of DNS names -> sorted, lower case, without the root dot, deduplicated."""
    value = record.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InputError(f"{key}: expected a list of DNS names, got {value!r}")
    names = set()
    for name in value:
        if type(name) is not str or len(name) > 253 or not _DNS_NAME.fullmatch(name):
            raise InputError(f"{key}: not a DNS name: {name!r}")
        names.add(name.lower().rstrip("."))
    return tuple(sorted(names))


def parse_native(record: Mapping[str, Any]) -> Flow:
    when = record.get("time")
    proto = record.get("protocol")
    return Flow(
        when if type(when) is float else parse_time(when),
        _ip(record, "src_ip"),
        _port(record, "src_port", required=False),
        _ip(record, "dst_ip"),
        _port(record, "dst_port"),
        proto if proto in PROTOCOLS else _protocol(proto),
        _count(record, "bytes"),
        _count(record, "packets"),
        str(record.get("node") or ""),
        _ip(record, "dst_pod_ip", required=False),
        _port(record, "dst_pod_port", required=False),
        dst_names=_names(record, "dst_names"),
    )


_EVIDENCE_VERDICTS = frozenset({"FORWARDED", "REDIRECTED", "AUDIT"})
_DROP_VERDICTS = frozenset({"DROPPED", "ERROR", "DENIED"})


def parse_hubble(flow: Mapping[str, Any], stats: ReadStats, tracker: ConnectionTracker | None = None) -> Flow | None:
    """A Hubble packet -> the Flow of its connection the first time a packet goes from client to server."""
    verdict = str(flow.get("verdict") or "FORWARDED").upper()
    if verdict in _DROP_VERDICTS:
        stats.dropped_verdicts += 1
        return None
    if verdict not in _EVIDENCE_VERDICTS:
        stats.other_verdicts += 1
        return None
    l4 = flow.get("l4") or {}
    if not isinstance(l4, dict):
        raise InputError(f"l4: expected an object, got {type(l4).__name__}")
    proto = next((p for p in ("TCP", "UDP", "SCTP") if p in l4), None)
    if proto is None:
        if l4 and not any(k in l4 for k in ("ICMPv4", "ICMPv6")):
            raise InputError(f"unknown protocol {sorted(l4)[0]!r} in l4 (TCP, UDP or SCTP)")
        stats.not_l4 += 1
        return None
    ports = l4[proto] or {}
    if not isinstance(ports, dict):
        raise InputError(f"l4.{proto}: expected an object, got {type(ports).__name__}")
    ip = flow.get("IP") or {}
    if not isinstance(ip, dict):
        raise InputError(f"IP: expected an object, got {type(ip).__name__}")
    src_ip, dst_ip = _ip(ip, "source"), _ip(ip, "destination")
    src_port, dst_port = _port(ports, "source_port", required=False), _port(ports, "destination_port")
    when, names = parse_time(flow.get("time")), _names(flow, "destination_names")  # every record is checked
    src_hint, dst_hint = _hubble_hint(flow.get("source"), "source"), _hubble_hint(flow.get("destination"), "destination")
    known, syn = _hubble_orientation(flow, ports)
    if tracker is None:
        tracker = ConnectionTracker()
    orientation, new = tracker.observe((src_ip, src_port, dst_ip, dst_port, proto), known)
    if not new:
        _count_not_new(stats, orientation)
        return None
    if not syn:
        stats.mid_connection += 1
    if src_hint is not None or dst_hint is not None:
        stats.identified += 1
    return Flow(
        time=when,
        src_ip=src_ip,
        src_port=src_port,
        dst_ip=dst_ip,
        dst_port=dst_port,
        protocol=proto,
        node=str(flow.get("node_name") or ""),
        src_hint=src_hint,
        dst_hint=dst_hint,
        dst_names=names,
    )


def _hubble_orientation(flow: Mapping[str, Any], ports: Mapping[str, Any]) -> tuple[Orientation, bool]:
    """What the record itself says of its direction, and whether it is a connection's opening packet.

    `is_reply` (or the older `reply`) when present; else a SYN; else `traffic_direction` (of the
    connection, relative to the endpoint that observed it: the side carrying an endpoint `ID`)."""
    flags = ports.get("flags")
    syn = isinstance(flags, dict) and bool(flags.get("SYN"))
    opening = tcp_orientation(syn, isinstance(flags, dict) and bool(flags.get("ACK")))
    reply = flow.get("is_reply", flow.get("reply"))
    if type(reply) is bool:
        return (Orientation.REPLY if reply else Orientation.FORWARD), opening is Orientation.FORWARD
    if opening is not Orientation.UNKNOWN:
        return opening, opening is Orientation.FORWARD
    direction = str(flow.get("traffic_direction") or "").upper()
    src, dst = flow.get("source"), flow.get("destination")
    src_local = isinstance(src, dict) and "ID" in src
    dst_local = isinstance(dst, dict) and "ID" in dst
    if direction in ("INGRESS", "EGRESS") and src_local != dst_local:
        forward = src_local if direction == "EGRESS" else dst_local
        return (Orientation.FORWARD if forward else Orientation.REPLY), False
    return Orientation.UNKNOWN, False


_HINTS: dict[tuple, PodHint | None] = {}  # endpoint fields -> the hint they make: a capture repeats them


def _hubble_hint(endpoint: Any, side: str) -> PodHint | None:
    """What a Hubble endpoint says of one side, checked once per distinct endpoint (cached)."""
    key = _hint_key(endpoint)
    if key is not None:
        hint = _HINTS.get(key, _MISSING)
        if hint is not _MISSING:
            return hint  # type: ignore[return-value]
    hint = _parse_hint(endpoint, side)
    if key is not None:
        if len(_HINTS) >= 1 << 16:
            _HINTS.clear()
        _HINTS[key] = hint
    return hint


_MISSING = object()


def _hint_key(endpoint: Any) -> tuple | None:
    """The fields a hint is made of, hashable, or None (an odd shape: parsed every time, to say what is wrong)."""
    if type(endpoint) is not dict:
        return None
    labels, owners = endpoint.get("labels"), endpoint.get("workloads")
    if not (labels is None or type(labels) is list) or not (owners is None or type(owners) is list):
        return None
    owner = owners[0] if owners else None
    if owner is not None and type(owner) is not dict:
        return None
    key = (endpoint.get("namespace"), endpoint.get("pod_name"), tuple(labels or ()),
           (owner.get("kind"), owner.get("name")) if owner else None)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _parse_hint(endpoint: Any, side: str) -> PodHint | None:
    """What a Hubble endpoint says of one side. Its names and labels are data from the network: each
    is checked as the API server would (they become selectors and file names)."""
    if endpoint is None:
        return None
    if not isinstance(endpoint, dict):
        raise InputError(f"{side}: expected an object, got {type(endpoint).__name__}")
    raw_labels = endpoint.get("labels") or []
    if not isinstance(raw_labels, list):
        raise InputError(f"{side}.labels: expected a list of strings, got {type(raw_labels).__name__}")
    labels: dict[str, str] = {}
    reserved = ""
    for label in raw_labels:
        if type(label) is not str:
            raise InputError(f"{side}.labels: expected a list of strings, got an item {label!r}")
        source, _, kv = label.partition(":")
        key, _, value = kv.partition("=")
        if source == "reserved":
            reserved = reserved or key
        elif source == "k8s" and not key.startswith(_CILIUM_LABEL_PREFIXES):
            if problem := label_problem(key, value):
                raise InputError(f"{side}.labels: {problem}")
            labels[key] = value
    namespace = _hubble_name(endpoint, "namespace", side)
    pod = _hubble_name(endpoint, "pod_name", side)
    workload: Workload | None = None
    if namespace and pod:
        owners = endpoint.get("workloads") or []
        if not isinstance(owners, list):
            raise InputError(f"{side}.workloads: expected a list, got {type(owners).__name__}")
        owner = owners[0] if owners and isinstance(owners[0], dict) else None
        if owner and owner.get("name"):
            kind = owner.get("kind") or "Deployment"
            if type(kind) is not str or not _KIND.fullmatch(kind):
                raise InputError(f"{side}.workloads[0].kind: Invalid value: {kind!r}: not a Kubernetes kind")
            workload = top_owner(namespace, kind, _hubble_name(owner, "name", f"{side}.workloads[0]"))
        else:
            workload = guess_workload(namespace, pod, labels)
    if not (workload or reserved):
        return None
    return PodHint(namespace=namespace, pod=pod, labels=freeze_labels(labels), workload=workload, reserved=reserved)


def _hubble_name(record: Mapping[str, Any], key: str, side: str) -> str:
    """A namespace (an RFC 1123 label) or an object name (an RFC 1123 subdomain), or ""."""
    value = record.get(key)
    if value is None or value == "":
        return ""
    try:
        return check_namespace(value, key) if key == "namespace" else check_name(value, key)
    except InputError as exc:
        raise InputError(f"{side}.{exc.message}") from None


def read_pcap(path: Path, stats: ReadStats, tracker: ConnectionTracker | None = None) -> Iterator[Flow]:
    """The connections in a capture, once each: from a TCP SYN or SCTP INIT when the capture holds it,
    else from the first packet that goes from client to server (a capture that begins mid-stream);
    the first datagram of a UDP 5-tuple whose direction nothing else tells."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.sctp import SCTP, SCTPChunkInit
    from scapy.utils import PcapReader

    tracker = tracker if tracker is not None else ConnectionTracker()
    try:
        reader = PcapReader(str(path))
    except Exception as exc:  # scapy raises Scapy_Exception and others on a bad header
        raise InputError(f"cannot read pcap: {exc}", source=str(path)) from None
    with reader:
        for packet in reader:
            stats.records += 1
            net = packet.getlayer(IP) or packet.getlayer(IPv6)
            if net is None:
                stats.not_l4 += 1
                continue
            known, opening = Orientation.UNKNOWN, False
            if (tcp := packet.getlayer(TCP)) is not None:
                proto, sport, dport = "TCP", tcp.sport, tcp.dport
                known = tcp_orientation(bool(tcp.flags & 0x02), bool(tcp.flags & 0x10))
                opening = known is Orientation.FORWARD
            elif (udp := packet.getlayer(UDP)) is not None:
                proto, sport, dport = "UDP", udp.sport, udp.dport
            elif (sctp := packet.getlayer(SCTP)) is not None:
                proto, sport, dport = "SCTP", sctp.sport, sctp.dport
                if packet.getlayer(SCTPChunkInit) is not None:
                    known, opening = Orientation.FORWARD, True
            else:
                stats.not_l4 += 1
                continue
            packet_tuple = (net.src, sport, net.dst, dport, proto)
            orientation, new = tracker.observe(packet_tuple, known)
            if orientation is Orientation.UNKNOWN and proto == "UDP":  # a datagram nobody answered yet: the first
                orientation, new = tracker.observe(packet_tuple, Orientation.FORWARD)
                opening = new
            if not new:
                _count_not_new(stats, orientation)
                continue
            if not opening:
                stats.mid_connection += 1
            stats.flows += 1
            yield Flow(float(packet.time), net.src, sport, net.dst, dport, proto, len(net), 1)


def _count_not_new(stats: ReadStats, orientation: Orientation) -> None:
    if orientation is Orientation.FORWARD:
        stats.duplicates += 1
    elif orientation is Orientation.REPLY:
        stats.replies += 1
    else:
        stats.undecided += 1


def flow_to_record(flow: Flow) -> dict[str, Any]:
    """The native JSON form of a flow (what the agent writes)."""
    out: dict[str, Any] = {
        "time": flow.time,
        "src_ip": flow.src_ip,
        "src_port": flow.src_port,
        "dst_ip": flow.dst_ip,
        "dst_port": flow.dst_port,
        "protocol": flow.protocol,
    }
    for key in ("bytes", "packets", "node", "dst_pod_ip", "dst_pod_port"):
        if value := getattr(flow, key):
            out[key] = value
    if flow.dst_names:
        out["dst_names"] = list(flow.dst_names)
    return out
