"""Sets of (protocol, port) as sorted intervals, so a whole port range is one value, never 65535 of them.

The connectivity map and the evaluator's port-set answers compute with these: union of rules,
intersection of the two ends, difference for admin Deny/Pass. Printed the way netpol-analyzer and
roxctl print them: `All Connections`, or `TCP 80,8080-8090,UDP 53` (TCP, then UDP, then SCTP).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from netguard.model import PROTOCOLS

MAX_PORT = 65535
Interval = tuple[int, int]


def _normalize(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    out: list[list[int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def _intersect(a: tuple[Interval, ...], b: tuple[Interval, ...]) -> tuple[Interval, ...]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _subtract(a: tuple[Interval, ...], b: tuple[Interval, ...]) -> tuple[Interval, ...]:
    out = []
    for lo, hi in a:
        for blo, bhi in b:
            if bhi < lo or blo > hi:
                continue
            if blo > lo:
                out.append((lo, blo - 1))
            lo = bhi + 1
            if lo > hi:
                break
        if lo <= hi:
            out.append((lo, hi))
    return tuple(out)


@dataclass(frozen=True, order=True)
class PortSet:
    """Per protocol (TCP, UDP, SCTP, in that order) the sorted disjoint port intervals it holds."""

    tcp: tuple[Interval, ...] = ()
    udp: tuple[Interval, ...] = ()
    sctp: tuple[Interval, ...] = ()

    @classmethod
    def all(cls) -> PortSet:
        return _ALL  # one object: `is` checks make unions and intersections with it free

    @classmethod
    def of(cls, protocol: str, lo: int = 1, hi: int | None = None) -> PortSet:
        """Ports lo..hi of one protocol (every port when only the protocol is given)."""
        span = ((lo, MAX_PORT if hi is None and lo == 1 else (hi if hi is not None else lo)),)
        return cls(**{protocol.lower(): span})

    def _parts(self) -> tuple[tuple[Interval, ...], ...]:
        return (self.tcp, self.udp, self.sctp)

    def __bool__(self) -> bool:
        return bool(self.tcp or self.udp or self.sctp)

    def __or__(self, other: PortSet) -> PortSet:
        if not other or self is other:
            return self
        if not self:
            return other
        return PortSet(*(_normalize(a + b) for a, b in zip(self._parts(), other._parts(), strict=True)))

    def __and__(self, other: PortSet) -> PortSet:
        if self is _ALL or not other:
            return other
        if other is _ALL or not self:
            return self
        return PortSet(*(_intersect(a, b) for a, b in zip(self._parts(), other._parts(), strict=True)))

    def __sub__(self, other: PortSet) -> PortSet:
        return PortSet(*(_subtract(a, b) for a, b in zip(self._parts(), other._parts(), strict=True)))

    def contains(self, port: int, protocol: str) -> bool:
        return any(lo <= port <= hi for lo, hi in getattr(self, protocol.lower()))

    @property
    def is_all(self) -> bool:
        return self == _ALL

    def intervals(self) -> list[tuple[str, int, int]]:
        """(protocol, lo, hi), TCP then UDP then SCTP."""
        return [(proto, lo, hi) for proto, part in zip(PROTOCOLS, self._parts(), strict=True) for lo, hi in part]

    def __str__(self) -> str:
        if self.is_all:
            return "All Connections"
        if not self:
            return "No Connections"
        words = []
        for proto, part in zip(PROTOCOLS, self._parts(), strict=True):
            if part:
                words.append(f"{proto} " + ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in part))
        return ",".join(words)


_ALL = PortSet(((1, MAX_PORT),), ((1, MAX_PORT),), ((1, MAX_PORT),))
NONE = PortSet()
