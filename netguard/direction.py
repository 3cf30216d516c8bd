"""Which way a packet goes, and whether its connection was already counted.

Real captures are mostly packets of established connections: a capture window rarely holds the SYN
of a gRPC channel, a database pool or a metrics exporter. A packet that goes from the client to the
server (not a reply) is evidence of a connection whatever its TCP flags; the connection is counted
once, by its 5-tuple, however many of its packets follow. When a record does not say which way it
goes, it is decided from what is known, in this order: what the record itself says (the caller's
`known`: Hubble's `is_reply` or older `reply`, a SYN or SYN-ACK, `traffic_direction` read against the
side that carries the observing endpoint's ID), an earlier packet of the connection that was decided,
which address listens on the port (the inventory's declared container and Service ports), and
ephemeral source ports. What stays undecided is counted by the caller, never dropped silently.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from enum import StrEnum

# (src ip, src port, dst ip, dst port, protocol) as the packet carries it
FiveTuple = tuple[str, int, str, int, str]
# Does (ip, port, protocol) listen? (a declared container port or a Service port of the inventory)
Listening = Callable[[str, int, str], bool]

EPHEMERAL_START = 32768  # Linux's default ip_local_port_range starts here; Windows' at 49152
WELL_KNOWN_END = 1024


class Orientation(StrEnum):
    FORWARD = "forward"  # from the client to the server: evidence of a connection
    REPLY = "reply"  # from the server back to the client
    UNKNOWN = "unknown"


def by_ports(sport: int, dport: int) -> Orientation:
    """A client's port is ephemeral (or at least not well-known) where the server's is not."""
    for boundary in (EPHEMERAL_START, WELL_KNOWN_END):
        if sport >= boundary > dport:
            return Orientation.FORWARD
        if dport >= boundary > sport:
            return Orientation.REPLY
    return Orientation.UNKNOWN


def never_listening(ip: str, port: int, protocol: str) -> bool:
    return False


class ConnectionTracker:
    """Counts each connection once, however many of its packets a capture holds.

    Bounded: past `capacity` connections the oldest are forgotten (a connection seen again after that
    is counted again: an overcount, never a loss).
    """

    def __init__(self, listening: Listening = never_listening, capacity: int = 1 << 20) -> None:
        self.listening = listening
        self.capacity = capacity
        self._seen: OrderedDict[FiveTuple, bool] = OrderedDict()  # the connection's forward tuple -> counted already

    def observe(self, packet: FiveTuple, known: Orientation = Orientation.UNKNOWN) -> tuple[Orientation, bool]:
        """The packet's orientation, and whether it is the first evidence of a new connection."""
        src, sport, dst, dport, proto = packet
        reverse = (dst, dport, src, sport, proto)
        if known is Orientation.UNKNOWN:
            if packet in self._seen:
                known = Orientation.FORWARD
            elif reverse in self._seen:
                known = Orientation.REPLY
            else:
                known = self._guess(packet)
        if known is Orientation.FORWARD:
            counted = self._seen.get(packet)
            if counted:
                return known, False
            self._remember(packet, True)
            return known, True
        if known is Orientation.REPLY and reverse not in self._seen:
            self._remember(reverse, False)  # its later packets are decided by this one
        return known, False

    def _guess(self, packet: FiveTuple) -> Orientation:
        src, sport, dst, dport, proto = packet
        dst_listens, src_listens = self.listening(dst, dport, proto), self.listening(src, sport, proto)
        if dst_listens != src_listens:
            return Orientation.FORWARD if dst_listens else Orientation.REPLY
        return by_ports(sport, dport)

    def _remember(self, key: FiveTuple, counted: bool) -> None:
        if len(self._seen) >= self.capacity:
            self._seen.popitem(last=False)  # the oldest
        self._seen[key] = counted


def tcp_orientation(syn: bool, ack: bool) -> Orientation:
    """A SYN opens a connection from the client; a SYN-ACK answers it. Other flags say nothing."""
    if syn:
        return Orientation.REPLY if ack else Orientation.FORWARD
    return Orientation.UNKNOWN
