"""Connection starts sniffed with AF_PACKET and a kernel BPF filter.

One SOCK_DGRAM packet socket for IPv4 on every interface of the namespace; the kernel filter passes
only TCP SYNs without ACK, SCTP INITs and UDP datagrams (unfragmented), and PACKET_IGNORE_OUTGOING
keeps one copy of a forwarded packet (the one received from the source's interface). The first
datagram of a UDP 5-tuple (either direction) is the start of a UDP flow, remembered in a bounded LRU.
A forwarded packet is seen before the Service DNAT: the destination is the ClusterIP (enrichment
maps it to the Service's backends), not the backend pod that conntrack's reply tuple names.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import time

from cachetools import LRUCache

from netguard.model import Flow

ETH_P_IP = 0x0800
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
PACKET_OUTGOING = 4

# Classic BPF over a raw IPv4 packet (SOCK_DGRAM: the filter starts at the IP header).
_LD_B, _LD_H, _LDX_MSH, _LD_IND_B, _AND, _JEQ, _JSET, _RET = 0x30, 0x28, 0xB1, 0x50, 0x54, 0x15, 0x45, 0x06
_PROGRAM: list[tuple[int, str, str, int]] = [
    (_LD_B, "", "", 0), (_AND, "", "", 0xF0), (_JEQ, "", "drop", 0x40),  # IPv4
    (_LD_H, "", "", 6), (_JSET, "drop", "", 0x1FFF),  # not a later fragment
    (_LD_B, "", "", 9),
    (_JEQ, "accept", "", 17),  # UDP
    (_JEQ, "sctp", "", 132),
    (_JEQ, "", "drop", 6),  # TCP
    (_LDX_MSH, "", "", 0), (_LD_IND_B, "", "", 13), (_AND, "", "", 0x12), (_JEQ, "accept", "drop", 0x02),  # SYN, no ACK
    ("sctp", _LDX_MSH, 0), (_LD_IND_B, "", "", 12), (_JEQ, "accept", "drop", 1),  # first chunk INIT
    ("accept", _RET, 96), ("drop", _RET, 0),
]  # type: ignore[list-item]


def bpf_program() -> list[tuple[int, int, int, int]]:
    """Assemble `_PROGRAM` (labels to relative jumps)."""
    labels, code = {}, []
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
    def __init__(self, rcvbuf: int = 32 << 20, udp_memory: int = 100_000) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        attach_filter(self.sock)
        try:
            self.sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        except OSError:
            pass  # older kernels: outgoing copies are skipped below by their packet type
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            pass
        self.sock.settimeout(0.2)
        self.udp_seen: LRUCache = LRUCache(udp_memory)  # type: ignore[type-arg]
        self.packets = 0

    def _parse(self, data: bytes, pkttype: int, now: float) -> Flow | None:
        self.packets += 1
        if pkttype == PACKET_OUTGOING or len(data) < 20 or data[0] >> 4 != 4:
            return None
        ihl = (data[0] & 0x0F) * 4
        proto = data[9]
        if len(data) < ihl + 4 or struct.unpack_from("!H", data, 6)[0] & 0x1FFF:
            return None
        src, dst = socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20])
        sport, dport = struct.unpack_from("!HH", data, ihl)
        size = struct.unpack_from("!H", data, 2)[0]
        if proto == 6:
            if len(data) < ihl + 14 or data[ihl + 13] & 0x12 != 0x02:
                return None
            return Flow(now, src, sport, dst, dport, "TCP", size, 1)
        if proto == 17:
            key = (src, sport, dst, dport)
            if key in self.udp_seen or (dst, dport, src, sport) in self.udp_seen:
                self.udp_seen[key if key in self.udp_seen else (dst, dport, src, sport)] = True  # refresh
                return None
            self.udp_seen[key] = True
            return Flow(now, src, sport, dst, dport, "UDP", size, 1)
        if proto == 132:
            if len(data) < ihl + 13 or data[ihl + 12] != 1:
                return None
            return Flow(now, src, sport, dst, dport, "SCTP", size, 1)
        return None

    def read(self) -> list[Flow]:
        flows: list[Flow] = []
        try:
            data, addr = self.sock.recvfrom(256)
        except TimeoutError:
            return flows
        now = time.time()
        flow = self._parse(data, addr[2], now)
        if flow is not None:
            flows.append(flow)
        for _ in range(10_000):  # drain without blocking
            try:
                data, addr = self.sock.recvfrom(256, socket.MSG_DONTWAIT)
            except (BlockingIOError, TimeoutError):
                break
            flow = self._parse(data, addr[2], now)
            if flow is not None:
                flows.append(flow)
        return flows

    def close(self) -> None:
        self.sock.close()
