"""Connection starts sniffed with AF_PACKET and a kernel BPF filter.

One SOCK_DGRAM packet socket on every interface of the namespace; the kernel filter passes IPv4
TCP SYNs without ACK, SCTP INITs and UDP datagrams (unfragmented) only. The first datagram of a UDP
5-tuple (either direction, before or after DNAT) is the start of a UDP flow, remembered in a bounded
LRU. A forwarded start is paired with its copy sent after the Service DNAT, which names the backend
pod (see `SniffSocket`). A start this host sends itself (seen only as sent) is reported as it is.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import time
from dataclasses import replace
from typing import Any

from cachetools import LRUCache

from netguard.model import Flow

ETH_P_IP = 0x0800
ETH_P_ALL = 0x0003
SOL_PACKET = 263
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
PACKET_OUTGOING = 4

# Classic BPF over a raw IPv4 packet (SOCK_DGRAM: the filter starts at the IP header).
_LD_B, _LD_H, _LDX_MSH, _LD_IND_B, _AND, _JEQ, _JSET, _RET = 0x30, 0x28, 0xB1, 0x50, 0x54, 0x15, 0x45, 0x06
SKF_AD_PROTOCOL = 0xFFFFF000  # ancillary load: the frame's EtherType (skb->protocol)
_PROGRAM: list[tuple[Any, ...]] = [  # (op, jump if true, jump if false, k), or (label, op, k)
    (_LD_H, "", "", SKF_AD_PROTOCOL), (_JEQ, "", "drop", ETH_P_IP),
    (_LD_B, "", "", 0), (_AND, "", "", 0xF0), (_JEQ, "", "drop", 0x40),  # IPv4
    (_LD_H, "", "", 6), (_JSET, "drop", "", 0x1FFF),  # not a later fragment
    (_LD_B, "", "", 9),
    (_JEQ, "accept", "", 17),  # UDP
    (_JEQ, "sctp", "", 132),
    (_JEQ, "", "drop", 6),  # TCP
    (_LDX_MSH, "", "", 0), (_LD_IND_B, "", "", 13), (_AND, "", "", 0x12), (_JEQ, "accept", "drop", 0x02),  # SYN, no ACK
    ("sctp", _LDX_MSH, 0), (_LD_IND_B, "", "", 12), (_JEQ, "accept", "drop", 1),  # first chunk INIT
    ("accept", _RET, 96), ("drop", _RET, 0),
]


def bpf_program() -> list[tuple[int, int, int, int]]:
    """Assemble `_PROGRAM` (labels to relative jumps)."""
    labels: dict[str, int] = {}
    code: list[tuple[Any, ...]] = []
    for item in _PROGRAM:
        if isinstance(item[0], str):
            labels[item[0]] = len(code)
            code.append((item[1], "", "", item[2]))
        else:
            code.append(item)
    out = []
    for i, (op, jt, jf, k) in enumerate(code):
        t = labels[jt] - i - 1 if jt else 0
        f = labels[jf] - i - 1 if jf else 0
        out.append((int(op), t, f, int(k)))
    return out


def attach_filter(sock: socket.socket) -> None:
    program = bpf_program()
    raw = b"".join(struct.pack("HBBI", *ins) for ins in program)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


class SniffSocket:
    """Connection starts from the packets of every interface of this network namespace.

    A forwarded packet is seen twice: received on the source's interface (before the Service DNAT)
    and sent on the destination's (after it), queued microseconds apart by the same softirq. A start
    is held until its sent copy arrives, so the flow carries both the address the client used and,
    when they differ, the backend pod (`dst_pod_ip`/`dst_pod_port`), as conntrack's reply tuple gives
    them. A start is given up on (reported as received: delivered to this host, or dropped) once a
    later read has drained the socket queue without its copy — never on a timer, which a busy
    machine's scheduling would break.
    """

    def __init__(self, rcvbuf: int = 64 << 20, udp_memory: int = 100_000, max_pending: int = 100_000) -> None:
        # ETH_P_ALL, not ETH_P_IP: only "all protocols" sockets get the copies a host sends (the filter keeps IPv4)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        attach_filter(self.sock)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            pass
        self.sock.settimeout(0.2)
        self.udp_seen: LRUCache = LRUCache(udp_memory)  # type: ignore[type-arg]
        self.paired: LRUCache = LRUCache(udp_memory)  # type: ignore[type-arg]  # sent copies already accounted for
        self.pending: dict[tuple[int, str, int], tuple[Flow, int]] = {}
        self.reads = 0  # one per read(): a held start is given up on after a later read drained the queue
        self.max_pending = max_pending
        self.packets = 0

    def feed(self, data: bytes, pkttype: int, now: float, ifname: str = "") -> list[Flow]:
        """One packet; returns the flows complete now."""
        self.packets += 1
        if len(data) < 20 or data[0] >> 4 != 4:
            return []
        ihl = (data[0] & 0x0F) * 4
        proto = data[9]
        if len(data) < ihl + 4 or struct.unpack_from("!H", data, 6)[0] & 0x1FFF:
            return []
        src, dst = socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20])
        sport, dport = struct.unpack_from("!HH", data, ihl)
        key = (proto, src, sport)
        outgoing = pkttype == PACKET_OUTGOING
        if outgoing:  # a sent copy: pairs with a held start, or is a start this host makes itself
            held = self.pending.pop(key, None)
            if held is not None:
                flow = held[0]
                self.paired[(proto, src, sport, dst, dport)] = True
                if (dst, dport) != (flow.dst_ip, flow.dst_port):
                    flow = replace(flow, dst_pod_ip=dst, dst_pod_port=dport)
                    if proto == 17:
                        self.udp_seen[(src, sport, dst, dport)] = True  # the backend's answers are not starts
                return [flow]
            if ifname == "lo" or (proto, src, sport, dst, dport) in self.paired:
                return []  # loopback is seen again as received; a retransmission of a forwarded start
        size = struct.unpack_from("!H", data, 2)[0]
        if proto == 6:
            if len(data) < ihl + 14 or data[ihl + 13] & 0x12 != 0x02:
                return []
            flow = Flow(now, src, sport, dst, dport, "TCP", size, 1)
        elif proto == 17:
            tuple_ = (src, sport, dst, dport)
            back = (dst, dport, src, sport)
            if tuple_ in self.udp_seen or back in self.udp_seen:
                self.udp_seen[tuple_ if tuple_ in self.udp_seen else back] = True  # refresh
                return []
            self.udp_seen[tuple_] = True
            flow = Flow(now, src, sport, dst, dport, "UDP", size, 1)
        elif proto == 132:
            if len(data) < ihl + 13 or data[ihl + 12] != 1:
                return []
            flow = Flow(now, src, sport, dst, dport, "SCTP", size, 1)
        else:
            return []
        if outgoing:
            self.paired[(proto, src, sport, dst, dport)] = True  # its retransmissions are the same start
            return [flow]  # a connection this host opens (a node-to-pod call, a kubelet probe)
        out: list[Flow] = []
        held = self.pending.pop(key, None)
        if held is not None:
            if (held[0].dst_ip, held[0].dst_port) == (dst, dport):
                self.pending[key] = held  # a retransmitted SYN: the same start
                return []
            out.append(held[0])
        self.pending[key] = (flow, self.reads)
        if len(self.pending) > self.max_pending:
            out.append(self.pending.pop(next(iter(self.pending)))[0])
        return out

    def expire(self, before: int) -> list[Flow]:
        """Starts held during reads before `before` whose sent copy did not come: reported as received."""
        out = []
        for key, (flow, read) in list(self.pending.items()):
            if read >= before:
                break
            del self.pending[key]
            out.append(flow)
        return out

    def read(self) -> list[Flow]:
        flows: list[Flow] = []
        self.reads += 1
        try:
            data, addr = self.sock.recvfrom(256)
        except TimeoutError:
            return self.expire(self.reads)  # the queue stayed empty: every held start is complete
        now = time.time()
        if addr[1] == ETH_P_IP:
            flows += self.feed(data, addr[2], now, addr[0])
        for _ in range(10_000):  # drain without blocking
            try:
                data, addr = self.sock.recvfrom(256, socket.MSG_DONTWAIT)
            except (BlockingIOError, TimeoutError):
                break
            if addr[1] == ETH_P_IP:
                flows += self.feed(data, addr[2], now, addr[0])
        return flows + self.expire(self.reads - 1)  # held in an earlier read; this one drained the queue since

    def flush(self) -> list[Flow]:
        flows = [flow for flow, _ in self.pending.values()]
        self.pending.clear()
        return flows

    def close(self) -> None:
        self.sock.close()
