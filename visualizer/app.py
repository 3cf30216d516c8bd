"""`netguard ui`: the topology map and the policy review page, from local files or a controller."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from netguard.errors import InputError

DEFAULT_LISTEN = "127.0.0.1:8765"

EPILOG = """examples:
  # from files: the cluster's objects and recorded flows (the cluster's own policies come from the inventory)
  netguard ui --inventory cluster.yaml --flows flows.jsonl
  # compare with a folder of policies instead, keep approvals in a file, show WAF blocks
  netguard ui --inventory cluster.yaml --flows flows.jsonl --policies policies/ --approvals approvals.json \\
              --waf-log waf-audit.jsonl
  # in front of a running controller (same API; its bearer token read from a file)
  netguard ui --controller http://127.0.0.1:9000 --token-file token.txt --listen 127.0.0.1:8080

Then open http://127.0.0.1:8765/ (the page loads nothing from the internet)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="netguard ui",
        description="Serve the traffic map (who talks to whom, colored by verdict) and the policy review page.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT", help=f"where to serve (default {DEFAULT_LISTEN})")
    p.add_argument("--controller", metavar="URL", help="use a running netguard controller's API instead of files")
    p.add_argument("--token-file", metavar="FILE", help="bearer token for the controller")
    p.add_argument(
        "--inventory",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH",
        help="Kubernetes YAML/JSON files or folders (local mode)",
    )
    p.add_argument("--flows", nargs="+", action="extend", default=[], metavar="PATH", help="flow records (local mode)")
    p.add_argument(
        "--policies",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH",
        help="the current policies to compare with (default: the NetworkPolicies in the inventory)",
    )
    p.add_argument("--approvals", metavar="FILE", help="keep review decisions in this JSON file (local mode)")
    p.add_argument(
        "--waf-log",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="WAF sidecar audit logs (JSON lines) whose blocks are shown on the map",
    )
    return p


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"expected HOST:PORT, got {value!r}", obj="--listen")
    return host.strip("[]") or "127.0.0.1", int(port)


def build_backend(args: argparse.Namespace):
    from visualizer.backends import ControllerBackend, LocalBackend

    if args.controller:
        if args.inventory or args.flows or args.policies or args.approvals:
            raise InputError("--controller takes its data from the controller; drop --inventory/--flows/--policies/--approvals")
        if not args.controller.startswith(("http://", "https://")):
            raise InputError(f"expected an http(s) URL, got {args.controller!r}", obj="--controller")
        token = None
        if args.token_file:
            try:
                token = Path(args.token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise InputError(f"cannot read the token ({exc.strerror})", source=args.token_file) from exc
        return ControllerBackend(args.controller, token)
    if args.token_file:
        raise InputError("--token-file goes with --controller")
    if not args.flows:
        raise InputError("give --flows (and --inventory) for local mode, or --controller URL")
    from netguard.inventory import load_policies
    from policygen.pipeline import observe, stderr_progress
    from policygen.review import build_review

    observed = observe(args.inventory, args.flows, stderr_progress)
    current = load_policies(args.policies) if args.policies else None
    review = build_review(observed.inventory, observed.edges, current)
    print(f"review: {len(review.generated)} generated policies, {len(review.current)} current", file=sys.stderr)
    backend = LocalBackend(review, args.approvals)
    backend.warm()
    return backend


def main(argv: list[str]) -> int:
    import uvicorn

    from visualizer.server import create_app
    from visualizer.waflog import read_waf_log

    args = _parser().parse_args(argv)
    host, port = parse_listen(args.listen)
    for path in args.waf_log:  # a bad log is a one-line error now, not a blank map later
        read_waf_log(path)
    backend = build_backend(args)
    app = create_app(backend, waf_logs=args.waf_log)
    shown = f"[{host}]" if ":" in host else host
    where = f"controller {args.controller}" if args.controller else "local files"
    print(f"netguard ui: serving http://{shown}:{port}/ ({where})", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
