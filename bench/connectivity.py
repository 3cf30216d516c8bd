"""Scale of `netguard policy connectivity`: the whole map of bench/policy_scale.py's synthetic clusters
under their generated policies (and the same with cluster admin tiers on top).

Per size: the workloads, the groups they collapse into, the candidate group pairs the rules name (the
only pairs evaluated), the connections in the map, and the seconds to compute the map and to print it
as txt. Each size runs in a fresh subprocess; generating the policies is set-up, not measured.

    .venv/bin/python bench/connectivity.py                  # 1,000 and 10,000 workloads
    .venv/bin/python bench/connectivity.py --sizes 1000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ADMIN = [  # a platform team's usual tiers: monitoring always in, one namespace sealed, a default-deny baseline
    {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "sealed"},
     "spec": {"priority": 10, "subject": {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "team-000"}}},
              "ingress": [{"name": "no-outsiders", "action": "Deny",
                           "from": [{"namespaces": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                                                                          "operator": "NotIn", "values": ["team-000"]}]}}]}]}},
    {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "scrape"},
     "spec": {"priority": 20, "subject": {"namespaces": {}},
              "ingress": [{"name": "metrics", "action": "Allow", "from": [{"namespaces": {"matchLabels": {"team": "ops"}}}],
                           "ports": [{"portNumber": {"protocol": "TCP", "port": 9100}}]}]}},
    {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy", "metadata": {"name": "default"},
     "spec": {"subject": {"namespaces": {}},
              "ingress": [{"name": "baseline-deny", "action": "Deny", "from": [{"namespaces": {}}]}]}},
]


def run_one(inventory_path: Path, flows: Path) -> dict:
    from netguard.adminpol import parse_admin_policy
    from netguard.connectivity import connectivity
    from netguard.inventory import load_inventory
    from policygen.connectivity import to_txt
    from policygen.pipeline import aggregate_files, batch_gc
    from policygen.synth import synthesize

    out: dict = {}
    with batch_gc():
        inventory = load_inventory([inventory_path])
        agg, _ = aggregate_files(inventory, [flows])
        policies = [g.policy for g in synthesize(inventory, agg.edges()).policies]
        admin = [parse_admin_policy(doc, source="bench") for doc in ADMIN]
        for label, policy_list in (("np", policies), ("admin", policies + admin)):
            t = time.perf_counter()
            cmap = connectivity(inventory, policy_list)
            out[f"{label}_map"] = time.perf_counter() - t
            t = time.perf_counter()
            text = to_txt(cmap)
            out[f"{label}_txt"] = time.perf_counter() - t
            out[f"{label}_pairs"] = cmap.pairs_evaluated
            out[f"{label}_connections"] = len(cmap.connections)
            out[f"{label}_mb"] = len(text) / 1e6
        out.update(workloads=cmap.workloads, groups=cmap.groups, policies=len(policies),
                   peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--child", nargs=2, metavar=("INVENTORY", "FLOWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(Path(args.child[0]), Path(args.child[1]))))
        return 0
    from bench.policy_scale import make_cluster

    root = Path(__file__).resolve().parent.parent
    print(f"{'workloads':>9} {'groups':>7} | {'tiers':>5} {'pairs':>9} {'connections':>11} {'map s':>6} {'txt s':>6} "
          f"{'txt MB':>6} | {'peak MB':>7}")
    with tempfile.TemporaryDirectory(prefix="netguard-bench-") as tmp:
        for n in args.sizes:
            inventory, flows = make_cluster(n, Path(tmp))
            proc = subprocess.run([sys.executable, __file__, "--child", str(inventory), str(flows)],
                                  capture_output=True, text=True, cwd=root, check=True)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            for label in ("np", "admin"):
                print(f"{r['workloads']:>9,} {r['groups']:>7,} | {label:>5} {r[label + '_pairs']:>9,} "
                      f"{r[label + '_connections']:>11,} {r[label + '_map']:>6.2f} {r[label + '_txt']:>6.2f} "
                      f"{r[label + '_mb']:>6.1f} | {r['peak_mb']:>7.0f}", flush=True)
            inventory.unlink()
            flows.unlink()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
