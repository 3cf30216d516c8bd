"""Agent-side aggregation: 1,000 simulated nodes of 100 pods each ship one interval's edges to one controller.

Prints what an interval of the whole cluster costs when agents ship edges (POST /api/v1/edges, one
record per edge and interval) instead of one record per connection (POST /api/v1/flows):

- connections per second represented: the connections the interval's edge batches stand for, divided by
  the time the controller took to ingest them (its capacity; the cluster only needs interval's worth);
- bytes on the wire per interval, edges against the raw native records of the same connections;
- p50/p99 latency of one node's batch, with `--agents` nodes posting at once;
- the agent's CPU per interval (the real EdgeBatcher over a sample of nodes' real flows).

    .venv/bin/python bench/agent_aggregation.py [--nodes 1000] [--pods 100] [--rate 10] [--intervals 3]

Synthetic cluster: workloads of 10 pods (Deployments, so 10,000 workloads at 1,000 x 100) spread over
the nodes, 100 per namespace; each workload calls 3 others (pod IP, port 8080); every pod opens
`--rate` connections a second. A node's batch is built from the node's own pods' calls; for a sample of
nodes it is also built by the agent's real code (flows -> EdgeBatcher) and checked to be the same.
The controller is a real process on 127.0.0.1 (SQLite, no inventory needed: edges carry their names),
stopped by its pid. Figures move with the load of the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest import TOKEN, RawAgent, cpu_seconds, start_controller  # noqa: E402
from netguard.agent.ship import Kept  # noqa: E402
from netguard.agent.sink import EdgeBatcher  # noqa: E402
from netguard.flows import flow_to_record  # noqa: E402
from netguard.inventory import Inventory  # noqa: E402
from netguard.model import Flow  # noqa: E402

PODS_PER_WORKLOAD = 10
PER_NAMESPACE = 100
PEERS = 3
PORT = 8080
T0 = 1_790_000_000.0


class Cluster:
    """Workload w has pods w*10 .. w*10+9; pod p lives on node p % nodes (so a node hosts pods of many workloads)."""

    def __init__(self, nodes: int, pods_per_node: int, seed: int = 7) -> None:
        self.nodes = nodes
        self.pods = nodes * pods_per_node
        self.workloads = self.pods // PODS_PER_WORKLOAD
        rng = random.Random(seed)
        self.peers = [rng.sample([p for p in range(self.workloads) if p != w] if self.workloads <= 4 * PEERS
                                 else _distinct(rng, self.workloads, w), PEERS) for w in range(self.workloads)]

    def ns(self, w: int) -> str:
        return f"team-{w // PER_NAMESPACE:03d}"

    def name(self, w: int) -> str:
        return f"svc-{w:05d}"

    def ip(self, pod: int) -> str:
        return f"10.{64 + pod // 65536}.{pod // 256 % 256}.{pod % 256}"

    def pods_on(self, node: int) -> list[int]:
        return list(range(node, self.pods, self.nodes))

    def objects(self, pods: set[int]) -> list[tuple[str, dict]]:
        """Kubernetes objects for the workloads of `pods` (the agent's pod cache of what it needs)."""
        out: list[tuple[str, dict]] = []
        workloads = sorted({p // PODS_PER_WORKLOAD for p in pods})
        for ns in sorted({self.ns(w) for w in workloads}):
            out.append(("bench", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        for w in workloads:
            ns, name = self.ns(w), self.name(w)
            spec = {"containers": [{"name": "app", "ports": [{"containerPort": PORT, "name": "http"}]}]}
            out.append(("bench", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
                                  "spec": {"selector": {"matchLabels": {"app": name}},
                                           "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}))
            for p in range(w * PODS_PER_WORKLOAD, (w + 1) * PODS_PER_WORKLOAD):
                meta = {"name": f"{name}-5d8c6b7f9c-{p:06d}", "namespace": ns,
                        "labels": {"app": name, "pod-template-hash": "5d8c6b7f9c"},
                        "ownerReferences": [{"kind": "ReplicaSet", "name": f"{name}-5d8c6b7f9c", "controller": True}]}
                out.append(("bench", {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
                                      "status": {"podIP": self.ip(p), "hostIP": f"192.168.{p % self.nodes // 256}.{p % 256}"}}))
        return out

    def flows(self, node: int, interval: float, rate: float, start: float, seed: int) -> list[Flow]:
        """One interval of the node's pods' connections: `rate` a second per pod, spread over its peers."""
        rng = random.Random(seed)
        per_pod = int(rate * interval)
        out = []
        for pod in self.pods_on(node):
            peers = self.peers[pod // PODS_PER_WORKLOAD]
            for i in range(per_pod):
                peer = peers[i % PEERS]
                dst = peer * PODS_PER_WORKLOAD + rng.randrange(PODS_PER_WORKLOAD)
                t = start + interval * (i + 0.5) / per_pod
                out.append(Flow(round(t, 3), self.ip(pod), 30000 + i % 30000, self.ip(dst), PORT, "TCP",
                                rng.randint(200, 20000), rng.randint(4, 40), f"node-{node}"))
        return out

    def edges(self, node: int, interval: float, rate: float, start: float) -> list[dict]:
        """The node's interval as edge records, built directly (what the agent's aggregation gives: checked
        against it on a sample); bytes/packets as sums of the same distributions' means."""
        per_pod = int(rate * interval)
        stats: dict[tuple[int, int], list[Any]] = {}
        for pod in self.pods_on(node):
            w = pod // PODS_PER_WORKLOAD
            for j, peer in enumerate(self.peers[w]):
                n = len(range(j, per_pod, PEERS))
                if not n:
                    continue
                first = start + interval * (j + 0.5) / per_pod
                last = start + interval * (range(j, per_pod, PEERS)[-1] + 0.5) / per_pod
                s = stats.setdefault((w, peer), [0, 0, 0, first, last])
                s[0] += n
                s[1] += n * 10100
                s[2] += n * 22
                s[3], s[4] = min(s[3], first), max(s[4], last)
        return [{"src": f"w:{self.ns(w)}/Deployment/{self.name(w)}", "dst": f"w:{self.ns(p)}/Deployment/{self.name(p)}",
                 "port": PORT, "protocol": "TCP", "connections": c, "bytes": b, "packets": k, "first_seen": round(f, 3),
                 "last_seen": round(la, 3), "port_name": "http", "via_service": "", "dst_names": [], "names_overflow": False}
                for (w, p), (c, b, k, f, la) in sorted(stats.items())]


def _distinct(rng: random.Random, n: int, w: int) -> list[int]:
    out: set[int] = set()
    while len(out) < PEERS + 1:
        out.add(rng.randrange(n))
    out.discard(w)
    return list(out)


def agent_side(cluster: Cluster, sample: int, interval: float, rate: float) -> dict:
    """The real agent code on `sample` nodes: flows -> EdgeBatcher -> records; checked against `edges()`."""
    nodes = list(range(0, cluster.nodes, max(1, cluster.nodes // sample)))[:sample]
    cpu = flows_n = raw_bytes = edge_bytes = 0.0
    for node in nodes:
        pods = set(cluster.pods_on(node))
        pods |= {q for p in pods for peer in cluster.peers[p // PODS_PER_WORKLOAD]
                 for q in range(peer * PODS_PER_WORKLOAD, (peer + 1) * PODS_PER_WORKLOAD)}
        inventory = Inventory.build(cluster.objects(pods))
        flows = cluster.flows(node, interval, rate, T0, seed=node)
        shipper = Kept()
        batcher = EdgeBatcher(inventory, shipper, interval=interval)
        started = time.process_time()
        for flow in flows:
            batcher.add(flow)
        batcher.flush()
        cpu += time.process_time() - started
        direct = cluster.edges(node, interval, rate, T0)
        keys = sorted((r["src"], r["dst"], r["connections"], r["first_seen"], r["last_seen"]) for r in shipper.records)
        if keys != sorted((r["src"], r["dst"], r["connections"], r["first_seen"], r["last_seen"]) for r in direct):
            raise SystemExit(f"node {node}: the direct edges differ from the agent's aggregation")
        flows_n += len(flows)
        raw_bytes += len(json.dumps({"agent": f"node-{node}", "flows": [flow_to_record(f) for f in flows]}))
        edge_bytes += len(json.dumps({"agent": f"node-{node}", "edges": shipper.records}))
    k = len(nodes)
    return {"nodes": k, "flows_per_node": flows_n / k, "cpu_ms_per_interval": cpu / k * 1000,
            "raw_bytes_per_node": raw_bytes / k, "edge_bytes_per_node": edge_bytes / k}


async def post_interval(urls: list[str], bodies: list[bytes], agents: int) -> tuple[float, list[float]]:
    """Every body once, `agents` nodes at a time, node connection i to controller i % len(urls)."""
    def request(url: str, body: bytes) -> bytes:
        host = url.split("//", 1)[1]
        return (f"POST /api/v1/edges HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    latencies: list[float] = []
    pending = list(reversed(bodies))

    async def agent(url: str) -> None:
        host, port = url.split("//", 1)[1].split(":")
        async with RawAgent(host, int(port)) as conn:
            while pending:  # bounded: each body once
                body = pending.pop()
                started = time.perf_counter()
                status, answer = await conn.post(request(url, body))
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    raise SystemExit(f"batch refused: {status} {answer[:200]!r}")

    started = time.perf_counter()
    await asyncio.gather(*(agent(urls[i % len(urls)]) for i in range(agents)))
    return time.perf_counter() - started, latencies


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its children (PostgreSQL's postmaster and its backends)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=100, help="pods per node")
    parser.add_argument("--rate", type=float, default=10.0, help="new connections a second per pod (default 10)")
    parser.add_argument("--interval", type=float, default=10.0, help="the agents' interval in seconds (default 10)")
    parser.add_argument("--intervals", type=int, default=3, help="intervals posted (the first creates the edges)")
    parser.add_argument("--agents", type=int, default=16, help="nodes posting at the same time")
    parser.add_argument("--sample", type=int, default=10, help="nodes run through the real agent code")
    parser.add_argument("--db", default="sqlite", help="sqlite (a temp file) or a postgresql:// URL shared by the controllers")
    parser.add_argument("--controllers", type=int, default=1,
                        help="controller replicas on the --db (PostgreSQL), the nodes spread over them (default 1)")
    parser.add_argument("--db-pid", type=int, default=0,
                        help="PostgreSQL's postmaster pid: its CPU (and its backends') per interval is printed too")
    args = parser.parse_args()
    if args.controllers > 1 and not args.db.startswith("postgres"):
        parser.error("--controllers N > 1 shares one database: give --db postgresql://...")

    cluster = Cluster(args.nodes, args.pods)
    print(f"cluster: {args.nodes:,} nodes x {args.pods} pods = {cluster.pods:,} pods, {cluster.workloads:,} workloads; "
          f"{args.rate:g} connections/s per pod = {cluster.pods * args.rate:,.0f} connections/s; interval {args.interval:g} s")
    agent = agent_side(cluster, args.sample, args.interval, args.rate)
    print(f"agent (real EdgeBatcher, {agent['nodes']} nodes): {agent['flows_per_node']:,.0f} connections per node and "
          f"interval aggregated in {agent['cpu_ms_per_interval']:.0f} ms CPU; the aggregation matches the direct edges")
    with tempfile.TemporaryDirectory(prefix="netguard-agg-") as tmp:
        db = str(Path(tmp) / "bench.db") if args.db == "sqlite" else args.db
        procs: list = []
        urls: list[str] = []
        try:
            for i in range(args.controllers):  # every one started is stopped below, by its pid
                (Path(tmp) / f"c{i}").mkdir()
                proc, url = start_controller(Path(tmp) / f"c{i}", "--db", db, "--kube", "off", "--identity", f"replica-{i}")
                procs.append(proc)
                urls.append(url)
            rows = []
            for k in range(args.intervals):
                start = T0 + k * args.interval
                records = [cluster.edges(n, args.interval, args.rate, start) for n in range(args.nodes)]
                bodies = [json.dumps({"agent": f"node-{n}", "edges": r}).encode() for n, r in enumerate(records)]
                connections = sum(e["connections"] for r in records for e in r)
                cpu = [cpu_seconds(p.pid) for p in procs]
                db_cpu = tree_cpu_seconds(args.db_pid) if args.db_pid else 0.0
                elapsed, latencies = asyncio.run(post_interval(urls, bodies, args.agents))
                cpu = [cpu_seconds(p.pid) - c for p, c in zip(procs, cpu, strict=True)]
                db_cpu = tree_cpu_seconds(args.db_pid) - db_cpu if args.db_pid else 0.0
                latencies.sort()
                rows.append({"interval": k + 1, "batches": len(bodies), "edges": sum(len(r) for r in records),
                             "cpu_s": cpu, "db_cpu_s": db_cpu,
                             "connections": connections, "seconds": elapsed, "represented_per_s": connections / elapsed,
                             "bytes": sum(len(b) for b in bodies),
                             "p50_ms": latencies[len(latencies) // 2] * 1000,
                             "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000})
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=30)
    raw = agent["raw_bytes_per_node"] * args.nodes
    print(f"\nload average {os.getloadavg()[0]:.1f} (1 min) at the end")
    print(f"{args.controllers} controller(s) on {'SQLite' if args.db == 'sqlite' else 'PostgreSQL'}; controller CPU s: "
          f"per replica{', then the database' if args.db_pid else ''}")
    print("| interval | batches | edge records | connections | ingest s | controller CPU s | edge records/s | "
          "connections/s represented | bytes on the wire (edges) | raw flows would be | p50 ms | p99 ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cpu = " + ".join(f"{c:.1f}" for c in r["cpu_s"]) + (f" (db {r['db_cpu_s']:.1f})" if args.db_pid else "")
        print(f"| {r['interval']} | {r['batches']:,} | {r['edges']:,} | {r['connections']:,} | {r['seconds']:.1f} | {cpu} | "
              f"{r['edges'] / r['seconds']:,.0f} | "
              f"{r['represented_per_s']:,.0f} | {r['bytes'] / 1e6:.1f} MB | {raw / 1e6:,.0f} MB | "
              f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} |")
    print(f"\nper node and interval: {agent['edge_bytes_per_node'] / 1e3:.1f} kB of edges vs "
          f"{agent['raw_bytes_per_node'] / 1e6:.2f} MB of raw records "
          f"(x{agent['raw_bytes_per_node'] / agent['edge_bytes_per_node']:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
