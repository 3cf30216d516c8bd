"""How many new connections the agent sees, and what it costs: conntrack and sniff sources.

Run by hand, as root:  .venv/bin/python bench/capture.py [--rates 1000,5000,max] [--duration 10]

A two-pod lab (client, server) is brought up; for each source and each rate, a fresh agent
(`netguard agent --source S --output FILE`) runs while a generator in the client pod opens TCP
connections to the server pod (non-blocking connects, closed with RST as soon as established) for
`duration` seconds; then, at the maximum rate, connection attempts to a closed port (the server's
kernel answers the SYN with a RST: a connection start, a conntrack entry, no handshake), which the
generator makes about twice as fast. Printed per run: connections made (handshake completed), and the
agent's records matched to them one to one by 5-tuple (the generator notes each connection's source
port): seen = made connections with a record, lost = made connections without one, extra = records of
no attempt the generator made (a record of a failed attempt is counted apart; a 5-tuple used again
later is matched as often as it was made); the agent's CPU seconds per 10k connections, and its peak
RSS. Everything is torn down at the end (also on failure); sysctls changed for the run are restored.

Traffic stays inside the lab's namespaces (10.244.0.0/16); every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from netguard.lab import lab, system  # noqa: E402

MANIFEST = """
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: bench, labels: {app: client}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: bench, labels: {app: server}}
spec: {containers: [{name: c, image: x}]}
"""
PORTS = range(7000, 7016)  # 16 server ports: 16x the 4-tuples, so a tuple is not reused within a run
MAX_CONNECTIONS = 2_000_000
LINGER_RST = struct.pack("ii", 1, 0)


def _enter(netns: str) -> None:
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    system._setns(fd)
    os.close(fd)


def server(netns: str, ready: mp.Event, stop: mp.Event) -> None:
    _enter(netns)
    ep = select.epoll()
    listeners = {}
    for port in PORTS:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(65535)
        listeners[s.fileno()] = s
        ep.register(s.fileno(), select.EPOLLIN)
    ready.set()
    while not stop.is_set():
        for fd, _ in ep.poll(0.2):
            s = listeners[fd]
            for _ in range(1000):
                try:
                    conn, _ = s.accept()
                except (BlockingIOError, ConnectionAbortedError):
                    break
                conn.close()


def client(netns: str, dst: str, rate: float, duration: float, result: mp.Queue, index: int = 0,
           refused: bool = False) -> None:
    """Open connections at `rate` per second (0: as fast as it can) for `duration` seconds.

    With `refused`, the ports have no listener: the server pod's kernel answers each SYN with a RST, so
    every attempt is a connection start that reached the server (and a conntrack entry) without a handshake.
    """
    _enter(netns)
    with open("/proc/sys/net/ipv4/ip_local_port_range", "w") as fh:  # per namespace: this pod only
        fh.write("1024 65535\n")
    ep = select.epoll()
    inflight: dict[int, tuple[socket.socket, tuple[int, int]]] = {}
    made_tuples: list[tuple[int, int]] = []  # (source port, destination port) of each connection made
    failed_tuples: list[tuple[int, int]] = []
    launched = 0
    ports = list(PORTS)[index::2] or list(PORTS)  # each client its own server ports: no shared 4-tuples
    if refused:
        ports = [p + 1000 for p in ports]
    ok = {0, 111} if refused else {0}  # 111: ECONNREFUSED, the server's RST
    start = time.monotonic()
    end = start + duration
    while True:
        now = time.monotonic()
        if now >= end or launched >= MAX_CONNECTIONS:
            break
        budget = 512 - len(inflight)
        if rate:
            budget = min(budget, int(rate * (now - start)) - launched)
        for _ in range(max(0, budget)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
            dport = ports[launched % len(ports)]
            s.connect_ex((dst, dport))
            launched += 1
            inflight[s.fileno()] = (s, (s.getsockname()[1], dport))  # the source port is bound by connect
            ep.register(s.fileno(), select.EPOLLOUT)
        for fd, _ in ep.poll(0.001 if rate else 0):
            _finish(inflight, ep, fd, ok, made_tuples, failed_tuples)
    seconds = time.monotonic() - start
    deadline = time.monotonic() + 3
    while inflight and time.monotonic() < deadline:
        for fd, _ in ep.poll(0.05):
            _finish(inflight, ep, fd, ok, made_tuples, failed_tuples)
    for s, pair in inflight.values():
        failed_tuples.append(pair)
        s.close()
    result.put({"made": len(made_tuples), "failed": len(failed_tuples), "launched": launched, "seconds": seconds,
                "made_tuples": made_tuples, "failed_tuples": failed_tuples})


def _finish(inflight: dict, ep: select.epoll, fd: int, ok: set[int], made: list, failed: list) -> None:
    s, pair = inflight.pop(fd)
    ep.unregister(fd)
    (made if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) in ok else failed).append(pair)
    s.close()


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_one(plan, source: str, rate: float, duration: float, work: Path, clients: int, refused: bool = False) -> dict:
    client_pod, server_pod = plan.pod("bench/client"), plan.pod("bench/server")
    tag = f"{source}-{int(rate)}{'-refused' if refused else ''}"
    out = work / f"{tag}.jsonl"
    err = (work / f"{tag}.err").open("w")
    agent = subprocess.Popen([sys.executable, "-m", "netguard", "agent", "--source", source, "--output", str(out)],
                             stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while '"started"' not in (work / f"{tag}.err").read_text():
            if time.monotonic() > deadline or agent.poll() is not None:
                raise RuntimeError(f"the {source} agent did not start")
            time.sleep(0.05)
        time.sleep(0.3)
        cpu0 = proc_cpu(agent.pid)
        queue: mp.Queue = mp.Queue()
        gens = [mp.Process(target=client, args=(client_pod.netns, server_pod.ip, rate / clients, duration, queue, i, refused))
                for i in range(clients)]
        for gen in gens:
            gen.start()
        parts = [queue.get(timeout=duration + 60) for _ in gens]
        for gen in gens:
            gen.join(10)
        made = {k: sum(p[k] for p in parts) for k in ("made", "failed", "launched")}
        made["seconds"] = max(p["seconds"] for p in parts)
        made_tuples = [t for p in parts for t in map(tuple, p["made_tuples"])]
        failed_tuples = [t for p in parts for t in map(tuple, p["failed_tuples"])]
        # let the agent catch up with what the kernel queued (bounded)
        expected = made["made"]
        deadline = time.monotonic() + 30
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            seen = _count(out, client_pod.ip, server_pod.ip)
            if seen >= expected:
                break
            if seen != last:
                last, last_change = seen, time.monotonic()
            elif time.monotonic() - last_change > 3:
                break
            time.sleep(0.2)
        cpu = proc_cpu(agent.pid) - cpu0
        rss = proc_hwm_mib(agent.pid)
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(30)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
        err.close()
    match = match_records(_records(out, client_pod.ip, server_pod.ip), made_tuples, failed_tuples)
    mode = "refused" if refused else "handshake"
    return {"source": source, "rate": "max" if not rate else int(rate), "mode": mode, **made, **match,
            "seen_pct": 100.0 * match["seen"] / max(1, made["made"]),
            "cpu_s_per_10k": 10_000 * cpu / max(1, made["launched"]), "peak_rss_mib": rss,
            "achieved_rate": made["launched"] / made["seconds"]}


def _records(path: Path, src: str, dst: str) -> list[tuple[int, int]]:
    """(source port, destination port) of each TCP record the agent wrote from `src` to `dst`."""
    out = []
    if path.exists():
        with path.open() as fh:
            for line in fh:
                r = json.loads(line)
                if (r.get("src_ip"), r.get("dst_ip"), r.get("protocol")) == (src, dst, "TCP"):
                    out.append((r["src_port"], r["dst_port"]))
    return out


def match_records(records: list[tuple[int, int]], made: list[tuple[int, int]], failed: list[tuple[int, int]]) -> dict:
    """The agent's records matched one to one with the generator's connections, by 5-tuple (the
    addresses and protocol are fixed per run: the ports tell them apart). A 5-tuple can be used again
    once its connection is gone, so each is matched as many times as it was made."""
    made_n, failed_n, records_n = Counter(made), Counter(failed), Counter(records)
    seen = lost = extra = seen_failed = 0
    for pair in made_n.keys() | failed_n.keys() | records_n.keys():
        m, f, r = made_n[pair], failed_n[pair], records_n[pair]
        matched = min(r, m)
        seen += matched
        lost += m - matched
        of_failed = min(r - matched, f)  # failed attempts the agent saw start (their SYN went out)
        seen_failed += of_failed
        extra += r - matched - of_failed  # records of no attempt the generator made
    return {"seen": seen, "lost": lost, "extra": extra, "seen_failed": seen_failed}


def _count(path: Path, src: str, dst: str) -> int:
    if not path.exists():
        return 0
    n = 0
    with path.open() as fh:
        for line in fh:
            if f'"src_ip":"{src}"' in line and f'"dst_ip":"{dst}"' in line and '"TCP"' in line:
                n += 1
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="1000,5000,max", help="connections per second, comma separated; max = no pause")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (at most 60)")
    parser.add_argument("--sources", default="conntrack,sniff")
    parser.add_argument("--no-refused", action="store_true",
                        help="skip the run at the maximum rate of refused connection attempts (SYN answered by RST)")
    parser.add_argument("--clients", type=int, default=2, choices=(1, 2), help="generator processes (default 2)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/capture.py needs root (network namespaces)", file=sys.stderr)
        return 2
    duration = min(args.duration, 60.0)
    rates = [0.0 if r == "max" else float(r) for r in args.rates.split(",")]
    name = "bench"
    work = Path(tempfile.mkdtemp(prefix="netguard-bench-"))
    manifest = work / "bench.yaml"
    manifest.write_text(MANIFEST)
    saved = {k: system.read_sysctl(k) for k in ("net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_tcp_timeout_close")}
    results = []
    lab.down(name)
    mp.set_start_method("fork")
    ready, stop = mp.Event(), mp.Event()
    srv = None
    try:
        plan = lab.up([str(manifest)], name)
        # 30k connections a second leave ~300k entries in CLOSE state for 10 s: make room, and shorten it.
        system.write_sysctl("net.netfilter.nf_conntrack_max", "1048576")
        system.write_sysctl("net.netfilter.nf_conntrack_tcp_timeout_close", "1")
        srv = mp.Process(target=server, args=(plan.pod("bench/server").netns, ready, stop))
        srv.start()
        ready.wait(10)
        runs = [(rate, False) for rate in rates] + ([(0.0, True)] if not args.no_refused else [])
        for source in args.sources.split(","):
            for rate, refused in runs:
                r = run_one(plan, source, rate, duration, work, args.clients, refused)
                results.append(r)
                print(f"{r['source']:<9} {r['mode']:<9} rate {str(r['rate']):>5}/s: made {r['made']:>7} in {r['seconds']:.1f}s "
                      f"({r['achieved_rate']:,.0f}/s), seen {r['seen']:>7} = {r['seen_pct']:.3f}%, lost {r['lost']}, "
                      f"extra {r['extra']} (+{r['seen_failed']} of {r['failed']} failed attempts), "
                      f"agent CPU {r['cpu_s_per_10k']:.2f} s per 10k, peak RSS {r['peak_rss_mib']:.0f} MiB", flush=True)
                time.sleep(1.5)  # let CLOSE entries expire between runs
    finally:
        stop.set()
        if srv is not None:
            srv.join(5)
            if srv.is_alive():
                srv.kill()
        lab.down(name)
        for key, value in saved.items():
            if value is not None:
                system.write_sysctl(key, value)
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
