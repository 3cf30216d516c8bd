"""The one `netguard` command: the composition root.

Each subcommand lives in the package that owns it and is imported only when it runs, so
`netguard --help` stays fast. A subcommand module exposes `main(argv: list[str]) -> int`.
"""

from __future__ import annotations

import importlib
import sys

from netguard.errors import InputError

# name -> (module with main(argv), one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "policy": ("policygen.cli", "generate, verify, explain and diff NetworkPolicies from observed flows"),
    "graph": ("visualizer.cli", "export the workload communication graph (json, graphml, dot, svg, png)"),
    "lab": ("netguard.lab.cli", "pods of a manifest as network namespaces with real traffic; enforce policies in nftables"),
    "agent": ("netguard.agent.cli", "the node agent: capture new connections (conntrack, sniff, pcap), write or ship flows"),
    "controller": ("policygen.controller.cli", "the controller service: ingest from agents, review, alerts, apply"),
    "ui": ("visualizer.app", "serve the traffic map and the policy review page (from files or the controller)"),
    "waf": ("waf.cli", "run the WAF sidecar (reverse proxy blocking OWASP-Top-10-style requests)"),
    "inject": ("waf.injection.cli", "inject the WAF sidecar into opted-in workloads of YAML files (offline)"),
    "webhook": ("waf.injection.webhook_cli", "sidecar-injection admission webhook; `webhook certs` for TLS"),
    "demo": ("netguard.demo", "the whole mission on bookinfo in the lab (or a recorded capture where the lab cannot run)"),
}

USAGE = """usage: netguard <command> [options]

Kubernetes network micro-segmentation and traffic guard.

commands:
{commands}

Run `netguard <command> --help` for a command's options and examples.
"""


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = "\n".join(f"  {name:<{width}}  {helptext}" for name, (_, helptext) in COMMANDS.items())
    return USAGE.format(commands=lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage(), end="")
        return 0
    if args[0] in ("-V", "--version"):
        from netguard import __version__

        print(f"netguard {__version__}")
        return 0
    name = args[0]
    if name not in COMMANDS:
        print(f"netguard: unknown command {name!r}; run `netguard --help`", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main(args[1:]) or 0)
    except InputError as exc:
        print(f"netguard {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"netguard {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
