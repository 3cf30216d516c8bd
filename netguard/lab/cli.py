"""`netguard lab up|down|inventory|exec|traffic|enforce|status`."""

from __future__ import annotations

import argparse
import os
import sys

import yaml

from netguard.errors import InputError

EPILOG = """examples (as root):
  netguard lab up -f bookinfo.yaml                       # every pod a network namespace, Services on ClusterIPs
  netguard lab inventory > cluster.yaml                  # the lab as `kubectl get ns,pods,svc,rs,deploy -A -o yaml`
  netguard lab exec productpage-v1 -- getent hosts details
  netguard lab traffic --spec calls.yaml --duration 10   # the calls a spec lists, through the lab's DNS
  netguard agent --output flows.jsonl &                  # capture them (conntrack)
  netguard policy generate --inventory cluster.yaml --flows flows.jsonl -o policies/
  netguard lab enforce --policies policies/              # NetworkPolicies as nftables rules
  netguard lab enforce --off
  netguard lab down                                      # removes everything (also after a crash)

traffic spec (YAML): a list of calls, or {calls: [...]}:
  - from: productpage-v1      # a workload ([ns/]name): each of its pods calls
    to: details:9080          # service[.ns][:port] resolved by the lab's DNS, or an IP:port
    protocol: TCP             # TCP (default) or UDP
    count: 3                  # calls per source pod per round (default 1)
    expect: allow             # allow (default) or deny: a denied call must fail
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netguard lab", description="Pods as network namespaces with real traffic.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="verb", required=True,
                                metavar="{up,down,inventory,exec,traffic,enforce,status}")

    def add(verb: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(verb, help=help_, description=help_, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--name", default=os.environ.get("NETGUARD_LAB", "lab"),
                       help="the lab's name (default: $NETGUARD_LAB or 'lab'; 1-7 characters a-z0-9)")
        return p

    u = add("up", "Create a lab from manifests.")
    u.add_argument("-f", "--filename", nargs="+", action="extend", required=True, metavar="PATH",
                   help="Kubernetes manifests (files or folders)")
    add("down", "Remove everything the lab created.")
    add("inventory", "Print the lab as `kubectl get ns,pods,svc,rs,deploy -A -o yaml` would.")
    add("status", "Print the lab's pods and services.")
    e = add("exec", "Run a command inside a pod's network namespace.")
    e.add_argument("pod", help="ns/name, name, or a workload name with one pod")
    e.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    t = add("traffic", "Make the calls of a spec (or of the manifests' host:port env values).")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--spec", metavar="FILE", help="the calls (YAML; format below)")
    src.add_argument("--from-env", action="store_true", help="call every host:port found in the pods' env values")
    t.add_argument("--duration", type=float, default=0.0, metavar="S",
                   help="repeat the calls for S seconds (default: one round); at most 600")
    t.add_argument("--rate", type=float, default=0.0, metavar="N", help="at most N calls per second (default: no pause)")
    t.add_argument("--timeout", type=float, default=2.0, metavar="S", help="connect/answer timeout per call (default 2)")
    t.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    n = add("enforce", "Program nftables from NetworkPolicies (Kubernetes semantics), or remove them with --off.")
    g = n.add_mutually_exclusive_group(required=True)
    g.add_argument("--policies", nargs="+", action="extend", metavar="PATH", help="NetworkPolicy files or folders")
    g.add_argument("--off", action="store_true", help="remove the enforcement rules")
    n.add_argument("--print", action="store_true", help="print the nftables ruleset applied")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from netguard.lab.system import SystemError_

    try:
        return _run(args)
    except SystemError_ as exc:
        print(f"netguard lab {args.verb}: failed: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from netguard.lab import lab

    if args.verb == "up":
        plan = lab.up(args.filename, args.name)
        print(f"lab {plan.name} is up: {len(plan.pods)} pods in {plan.pod_cidr}, {len(plan.services)} services, "
              f"DNS at {plan.dns_ip}")
        return 0
    if args.verb == "down":
        removed = lab.down(args.name)
        print(f"lab {args.name} is down ({len(removed)} things removed)" if removed else f"lab {args.name}: nothing to remove")
        return 0
    plan, state = lab.load(args.name)
    if args.verb == "inventory":
        from netguard.lab.render import inventory

        yaml.safe_dump(inventory(plan), sys.stdout, sort_keys=False)
        return 0
    if args.verb == "status":
        for pod in plan.pods:
            ports = ",".join(f"{p.port}/{p.protocol}" for p in pod.ports)
            print(f"pod      {pod.ref:<50} {pod.ip:<15} {ports:<20} netns {pod.netns}")
        for svc in plan.services:
            ports = ",".join(f"{p.port}/{p.protocol}" for p in svc.ports)
            print(f"service  {svc.ref:<50} {svc.cluster_ip:<15} {ports}")
        print(f"enforced: {state.get('enforced') or 'no'}")
        return 0
    if args.verb == "exec":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            raise InputError("lab exec needs a command: netguard lab exec POD -- CMD [ARGS...]")
        pod = plan.pod(args.pod)
        os.execvp("ip", ["ip", "netns", "exec", pod.netns, *command])
    if args.verb == "traffic":
        from netguard.lab import traffic

        calls = traffic.load_spec(args.spec) if args.spec else traffic.env_calls(plan)
        report = traffic.run(plan, calls, duration=args.duration, rate=args.rate, timeout=args.timeout,
                             progress=None if args.quiet else sys.stdout)
        print(report.summary())
        return 0 if report.ok else 1
    if args.verb == "enforce":
        from netguard.lab import enforce

        if args.off:
            enforce.off(plan)
            print(f"lab {plan.name}: enforcement off")
            return 0
        script, summary = enforce.apply(plan, args.policies)
        if args.print:
            print(script)
        print(summary)
        return 0
    return 2
