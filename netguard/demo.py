"""`netguard demo`: the whole policy pipeline on the embedded bookinfo sample, as a user would run it.

Every step is a `netguard` command (printed before it runs), so the demo doubles as a tutorial.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from importlib import resources
from pathlib import Path

STEPS_HELP = """steps:
  1. generate least-privilege NetworkPolicies from a recorded bookinfo capture
  2. verify them against every observed flow (and count what they allow beyond it)
  3. explain two lateral moves the policies stop
  4. export the communication graph (DOT and JSON)"""


def _sample() -> Path:
    return Path(str(resources.files("netguard") / "data" / "bookinfo"))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="netguard demo",
        description="Run netguard end to end on the bookinfo sample.",
        epilog=STEPS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-o", "--output", default="netguard-demo", metavar="DIR", help="where to write results (default ./netguard-demo)"
    )
    args = parser.parse_args(argv)
    from netguard.cli import main as netguard

    sample, out = _sample(), Path(args.output)
    inventory = [str(sample / "bookinfo.yaml"), str(sample / "bookinfo-cluster.yaml")]
    flows = [str(sample / "bookinfo-flows.jsonl")]
    policies = str(out / "policies")

    def step(title: str, argv: list[str], ok: tuple[int, ...] = (0,)) -> int:
        print(f"\n== {title}\n$ netguard {' '.join(shlex.quote(a) for a in argv)}", flush=True)
        rc = netguard(argv)
        sys.stdout.flush()
        if rc not in ok:
            print(f"demo: step failed with exit status {rc}", file=sys.stderr)
            raise SystemExit(rc)
        return rc

    print("netguard demo: Istio's bookinfo (6 workloads) with a recorded capture of its traffic.")
    print("(The network-namespace lab replaces the recording once it is installed: see README.)")
    step(
        "1. generate policies from observed traffic",
        ["policy", "generate", "--inventory", *inventory, "--flows", *flows, "-o", policies],
    )
    step(
        "2. verify: every observed flow allowed, nothing extra inside the cluster",
        ["policy", "verify", "--inventory", *inventory, "--flows", *flows, "--policies", policies],
    )
    step(
        "3a. explain a lateral move: productpage -> ratings",
        [
            "policy",
            "explain",
            "--inventory",
            *inventory,
            "--policies",
            policies,
            "--from",
            "default/productpage-v1",
            "--to",
            "default/ratings-v1",
            "--port",
            "9080",
        ],
        ok=(1,),
    )
    step(
        "3b. explain a lateral move: details -> reviews",
        [
            "policy",
            "explain",
            "--inventory",
            *inventory,
            "--policies",
            policies,
            "--from",
            "default/details-v1",
            "--to",
            "default/reviews-v1",
            "--port",
            "9080",
        ],
        ok=(1,),
    )
    step(
        "3c. explain an allowed call: reviews-v2 -> ratings",
        [
            "policy",
            "explain",
            "--inventory",
            *inventory,
            "--policies",
            policies,
            "--from",
            "default/reviews-v2",
            "--to",
            "default/ratings-v1",
            "--port",
            "9080",
        ],
    )
    step(
        "4. export the graph, colored by verdict",
        [
            "graph",
            "export",
            "--inventory",
            *inventory,
            "--flows",
            *flows,
            "--policies",
            policies,
            "--format",
            "dot",
            "-o",
            str(out / "graph.dot"),
        ],
    )
    step(
        "4b. and as JSON",
        [
            "graph",
            "export",
            "--inventory",
            *inventory,
            "--flows",
            *flows,
            "--policies",
            policies,
            "--format",
            "json",
            "-o",
            str(out / "graph.json"),
        ],
    )
    print(f"\ndone: policies in {policies}/, graph in {out}/graph.dot and {out}/graph.json")
    return 0
