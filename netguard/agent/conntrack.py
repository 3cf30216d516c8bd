"""Conntrack events over netlink: NEW and DESTROY, decoded straight from the wire.

The socket is a plain NETLINK_NETFILTER socket bound to the ctnetlink multicast groups (the numbers
come from pyroute2's nfnetlink definitions). Messages are decoded here with `struct` rather than
with pyroute2's generic NLA classes: the few attributes a flow needs cost a few microseconds, where
the generic decoder costs about 100 µs a message, which would take a whole core at 5k connections
a second. `tests/agent` checks this decoder against pyroute2's on the same bytes.

- NEW (type 0 with NLM_F_CREATE): the original tuple is the connection as the client made it (a
  ClusterIP for a Service); the reply tuple's source is the real backend after DNAT.
- DESTROY (type 2): the same tuples plus packet/byte counters when `nf_conntrack_acct` is 1.
- At start, a dump of the table (`dump_existing`): the connections opened before the agent started (a
  database pool, a gRPC channel) are reported too, or they would never be seen: they make no NEW event.
A full receive buffer makes the kernel drop events and the socket report ENOBUFS: counted as lost.
The buffer is 256 MiB (SO_RCVBUFFORCE; kernel memory, not the agent's RSS): about 10 s of events at
the fastest rate this machine makes, so a busy moment is absorbed rather than lost.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

from pyroute2.netlink import NETLINK_NETFILTER
from pyroute2.netlink.nfnetlink import NFNLGRP_CONNTRACK_DESTROY, NFNLGRP_CONNTRACK_NEW

SOL_NETLINK = 270
SO_RCVBUFFORCE = 33
NLM_F_CREATE = 0x400
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
CT_NEW, CT_GET, CT_DELETE = 0, 1, 2
NFNL_SUBSYS_CTNETLINK = 1
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_COUNTERS_ORIG, CTA_COUNTERS_REPLY, CTA_ID = 1, 2, 9, 10, 12
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_COUNTERS_PACKETS, CTA_COUNTERS_BYTES = 1, 2
NLA_TYPE_MASK = 0x3FFF
PROTOCOLS = {6: "TCP", 17: "UDP", 132: "SCTP"}

_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_NLA = struct.Struct("=HH")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")


@dataclass(frozen=True, slots=True)
class Tuple5:
    src: str
    dst: str
    sport: int
    dport: int
    proto: int


@dataclass(frozen=True, slots=True)
class CtEvent:
    kind: str  # "new", "destroy", or "existing" (in the table when the agent started)
    orig: Tuple5
    reply: Tuple5 | None
    id: int = 0
    packets: int = 0  # both directions, DESTROY with nf_conntrack_acct
    bytes: int = 0
    time: float = 0.0


def _attrs(buf: bytes, start: int, end: int) -> dict[int, tuple[int, int]]:
    out = {}
    pos = start
    while pos + 4 <= end:
        length, type_ = _NLA.unpack_from(buf, pos)
        if length < 4:
            break
        out[type_ & NLA_TYPE_MASK] = (pos + 4, pos + length)
        pos += (length + 3) & ~3
    return out


def _ip(buf: bytes, span: tuple[int, int]) -> str:
    raw = buf[span[0]:span[1]]
    if len(raw) == 4:
        return socket.inet_ntoa(raw)
    return str(ipaddress.IPv6Address(raw))


def _tuple(buf: bytes, span: tuple[int, int]) -> Tuple5 | None:
    parts = _attrs(buf, *span)
    ip = parts.get(CTA_TUPLE_IP)
    proto = parts.get(CTA_TUPLE_PROTO)
    if ip is None or proto is None:
        return None
    ips = _attrs(buf, *ip)
    src = ips.get(CTA_IP_V4_SRC) or ips.get(CTA_IP_V6_SRC)
    dst = ips.get(CTA_IP_V4_DST) or ips.get(CTA_IP_V6_DST)
    if src is None or dst is None:
        return None
    p = _attrs(buf, *proto)
    num = buf[p[CTA_PROTO_NUM][0]] if CTA_PROTO_NUM in p else 0
    sport = _U16.unpack_from(buf, p[CTA_PROTO_SRC_PORT][0])[0] if CTA_PROTO_SRC_PORT in p else 0
    dport = _U16.unpack_from(buf, p[CTA_PROTO_DST_PORT][0])[0] if CTA_PROTO_DST_PORT in p else 0
    return Tuple5(_ip(buf, src), _ip(buf, dst), sport, dport, num)


def _counters(buf: bytes, span: tuple[int, int] | None) -> tuple[int, int]:
    if span is None:
        return 0, 0
    c = _attrs(buf, *span)
    packets = _U64.unpack_from(buf, c[CTA_COUNTERS_PACKETS][0])[0] if CTA_COUNTERS_PACKETS in c else 0
    bytes_ = _U64.unpack_from(buf, c[CTA_COUNTERS_BYTES][0])[0] if CTA_COUNTERS_BYTES in c else 0
    return packets, bytes_


def decode(buf: bytes, now: float = 0.0, dump: bool = False) -> Iterator[CtEvent]:
    """Every conntrack NEW/DESTROY event in one netlink datagram (with `dump`: every entry of a
    table dump, as "existing")."""
    pos, size = 0, len(buf)
    while pos + 16 <= size:
        length, type_, flags, _seq, _pid = _HDR.unpack_from(buf, pos)
        if length < 16 or pos + length > size:
            break
        msg_type = type_ & 0xFF
        if type_ >> 8 == 1 and (msg_type == CT_DELETE or (msg_type == CT_NEW and (dump or flags & NLM_F_CREATE))):
            attrs = _attrs(buf, pos + 20, pos + length)  # after nlmsghdr (16) and nfgenmsg (4)
            orig = _tuple(buf, attrs[CTA_TUPLE_ORIG]) if CTA_TUPLE_ORIG in attrs else None
            if orig is not None:
                reply = _tuple(buf, attrs[CTA_TUPLE_REPLY]) if CTA_TUPLE_REPLY in attrs else None
                ct_id = _U32.unpack_from(buf, attrs[CTA_ID][0])[0] if CTA_ID in attrs else 0
                if msg_type == CT_DELETE:
                    p1, b1 = _counters(buf, attrs.get(CTA_COUNTERS_ORIG))
                    p2, b2 = _counters(buf, attrs.get(CTA_COUNTERS_REPLY))
                    yield CtEvent("destroy", orig, reply, ct_id, p1 + p2, b1 + b2, now)
                else:
                    yield CtEvent("existing" if dump else "new", orig, reply, ct_id, 0, 0, now)
        pos += (length + 3) & ~3


class ConntrackSocket:
    """A netlink socket subscribed to conntrack NEW and DESTROY events."""

    def __init__(self, new: bool = True, destroy: bool = True, rcvbuf: int = 256 << 20) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        groups = (1 << (NFNLGRP_CONNTRACK_NEW - 1) if new else 0) | (1 << (NFNLGRP_CONNTRACK_DESTROY - 1) if destroy else 0)
        self.sock.bind((0, groups))
        self.sock.settimeout(0.2)
        self.lost = 0  # ENOBUFS reports: the kernel dropped events
        self._buf = bytearray(1 << 20)

    def read(self) -> list[CtEvent]:
        """The events of whatever datagrams are waiting (blocks up to 0.2 s for the first)."""
        events: list[CtEvent] = []
        view = memoryview(self._buf)
        try:
            n = self.sock.recv_into(self._buf)
        except TimeoutError:
            return events
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:
                self.lost += 1
                return events
            raise
        now = time.time()
        events.extend(decode(bytes(view[:n]), now))
        for _ in range(4096):  # drain without blocking, a bounded batch at a time
            try:
                n = self.sock.recv_into(self._buf, 0, socket.MSG_DONTWAIT)
            except (BlockingIOError, TimeoutError):
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.lost += 1
                    continue
                raise
            events.extend(decode(bytes(view[:n]), now))
        return events

    def close(self) -> None:
        self.sock.close()


def dump_existing(family: int = socket.AF_UNSPEC, timeout: float = 10.0) -> list[CtEvent]:
    """The connections in the conntrack table now (IPCTNL_MSG_CT_GET with NLM_F_DUMP): those opened
    before the agent subscribed to events. Bounded by `timeout`."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    events: list[CtEvent] = []
    try:
        sock.bind((0, 0))
        sock.settimeout(timeout)
        request = _HDR.pack(20, (NFNL_SUBSYS_CTNETLINK << 8) | CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
        sock.send(request + struct.pack("=BBH", family, 0, 0))
        deadline = time.monotonic() + timeout
        now = time.time()
        while time.monotonic() < deadline:
            buf = sock.recv(1 << 20)
            events.extend(decode(buf, now, dump=True))
            if _done(buf):
                break
    finally:
        sock.close()
    return events


def _done(buf: bytes) -> bool:
    """Whether a dump's datagram holds its end (NLMSG_DONE, or an error)."""
    pos = 0
    while pos + 16 <= len(buf):
        length, type_ = _HDR.unpack_from(buf, pos)[:2]
        if type_ in (NLMSG_DONE, NLMSG_ERROR):
            return True
        if length < 16:
            return True
        pos += (length + 3) & ~3
    return False
