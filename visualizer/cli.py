"""`netguard graph export`: the communication graph to a file."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from netguard.errors import InputError

EPILOG = """examples:
  netguard graph export --inventory cluster.yaml --flows flows.jsonl --format dot -o graph.dot
  netguard graph export --flows hubble.json --format json -o graph.json --policies policies/"""


def _parser() -> argparse.ArgumentParser:
    from visualizer.export import EXPORTERS

    parser = argparse.ArgumentParser(prog="netguard graph", description="The workload communication graph.")
    sub = parser.add_subparsers(dest="verb", required=True)
    e = sub.add_parser(
        "export",
        help="export the graph as json, graphml or dot",
        description="Export the workload communication graph built from observed flows.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument(
        "--inventory", nargs="+", action="extend", default=[], metavar="PATH", help="Kubernetes YAML/JSON files or folders"
    )
    e.add_argument("--flows", nargs="+", action="extend", required=True, metavar="PATH", help="flow records")
    e.add_argument(
        "--policies", nargs="+", action="extend", default=[], metavar="PATH", help="color edges by verdict under these policies"
    )
    e.add_argument("--format", required=True, choices=sorted(EXPORTERS), help="output format")
    e.add_argument("-o", "--output", required=True, metavar="FILE", help="output file (- for standard output)")
    return parser


def main(argv: list[str]) -> int:
    from netguard.inventory import load_policies
    from policygen.graph import annotate_verdicts, build_graph
    from policygen.pipeline import observe, stderr_progress
    from visualizer.export import EXPORTERS

    args = _parser().parse_args(argv)
    policies = load_policies(args.policies) if args.policies else None
    observed = observe(args.inventory, args.flows, stderr_progress)
    graph = build_graph(observed.edges)
    if policies is not None:
        annotate_verdicts(graph, observed.inventory, observed.edges, policies)
    text = EXPORTERS[args.format](graph)
    if args.output == "-":
        print(text, end="")
        return 0
    out = Path(args.output)
    if out.is_dir():
        raise InputError("is a folder; give a file name", source=str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".netguard-", dir=out.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, out)
    print(f"wrote {out} ({graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges)")
    return 0
