"""Scale of the policy pipeline: load -> graph -> generate -> verify on synthetic clusters.

Prints, per size, the seconds of each stage and the peak memory (RSS) of the process doing it, and
of the largest forked flow reader (large flow files are read on every core). Each size runs in a
fresh subprocess so peak memory is its own.

    .venv/bin/python bench/policy_scale.py                 # 100, 1,000 and 10,000 workloads
    .venv/bin/python bench/policy_scale.py --sizes 1000     # one size

Synthetic cluster: namespaces of 100 workloads (Deployments with 2 pods and a ClusterIP Service
each); every workload calls about 10 others (a third in other namespaces) on their service port;
100 flow records per workload (so 1,000,000 at 10,000 workloads), half through the ClusterIP with
the post-DNAT pod known, half straight to a pod IP.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEERS = 10
FLOWS_PER_WORKLOAD = 100
PER_NAMESPACE = 100


def make_cluster(n: int, folder: Path, seed: int = 7) -> tuple[Path, Path]:
    rng = random.Random(seed)
    items = []
    namespaces = [f"team-{i:03d}" for i in range((n + PER_NAMESPACE - 1) // PER_NAMESPACE)]
    for ns in namespaces:
        items.append(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}}
        )
    pods: list[list[str]] = []
    cluster_ips = []
    for i in range(n):
        ns, name = namespaces[i // PER_NAMESPACE], f"svc-{i:05d}"
        labels = {"app": name, "tier": rng.choice(["web", "api", "db"])}
        port = 8000 + i % 100
        items.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "app", "ports": [{"containerPort": port, "name": "http"}]}]},
                    },
                },
            }
        )
        ips = []
        for r in range(2):
            ip = f"10.{64 + (2 * i + r) // 65536}.{((2 * i + r) // 256) % 256}.{(2 * i + r) % 256}"
            ips.append(ip)
            items.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": f"{name}-5d8c6b7f9c-{r:05d}",
                        "namespace": ns,
                        "labels": {**labels, "pod-template-hash": "5d8c6b7f9c"},
                        "ownerReferences": [{"kind": "ReplicaSet", "name": f"{name}-5d8c6b7f9c", "controller": True}],
                    },
                    "spec": {"containers": [{"name": "app", "ports": [{"containerPort": port, "name": "http"}]}]},
                    "status": {"podIP": ip, "hostIP": "192.168.0.1"},
                }
            )
        pods.append(ips)
        cip = f"10.96.{i // 256}.{i % 256}"
        cluster_ips.append((cip, port))
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"clusterIP": cip, "selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}]},
            }
        )
    inventory = folder / f"cluster-{n}.json"
    inventory.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    flows = folder / f"flows-{n}.jsonl"
    with flows.open("w") as fh:
        t = 1_790_000_000.0
        for i in range(n):
            base = (i // PER_NAMESPACE) * PER_NAMESPACE
            peers = [rng.randrange(base, min(base + PER_NAMESPACE, n)) if k % 3 else rng.randrange(n) for k in range(PEERS)]
            for k in range(FLOWS_PER_WORKLOAD):
                j = peers[k % PEERS]
                src = pods[i][k % 2]
                dst_pod = pods[j][k % 2]
                t += 0.001
                if k % 2:
                    rec = {
                        "time": round(t, 3),
                        "src_ip": src,
                        "src_port": 30000 + k,
                        "dst_ip": cluster_ips[j][0],
                        "dst_port": 80,
                        "protocol": "TCP",
                        "dst_pod_ip": dst_pod,
                        "dst_pod_port": cluster_ips[j][1],
                        "bytes": 900,
                        "packets": 8,
                    }
                else:
                    rec = {
                        "time": round(t, 3),
                        "src_ip": src,
                        "src_port": 30000 + k,
                        "dst_ip": dst_pod,
                        "dst_port": cluster_ips[j][1],
                        "protocol": "TCP",
                        "bytes": 900,
                        "packets": 8,
                    }
                fh.write(json.dumps(rec) + "\n")
    return inventory, flows


def run_one(inventory: Path, flows: Path) -> dict:
    """One measured run, in this process."""

    from policygen.pipeline import batch_gc

    out: dict = {}
    with batch_gc():  # as the CLI runs it
        _stages(inventory, flows, out)
    return out


def _stages(inventory: Path, flows: Path, out: dict) -> None:
    from netguard.inventory import load_inventory
    from policygen.graph import build_graph
    from policygen.pipeline import aggregate_files
    from policygen.render import render_policy
    from policygen.synth import synthesize
    from policygen.verify import verify

    t = time.perf_counter()
    inv = load_inventory([inventory])
    out["load_inventory"] = time.perf_counter() - t
    t = time.perf_counter()
    agg, _ = aggregate_files(inv, [flows])
    edges = agg.edges()
    out["read_flows"] = time.perf_counter() - t
    t = time.perf_counter()
    graph = build_graph(edges)
    out["graph"] = time.perf_counter() - t
    t = time.perf_counter()
    result = synthesize(inv, edges)
    yaml_bytes = sum(len(render_policy(g)) for g in result.policies)  # what `generate` writes
    out["generate"] = time.perf_counter() - t
    t = time.perf_counter()
    report = verify(inv, edges, [g.policy for g in result.policies])
    out["verify"] = time.perf_counter() - t
    out.update(
        yaml_mb=yaml_bytes / 1e6,
        workloads=len(inv.workloads),
        edges=len(edges),
        flows=agg.flows,
        graph_edges=graph.number_of_edges(),
        policies=len(result.policies),
        allowed=report.allowed_connections,
        extra=len(report.extra),
        denied=len(report.denied),
        peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        reader_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--child", nargs=2, metavar=("INVENTORY", "FLOWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(Path(args.child[0]), Path(args.child[1]))))
        return 0
    root = Path(__file__).resolve().parent.parent
    print(
        f"{'workloads':>9} {'edges':>8} {'flows':>9} | {'inventory':>9} {'flows':>7} {'graph':>6} {'generate':>8} {'verify':>7} "
        f"{'total s':>8} | {'peak MB':>7} {'readers':>7} | sound  extra"
    )
    with tempfile.TemporaryDirectory(prefix="netguard-bench-") as tmp:
        for n in args.sizes:
            inventory, flows = make_cluster(n, Path(tmp))
            proc = subprocess.run(
                [sys.executable, __file__, "--child", str(inventory), str(flows)],
                capture_output=True,
                text=True,
                cwd=root,
                check=True,
            )
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            total = sum(r[k] for k in ("load_inventory", "read_flows", "graph", "generate", "verify"))
            sound = "100%" if r["allowed"] == r["flows"] and not r["denied"] else f"{100 * r['allowed'] / r['flows']:.2f}%"
            print(
                f"{r['workloads']:>9,} {r['edges']:>8,} {r['flows']:>9,} | {r['load_inventory']:>9.2f} {r['read_flows']:>7.2f} "
                f"{r['graph']:>6.2f} {r['generate']:>8.2f} {r['verify']:>7.2f} {total:>8.2f} | "
                f"{r['peak_mb']:>7.0f} {r['reader_mb']:>7.0f} | {sound:>5}  {r['extra']}",
                flush=True,
            )
            inventory.unlink()
            flows.unlink()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
