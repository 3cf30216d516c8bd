"""Ingest benchmark: a real `netguard controller` on 127.0.0.1, agents POSTing batches of 1,000 flows.

Prints accepted flows per second and p50/p99 batch latency with 1, 4 and 16 concurrent agents, and the
store's bytes per million flows. Run by hand (not a test):

    .venv/bin/python bench/ingest.py [--batches 300] [--db sqlite|postgresql://...]

Goal (issue 4): >= 50,000 flows/s on the 2-core machine with p99 < 250 ms at 16 agents. Traffic goes
only to 127.0.0.1; every loop is bounded by a batch count; the controller is stopped by its pid.

Besides the wall-clock rate (which moves with whatever else runs on the machine), each level prints the
controller process's own CPU seconds (/proc/PID/stat) and flows per CPU-second: what one core of the
controller ingests when it has the core, steadier on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "tests" / "policygen" / "data" / "bookinfo-cluster.yaml"
TOKEN = "bench-token"
# (source pod IP, Service IP, Service port, backend pod IP): bookinfo's real call paths
PATHS = [
    ("10.244.1.10", "10.96.10.11", 9080, "10.244.1.11"),
    ("10.244.1.10", "10.96.10.13", 9080, "10.244.1.13"),
    ("10.244.1.10", "10.96.10.13", 9080, "10.244.1.14"),
    ("10.244.1.14", "10.96.10.12", 9080, "10.244.1.12"),
    ("10.244.1.15", "10.96.10.12", 9080, "10.244.1.12"),
    ("203.0.113.7", "10.96.10.10", 9080, "10.244.1.10"),
    ("10.244.1.10", "10.96.0.10", 53, "10.244.0.2"),
]


def make_bodies(count: int, size: int, seed: int = 7, sources: int = 0) -> list[bytes]:
    """Batches of bookinfo's calls; with `sources`, every flow comes from one of that many outside
    addresses instead (each a distinct edge: the worst case for grouping and for the edge table)."""
    rng = random.Random(seed)
    bodies = []
    t = 1_790_000_000.0
    for b in range(count):
        flows = []
        for i in range(size):
            src, svc, port, pod = rng.choice(PATHS)
            if sources:
                n = (b * size + i) % sources
                src, svc, port, pod = f"198.{18 + n // 65536 % 2}.{n // 256 % 256}.{n % 256}", "10.96.10.10", 9080, "10.244.1.10"
            t += 0.001
            flows.append({"time": round(t, 3), "src_ip": src, "src_port": 30000 + (b * size + i) % 30000, "dst_ip": svc,
                          "dst_port": port, "protocol": "UDP" if port == 53 else "TCP", "bytes": rng.randint(100, 50000),
                          "packets": rng.randint(2, 60), "node": "node-1", "dst_pod_ip": pod})
        bodies.append(json.dumps({"agent": f"node-{b % 16}", "flows": flows}).encode())
    return bodies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_controller(workdir: Path, *args: str, tries: int = 300, cwd: Path | None = None,
                     probe: str = "/readyz") -> tuple[subprocess.Popen, str]:
    """`netguard controller *args` on a free port of 127.0.0.1 with the bench's token, once GET `probe` answers 200
    (polled every 0.1 s, `tries` times); its log in workdir/controller.log. The benches' one way to start it."""
    tokens = workdir / "tokens"
    tokens.write_text(TOKEN + "\n")
    port = free_port()
    log = (workdir / "controller.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "netguard", "controller", "--listen", f"127.0.0.1:{port}",
                             "--token-file", str(tokens), *args], stdout=log, stderr=log, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    for _ in range(tries):
        if proc.poll() is not None:
            raise SystemExit(f"controller exited: {(workdir / 'controller.log').read_text()[-2000:]}")
        try:
            if httpx.get(url + probe, timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("controller did not become ready")


class RawAgent:
    """One agent's keep-alive HTTP/1.1 connection, with pre-built requests: the load generator spends
    little CPU (real agents run on other nodes), so the controller gets the machine's cores."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    async def __aenter__(self) -> RawAgent:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc) -> None:
        self.writer.close()
        await self.writer.wait_closed()

    async def post(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return status, await self.reader.readexactly(length)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build_requests(url: str, bodies: list[bytes]) -> list[bytes]:
    host = url.split("//", 1)[1]
    return [(f"POST /api/v1/flows HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
             f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\n\r\n").encode() + b for b in bodies]


async def run_level(url: str, requests: list[bytes], agents: int, batches: int, size: int) -> dict:
    latencies: list[float] = []
    next_batch = 0
    host, port = url.split("//", 1)[1].split(":")

    async def agent() -> None:
        nonlocal next_batch
        async with RawAgent(host, int(port)) as conn:
            while next_batch < batches:  # bounded by the batch count
                request = requests[next_batch % len(requests)]
                next_batch += 1
                started = time.perf_counter()
                status, body = await conn.post(request)
                latencies.append(time.perf_counter() - started)
                if status != 200 or json.loads(body)["accepted"] != size:
                    raise SystemExit(f"batch refused: {status} {body[:200]!r}")

    started = time.perf_counter()
    await asyncio.gather(*(agent() for _ in range(agents)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {"agents": agents, "batches": len(latencies), "flows_per_s": len(latencies) * size / elapsed,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=300, help="batches per concurrency level (default 300)")
    parser.add_argument("--size", type=int, default=1000, help="flows per batch (default 1000)")
    parser.add_argument("--agents", default="1,4,16", help="concurrency levels (default 1,4,16)")
    parser.add_argument("--db", default="sqlite", help="sqlite (a temp file) or a postgresql:// URL")
    parser.add_argument("--sources", type=int, default=0, metavar="N",
                        help="flows from N distinct outside addresses (N distinct edges) instead of bookinfo's calls")
    args = parser.parse_args()
    levels = [int(a) for a in args.agents.split(",")]
    bodies = make_bodies(32, args.size, sources=args.sources)
    with tempfile.TemporaryDirectory(prefix="netguard-bench-") as tmp:
        workdir = Path(tmp)
        db = str(workdir / "bench.db") if args.db == "sqlite" else args.db
        proc, url = start_controller(workdir, "--db", db, "--inventory", str(CLUSTER))
        requests = build_requests(url, bodies)
        results = []
        try:
            asyncio.run(run_level(url, requests, 4, 20, args.size))  # warm-up (not counted)
            for agents in levels:
                cpu = cpu_seconds(proc.pid)
                results.append(asyncio.run(run_level(url, requests, agents, args.batches, args.size)))
                results[-1]["cpu_s"] = cpu_seconds(proc.pid) - cpu
                if os.environ.get("BENCH_SERVER_HISTOGRAM"):
                    text = httpx.get(url + "/metrics").text
                    print("\n".join(line for line in text.splitlines() if line.startswith("netguard_controller_ingest_seconds")))
            counts_flows = (len(levels) * args.batches + 20) * args.size
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        sys.path.insert(0, str(ROOT))
        from policygen.controller.store import open_store

        store = open_store(db)
        try:
            counts = store.counts()
            size = store.size_bytes()
        finally:
            store.close()
        assert counts["records"] == counts_flows, (counts, counts_flows)
        what = f"{args.sources:,} distinct sources" if args.sources else "bookinfo's calls"
        print(f"netguard controller ingest, {args.size:,} flows per batch ({what}), store {args.db}, {os.cpu_count()} cores")
        print(f"load average {os.getloadavg()[0]:.1f} (1 min) at the end")
        print(f"{'agents':>6} {'batches':>8} {'flows/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'ctl CPU s':>9} {'flows/CPU-s':>11}")
        for r in results:
            flows = r["batches"] * args.size
            print(f"{r['agents']:>6} {r['batches']:>8} {r['flows_per_s']:>10,.0f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
                  f"{r['cpu_s']:>9.1f} {flows / max(r['cpu_s'], 1e-9):>11,.0f}")
        print(f"store: {size:,} bytes for {counts['records']:,} flows = {size / counts['records'] * 1e6 / 2**20:,.1f} MiB "
              f"per million flows ({counts['edges']} edges)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
