"""The capture sources: conntrack events (decoded like pyroute2 does), the BPF program, pcap files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from netguard.agent import conntrack
from netguard.agent.sniff import SniffSocket, bpf_program

root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("conntrack") is None,
                          reason="needs root and the conntrack tool (scripts/system-deps.sh)")

NETGUARD = [sys.executable, "-m", "netguard"]


def ct(*args: str) -> None:
    subprocess.run(["conntrack", *args], check=True, capture_output=True)


def _raw_events(sock: conntrack.ConntrackSocket, src: str, sport: int, want: int) -> list[bytes]:
    """Datagrams holding events of `src` (other traffic of the machine makes events too)."""
    import time

    datagrams: list[bytes] = []
    deadline = time.monotonic() + 20  # other traffic of a busy machine makes many events
    while time.monotonic() < deadline:
        try:
            data = sock.sock.recv(65536)
        except TimeoutError:
            continue
        if any(e.orig.src == src and e.orig.sport == sport for e in conntrack.decode(data)):
            datagrams.append(data)
        if len(datagrams) >= want:
            break
    return datagrams


@root
def test_conntrack_events_decode_like_pyroute2_with_dnat_and_counters():
    """Entries made with `conntrack -I` (no packet is sent): a DNATed one, then its deletion."""
    import random

    from pyroute2.netlink.nfnetlink.nfctsocket import nfct_msg

    sport = random.randrange(20000, 60000)
    sock = conntrack.ConntrackSocket()
    try:
        ct("-I", "-p", "tcp", "-s", "10.244.250.10", "-d", "10.96.250.11", "--sport", str(sport), "--dport", "9080",
           "--reply-src", "10.244.250.20", "--reply-dst", "10.244.250.10", "--reply-port-src", "8080",
           "--reply-port-dst", str(sport), "--state", "ESTABLISHED", "-t", "60", "-u", "SEEN_REPLY")
        ct("-D", "-p", "tcp", "-s", "10.244.250.10", "-d", "10.96.250.11", "--sport", str(sport), "--dport", "9080")
        datagrams = _raw_events(sock, "10.244.250.10", sport, 2)
    finally:
        sock.close()
    events = [e for d in datagrams for e in conntrack.decode(d)]
    mine = [e for e in events if e.orig.src == "10.244.250.10" and e.orig.sport == sport]
    assert [e.kind for e in mine] == ["new", "destroy"]
    new = mine[0]
    assert (new.orig.dst, new.orig.sport, new.orig.dport, new.orig.proto) == ("10.96.250.11", sport, 9080, 6)
    assert new.reply is not None and (new.reply.src, new.reply.sport) == ("10.244.250.20", 8080)
    # the same bytes through pyroute2's generic decoder
    for data in datagrams:
        event = next(conntrack.decode(data))  # one message a datagram
        msg = nfct_msg(data)
        msg.decode()
        orig = msg.get_attr("CTA_TUPLE_ORIG")
        ip, proto = orig.get_attr("CTA_TUPLE_IP"), orig.get_attr("CTA_TUPLE_PROTO")
        assert ip.get_attr("CTA_IP_V4_SRC") == event.orig.src
        assert ip.get_attr("CTA_IP_V4_DST") == event.orig.dst
        assert proto.get_attr("CTA_PROTO_SRC_PORT") == event.orig.sport
        assert proto.get_attr("CTA_PROTO_DST_PORT") == event.orig.dport
        reply = msg.get_attr("CTA_TUPLE_REPLY").get_attr("CTA_TUPLE_IP")
        assert reply.get_attr("CTA_IP_V4_SRC") == event.reply.src
        assert msg.get_attr("CTA_ID") == event.id


def test_bpf_program_jumps_stay_inside_and_end_in_returns():
    program = bpf_program()
    for i, (op, jt, jf, _k) in enumerate(program):
        if op & 0x07 == 0x05:  # jumps
            assert i + 1 + jt < len(program) and i + 1 + jf < len(program)
    assert program[-1] == (0x06, 0, 0, 0) and program[-2][0] == 0x06


def _ipv4(proto: int, payload: bytes, src=b"\x0a\xf4\x01\x0a", dst=b"\x0a\xf4\x01\x0b") -> bytes:
    header = bytes([0x45, 0, 0, 20 + len(payload), 0, 0, 0x40, 0, 64, proto, 0, 0]) + src + dst
    return header + payload


@pytest.mark.skipif(os.geteuid() != 0, reason="an AF_PACKET socket needs root")
def test_sniff_keeps_syns_and_first_udp_datagram_and_pairs_the_dnat_copy():
    sniffer = SniffSocket()
    a, svc, pod = b"\x0a\xf4\x01\x0a", b"\x0a\x60\x01\x0a", b"\x0a\xf4\x01\x10"
    try:
        syn = _ipv4(6, bytes.fromhex("a0280050" "00000001" "00000000" "5002" "ffff" "00000000"))
        syn_ack = _ipv4(6, bytes.fromhex("a0280050" "00000001" "00000000" "5012" "ffff" "00000000"))
        udp = _ipv4(17, bytes.fromhex("d4310035" "0008" "0000"), src=a, dst=svc)  # to a ClusterIP
        udp_dnat = _ipv4(17, bytes.fromhex("d4310035" "0008" "0000"), src=a, dst=pod)  # its copy after DNAT
        udp_back = _ipv4(17, bytes.fromhex("0035d431" "0008" "0000"), src=pod, dst=a)  # the backend answers
        flows = []
        for packet, kind in ((syn, 0), (syn_ack, 0), (syn, 0), (udp, 0), (udp_dnat, 4), (udp_back, 0), (udp, 0)):
            flows += sniffer.feed(packet, kind, 1.0)
        assert len(flows) == 1  # the UDP start, completed by its sent copy; the SYN is held (no sent copy yet)
        assert sniffer.expire(sniffer.reads) == []  # held during this read: not yet
        sniffer.reads += 1  # a later read drained the queue without the SYN's sent copy
        flows += sniffer.expire(sniffer.reads)  # a start without a sent copy: as received
    finally:
        sniffer.close()
    node = SniffSocket()
    try:  # starts this host sends itself: seen only as sent; loopback is seen again as received
        assert node.feed(syn, 4, 2.0, "lo") == []
        sent = node.feed(syn, 4, 2.0, "eth0")
        assert [(f.src_ip, f.dst_ip, f.dst_port) for f in sent] == [("10.244.1.10", "10.244.1.11", 80)]
        assert node.feed(syn, 4, 2.5, "eth0") == []  # its retransmission
    finally:
        node.close()
    kept = [(f.protocol, f.src_ip, f.src_port, f.dst_ip, f.dst_port, f.dst_pod_ip, f.dst_pod_port) for f in flows]
    assert kept == [("UDP", "10.244.1.10", 54321, "10.96.1.10", 53, "10.244.1.16", 53),
                    ("TCP", "10.244.1.10", 41000, "10.244.1.11", 80, "", 0)]  # one start for a retransmitted SYN


def test_pcap_source_writes_native_records(tmp_path):
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.utils import wrpcap

    packets = [
        IP(src="10.244.1.10", dst="10.244.1.11") / TCP(sport=40000, dport=9080, flags="S"),
        IP(src="10.244.1.11", dst="10.244.1.10") / TCP(sport=9080, dport=40000, flags="SA"),
        IP(src="10.244.1.10", dst="10.96.0.10") / UDP(sport=5353, dport=53),
        IP(src="127.0.0.1", dst="127.0.0.1") / TCP(sport=1, dport=2, flags="S"),
    ]
    pcap = tmp_path / "cap.pcap"
    wrpcap(str(pcap), packets)
    out = tmp_path / "flows.jsonl"
    proc = subprocess.run([*NETGUARD, "agent", "--source", "pcap", "--pcap", str(pcap), "--output", str(out),
                           "--node", "n1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["src_ip"], r["dst_ip"], r["dst_port"], r["protocol"], r["node"]) for r in records] == [
        ("10.244.1.10", "10.244.1.11", 9080, "TCP", "n1"),
        ("10.244.1.10", "10.96.0.10", 53, "UDP", "n1"),
    ]  # the SYN-ACK is no new connection; loopback is left out
    stopped = [json.loads(line) for line in proc.stderr.splitlines() if '"stopped"' in line]
    assert stopped and stopped[0]["flows"] == 2


def test_agent_bad_input_is_one_line_exit_2(tmp_path):
    proc = subprocess.run([*NETGUARD, "agent", "--source", "pcap", "--pcap", str(tmp_path / "missing.pcap"),
                           "--output", str(tmp_path / "o")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no such file" in proc.stderr
    proc = subprocess.run([*NETGUARD, "agent", "--source", "pcap", "--pcap", "x"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "nowhere to put flows" in proc.stderr


def _agent_run(tmp_path, *extra: str):
    out = tmp_path / "flows.jsonl"
    err_path = tmp_path / "agent.err"
    with err_path.open("w") as err:
        proc = subprocess.Popen([*NETGUARD, "agent", "--output", str(out), "--node", "n1", *extra],
                                stdout=subprocess.DEVNULL, stderr=err)
    return proc, out, err_path


def _wait(predicate, timeout: float = 30.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@root
@pytest.mark.parametrize("emit", ["new", "destroy"])
def test_agent_reports_a_dnat_connection_once_at_new_or_at_destroy(tmp_path, emit):
    """`conntrack -I`/`-D` make the kernel announce a connection without any packet."""
    import random
    import signal

    sport = str(random.randrange(20000, 60000))  # fresh: the kernel may still redeliver events of earlier runs
    proc, out, err = _agent_run(tmp_path, "--emit", emit)
    try:
        assert _wait(lambda: '"started"' in err.read_text()), err.read_text()
        ct("-I", "-p", "udp", "-s", "10.244.250.30", "-d", "10.96.250.10", "--sport", sport, "--dport", "53",
           "--reply-src", "10.244.250.40", "--reply-dst", "10.244.250.30", "--reply-port-src", "5353",
           "--reply-port-dst", sport, "-t", "30")
        if emit == "new":
            assert _wait(lambda: f'"src_port":{sport},' in (out.read_text() if out.exists() else ""))
        ct("-D", "-p", "udp", "-s", "10.244.250.30", "-d", "10.96.250.10", "--sport", sport, "--dport", "53")
        if emit == "destroy":
            assert _wait(lambda: f'"src_port":{sport},' in (out.read_text() if out.exists() else ""))
    finally:
        subprocess.run(["conntrack", "-D", "-s", "10.244.250.30", "--sport", sport, "-p", "udp"], capture_output=True)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    records = [json.loads(line) for line in out.read_text().splitlines() if f'"src_port":{sport},' in line]
    assert len(records) == 1  # one line a connection, in either mode
    r = records[0]
    assert (r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"], r["protocol"]) == (
        "10.244.250.30", int(sport), "10.96.250.10", 53, "UDP")
    assert (r["dst_pod_ip"], r["dst_pod_port"]) == ("10.244.250.40", 5353)  # from the reply tuple
    assert r["node"] == "n1"


@root
def test_agent_reports_connections_opened_before_it_started(tmp_path):
    """A long-lived connection makes no NEW event while the agent runs: the table dump at start finds it."""
    import random
    import signal

    sport = str(random.randrange(20000, 60000))
    ct("-I", "-p", "tcp", "-s", "10.244.250.31", "-d", "10.244.250.41", "--sport", sport, "--dport", "5432",
       "--state", "ESTABLISHED", "-t", "60", "--reply-src", "10.244.250.41", "--reply-dst", "10.244.250.31",
       "--reply-port-src", "5432", "--reply-port-dst", sport)
    proc, out, err = _agent_run(tmp_path)
    try:
        assert _wait(lambda: f'"src_port":{sport},' in (out.read_text() if out.exists() else ""))
    finally:
        subprocess.run(["conntrack", "-D", "-s", "10.244.250.31", "--sport", sport, "-p", "tcp"], capture_output=True)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    records = [json.loads(line) for line in out.read_text().splitlines() if f'"src_port":{sport},' in line]
    assert [(r["src_ip"], r["dst_ip"], r["dst_port"], r["protocol"]) for r in records] == [
        ("10.244.250.31", "10.244.250.41", 5432, "TCP")]
    assert "dst_pod_ip" not in records[0]
