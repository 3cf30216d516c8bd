"""Just enough of the DNS wire format for the lab: A queries and answers (RFC 1035)."""

from __future__ import annotations

import ipaddress
import struct

TYPE_A = 1
CLASS_IN = 1
NOERROR, FORMERR, NXDOMAIN = 0, 1, 3
TTL = 5


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError(f"invalid DNS label in {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def query(name: str, qid: int, qtype: int = TYPE_A) -> bytes:
    """A standard query with recursion desired."""
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", qtype, CLASS_IN)


def parse_question(packet: bytes) -> tuple[int, int, str, int, int]:
    """(id, flags, name, qtype, end of question) of a query; ValueError when malformed."""
    if len(packet) < 12:
        raise ValueError("short DNS header")
    qid, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount != 1:
        raise ValueError("expected one question")
    labels, pos = [], 12
    while True:
        if pos >= len(packet):
            raise ValueError("truncated name")
        length = packet[pos]
        pos += 1
        if length == 0:
            break
        if length >= 64:
            raise ValueError("compressed or invalid label in question")
        labels.append(packet[pos:pos + length].decode("ascii", "replace").lower())
        pos += length
    if pos + 4 > len(packet):
        raise ValueError("truncated question")
    qtype, _qclass = struct.unpack("!HH", packet[pos:pos + 4])
    return qid, flags, ".".join(labels), qtype, pos + 4


def answer(packet: bytes, address: str | None) -> bytes:
    """The response to `packet`: an A record for `address`, NXDOMAIN when None, no data for other types."""
    try:
        qid, flags, _name, qtype, end = parse_question(packet)
    except ValueError:
        qid = struct.unpack("!H", packet[:2])[0] if len(packet) >= 2 else 0
        return struct.pack("!HHHHHH", qid, 0x8000 | FORMERR, 0, 0, 0, 0)
    question = packet[12:end]
    rd = flags & 0x0100
    if address is None:
        return struct.pack("!HHHHHH", qid, 0x8400 | rd | NXDOMAIN, 1, 0, 0, 0) + question
    if qtype != TYPE_A:
        return struct.pack("!HHHHHH", qid, 0x8400 | rd, 1, 0, 0, 0) + question
    record = struct.pack("!HHHLH", 0xC00C, TYPE_A, CLASS_IN, TTL, 4) + ipaddress.IPv4Address(address).packed
    return struct.pack("!HHHHHH", qid, 0x8400 | rd, 1, 1, 0, 0) + question + record


def parse_answer(packet: bytes, qid: int) -> str | None:
    """The first A record of a response to query `qid`; None for NXDOMAIN or no data."""
    if len(packet) < 12:
        raise ValueError("short DNS response")
    rid, flags, qdcount, ancount = struct.unpack("!HHHH", packet[:8])
    if rid != qid:
        raise ValueError("response to another query")
    if flags & 0x000F == NXDOMAIN or ancount == 0:
        return None
    pos = 12
    for _ in range(qdcount):
        pos = _skip_name(packet, pos) + 4
    for _ in range(ancount):
        pos = _skip_name(packet, pos)
        rtype, _rclass, _ttl, rdlen = struct.unpack("!HHLH", packet[pos:pos + 10])
        pos += 10
        if rtype == TYPE_A and rdlen == 4:
            return str(ipaddress.IPv4Address(packet[pos:pos + 4]))
        pos += rdlen
    return None


def _skip_name(packet: bytes, pos: int) -> int:
    while True:
        length = packet[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + length
