"""`netguard graph export`: the communication graph to a file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from netguard.errors import InputError
from netguard.files import write_atomic

EPILOG = """examples:
  netguard graph export --inventory cluster.yaml --flows flows.jsonl --format dot -o graph.dot
  netguard graph export --flows hubble.json --format json -o graph.json --policies policies/
  netguard graph export --inventory cluster.yaml --flows flows.jsonl --format svg -o graph.svg
  netguard graph export --inventory cluster.yaml --flows flows.jsonl --format png -o graph.png   # needs Graphviz"""


def _parser() -> argparse.ArgumentParser:
    from visualizer.export import BINARY_EXPORTERS, EXPORTERS

    parser = argparse.ArgumentParser(prog="netguard graph", description="The workload communication graph.")
    sub = parser.add_subparsers(dest="verb", required=True)
    e = sub.add_parser(
        "export",
        help="export the graph as json, graphml, dot, svg or png",
        description="Export the workload communication graph built from observed flows.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument(
        "--inventory", nargs="+", action="extend", default=[], metavar="PATH", help="Kubernetes YAML/JSON files or folders"
    )
    e.add_argument("--flows", nargs="+", action="extend", required=True, metavar="PATH", help="flow records")
    e.add_argument("--skip-invalid", action="store_true",
                   help="skip invalid flow lines (counted, the first few named) instead of stopping at the first")
    e.add_argument(
        "--policies", nargs="+", action="extend", default=[], metavar="PATH", help="color edges by verdict under these policies"
    )
    e.add_argument(
        "--format",
        required=True,
        choices=sorted(EXPORTERS) + sorted(BINARY_EXPORTERS),
        help="output format (svg and png are drawn by Graphviz)",
    )
    e.add_argument("-o", "--output", required=True, metavar="FILE", help="output file (- for standard output)")
    return parser


def main(argv: list[str]) -> int:
    from netguard.inventory import load_policies
    from policygen.graph import annotate_verdicts, build_graph
    from policygen.pipeline import observe, stderr_progress
    from visualizer.export import BINARY_EXPORTERS, EXPORTERS, RenderError

    args = _parser().parse_args(argv)
    policies = load_policies(args.policies) if args.policies else None
    observed = observe(args.inventory, args.flows, stderr_progress, skip_invalid=args.skip_invalid)
    graph = build_graph(observed.edges)
    if policies is not None:
        annotate_verdicts(graph, observed.inventory, observed.edges, policies)
    try:
        data = (BINARY_EXPORTERS.get(args.format) or EXPORTERS[args.format])(graph)
    except RenderError as exc:
        raise InputError(str(exc), obj=f"--format {args.format}") from exc
    payload = data if isinstance(data, bytes) else data.encode("utf-8")
    if args.output == "-":
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()
        return 0
    out = Path(args.output)
    if out.is_dir():
        raise InputError("is a folder; give a file name", source=str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, payload)
    print(f"wrote {out} ({graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges)")
    return 0
