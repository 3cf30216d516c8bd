"""`netguard policy generate|verify|explain|diff`: thin shells over the pure pipeline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from netguard.errors import InputError
from netguard.inventory import Inventory, is_ip
from netguard.model import PROTOCOLS
from netguard.netpol import NetworkPolicy, Target
from policygen.pipeline import batch_gc, load_inventory_or_empty, observe, quiet, stderr_progress

EXAMPLES = {
    "generate": """examples:
  netguard policy generate --inventory cluster.yaml --flows flows.jsonl -o policies/
  netguard policy generate --flows hubble.json -o policies/          # Hubble flows need no inventory
  kubectl get ns,pods,svc,rs,deploy,sts,ds -A -o yaml > cluster.yaml  # an inventory""",
    "verify": """exit status: 0 every observed flow is allowed, 1 some are denied, 2 bad input.
example:
  netguard policy verify --inventory cluster.yaml --flows flows.jsonl --policies policies/""",
    "explain": """exit status: 0 allowed, 1 denied, 2 bad input.
examples:
  netguard policy explain --inventory cluster.yaml --policies policies/ \\
      --from default/productpage-v1 --to default/ratings-v1 --port 9080
  netguard policy explain --inventory cluster.yaml --policies policies/ --from default/web --to 8.8.8.8 --port 53/UDP""",
    "connectivity": """Every allowed connection between two workloads, and with outside IP ranges, one line each:
`SRC => DST : CONNS` (netpol-analyzer's and roxctl's convention). Works on manifests alone.
examples:
  netguard policy connectivity --inventory manifests/ --policies policies/
  netguard policy connectivity --inventory cluster.yaml --format svg -o map.svg
  netguard policy connectivity --inventory manifests/ --policies policies/ --focus-workload shop/web --exposure""",
    "diff": """exit status: 0 no difference, 1 differences, 2 bad input.
example:
  netguard policy diff --inventory cluster.yaml --policies policies/""",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netguard policy",
        description="Least-privilege NetworkPolicies from observed traffic: generate, verify, explain, diff.",
    )
    sub = parser.add_subparsers(dest="verb", required=True, metavar="{generate,verify,explain,connectivity,diff}")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, help=help_, description=help_, epilog=EXAMPLES[name], formatter_class=argparse.RawDescriptionHelpFormatter
        )
        return p

    def inventory(p: argparse.ArgumentParser, required: bool) -> None:
        p.add_argument(
            "--inventory",
            nargs="+",
            action="extend",
            default=[],
            required=required,
            metavar="PATH",
            help="Kubernetes YAML/JSON files or folders (kubectl get -o yaml output, manifests)",
        )

    def flows(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--flows",
            nargs="+",
            action="extend",
            default=[],
            required=True,
            metavar="PATH",
            help="flow records: native JSON lines, Hubble JSON, or pcap (format detected per line)",
        )
        p.add_argument("--skip-invalid", action="store_true",
                       help="skip invalid flow lines (counted, the first few named) instead of stopping at the first")
        p.add_argument("--allow-empty", action="store_true",
                       help="accept flows that hold no connection (every policy then denies all traffic)")

    g = add("generate", "Generate one default-deny NetworkPolicy per workload that allows the observed traffic.")
    inventory(g, required=False)
    flows(g)
    g.add_argument("-o", "--output", required=True, metavar="DIR", help="writes DIR/<namespace>/<workload>.yaml")
    g.add_argument(
        "--format",
        choices=("netpol", "cilium"),
        default="netpol",
        help="netpol: networking.k8s.io/v1 NetworkPolicy (default); cilium: CiliumNetworkPolicy",
    )
    g.add_argument(
        "--dns",
        choices=("observed", "always", "never"),
        default="observed",
        help="allow DNS to kube-dns (UDP+TCP 53): when the workload was seen resolving names (default), always, or never",
    )
    g.add_argument(
        "--cidr-prefix",
        type=int,
        default=32,
        metavar="N",
        help="aggregate external IPv4 peers to /N ipBlocks (default 32: exact addresses)",
    )
    g.add_argument("--cidr-prefix-v6", type=int, default=128, metavar="N", help="the same for IPv6 (default 128)")
    g.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=None,
        metavar="NS",
        help="only write policies for workloads of this namespace (repeatable)",
    )
    g.add_argument(
        "--exclude-namespace",
        action="append",
        default=None,
        metavar="NS",
        help="never write policies for this namespace (default: kube-system; repeatable)",
    )
    g.add_argument("--named-ports", action="store_true", help="use container port names where ports have one")
    g.add_argument("--skip-idle", action="store_true", help="no deny-all policies for workloads without observed traffic")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")

    v = add("verify", "Check that policies allow every observed flow and count what they allow beyond it.")
    inventory(v, required=False)
    flows(v)
    v.add_argument("--policies", nargs="+", action="extend", required=True, metavar="PATH", help="policy files or folders")
    v.add_argument("--no-least-privilege", action="store_true", help="skip counting allowed-but-unobserved triples")
    v.add_argument("--with-cluster-policies", action="store_true",
                   help="evaluate the folder's policies together with the inventory's NetworkPolicies (what applies "
                        "once they are applied; a policy of the same namespace/name is replaced)")
    v.add_argument("-q", "--quiet", action="store_true")

    e = add("explain", "Say whether one connection is allowed, and by which policy and rule, or why not.")
    inventory(e, required=True)
    e.add_argument(
        "--policies",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH",
        help="policy files or folders (default: the inventory's NetworkPolicies)",
    )
    e.add_argument("--from", dest="src", required=True, metavar="NS/POD", help="source pod (or workload) or IP")
    e.add_argument("--to", dest="dst", required=True, metavar="NS/POD|IP", help="destination pod (or workload) or IP")
    e.add_argument("--port", required=True, metavar="N[/PROTO]", help="destination (pod) port, protocol TCP by default")

    c = add("connectivity", "List every connection a policy set allows (the whole map), optionally with exposure.")
    inventory(c, required=True)
    c.add_argument(
        "--policies",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH",
        help="policy files or folders (default: the inventory's policies)",
    )
    c.add_argument("--format", choices=("txt", "json", "csv", "md", "dot", "svg"), default="txt")
    c.add_argument("--focus-workload", metavar="NS/NAME", help="only the connections of this workload")
    c.add_argument("--exposure", action="store_true",
                   help="also list what any namespace or outside address may reach, and the rule that opens it")
    c.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: standard output)")

    d = add("diff", "Diff the policies in a folder against the NetworkPolicies in the inventory.")
    inventory(d, required=True)
    d.add_argument("--policies", nargs="+", action="extend", required=True, metavar="PATH")
    d.add_argument("--stat", action="store_true", help="only the summary, no YAML diff")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    with batch_gc():
        verbs = {"generate": generate, "verify": verify, "explain": explain, "connectivity": connectivity, "diff": diff}
        return verbs[args.verb](args)


# --- generate ------------------------------------------------------------------------------------


def generate(args: argparse.Namespace) -> int:
    from policygen.render import render_policy, write_policies
    from policygen.synth import SynthesisOptions, synthesize

    if not 0 <= args.cidr_prefix <= 32 or not 0 <= args.cidr_prefix_v6 <= 128:
        raise InputError("--cidr-prefix must be 0-32 and --cidr-prefix-v6 0-128")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder", source=str(out))
    progress = quiet if args.quiet else stderr_progress
    observed = observe(args.inventory, args.flows, progress, skip_invalid=args.skip_invalid,
                       allow_empty=args.allow_empty, need_identity=True)
    options = SynthesisOptions(
        dns=args.dns,
        cidr_prefix=args.cidr_prefix,
        cidr_prefix_v6=args.cidr_prefix_v6,
        namespaces=frozenset(args.namespace) if args.namespace else None,
        exclude_namespaces=frozenset(args.exclude_namespace if args.exclude_namespace is not None else ["kube-system"]),
        named_ports=args.named_ports,
        idle=not args.skip_idle,
    )
    result = synthesize(observed.inventory, observed.edges, options)
    render = render_policy
    if args.format == "cilium":
        from policygen.cilium import render_cilium

        render = render_cilium
    written = write_policies(result.policies, out, render, in_scope=options.in_scope)
    for removed in written.removed:
        progress(f"removed {removed} (an earlier netguard policy of a workload no longer observed)")
    paths = written.paths
    from policygen.verify import admin_warnings

    for warning in result.warnings + admin_warnings(observed.inventory, observed.edges, result.policies):
        progress(f"warning: {warning}")
    if not args.quiet:
        print(summary_table(result.policies))
        print(f"\nwrote {len(paths)} {'CiliumNetworkPolicies' if args.format == 'cilium' else 'NetworkPolicies'} to {out}/")
    return 0


def summary_table(policies: list) -> str:
    rows = [("WORKLOAD", "KIND", "INGRESS", "EGRESS", "CONNECTIONS", "FILE")]
    for g in policies:
        ingress = ", ".join(_rule_words(r) for r in g.policy.ingress) or "deny all"
        egress = ", ".join(_rule_words(r) for r in g.policy.egress) or "deny all"
        rows.append((str(g.workload), g.workload.kind, ingress, egress, str(g.connections), g.path))
    widths = [min(max(len(r[i]) for r in rows), 60) for i in range(len(rows[0]))]

    def cut(text: str, width: int) -> str:
        return text if len(text) <= width else text[: width - 1] + "…"

    return "\n".join("  ".join(cut(c, w).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _rule_words(rule) -> str:
    peers = len(rule.peers) or "all"
    ports = ",".join(str(p) for p in rule.ports) or "all ports"
    return f"{peers} peer{'s' if peers != 1 else ''} on {ports}"


# --- verify --------------------------------------------------------------------------------------


def with_admin(inventory: Inventory, paths: list[str], policies: list) -> list:
    """NetworkPolicies plus the admin tiers that apply whatever the namespaces write: the cluster's
    AdminNetworkPolicies and BaselineAdminNetworkPolicy, with those of the files laid over them."""
    from netguard.inventory import load_admin_policies, merge_admin

    return list(policies) + merge_admin(inventory.admin_policies, load_admin_policies(paths) if paths else [])


def verify(args: argparse.Namespace) -> int:
    from netguard.inventory import load_policies as read_policies
    from policygen.verify import verify as run_verify

    progress = quiet if args.quiet else stderr_progress
    policies = read_policies(args.policies)
    if not policies:
        raise InputError("no NetworkPolicy in the files given: nothing to verify (give the folder `generate` wrote)",
                         source=", ".join(args.policies))
    observed = observe(args.inventory, args.flows, progress, skip_invalid=args.skip_invalid,
                       allow_empty=args.allow_empty, need_identity=True)
    if args.with_cluster_policies:
        names = {p.ref for p in policies}
        policies = [p for p in observed.inventory.policies if p.ref not in names] + policies
    policies = with_admin(observed.inventory, args.policies, policies)
    report = run_verify(observed.inventory, observed.edges, policies, least_privilege=not args.no_least_privilege)
    share = 100.0 * report.allowed_connections / report.connections if report.connections else 100.0
    print(f"policies: {len(policies)}")
    print(f"observed: {report.edges} edges, {report.connections} connections")
    print(f"allowed:  {report.allowed_edges} edges, {report.allowed_connections} connections ({share:.2f}%)")
    print(f"denied:   {len(report.denied)} edges")
    for item in report.denied[:50]:
        e = item.edge
        print(f"  DENIED {e.src} -> {e.dst} {e.port}/{e.protocol} ({e.connections} connections)")
        for reason in item.verdict.reasons():
            print(f"    {reason}")
    if len(report.denied) > 50:
        print(f"  ... and {len(report.denied) - 50} more")
    for item in report.denied_by_admin[:20]:
        e, rule = item.edge, item.verdict.denied_by_admin
        progress(f"warning: observed {e.src} -> {e.dst} {e.port}/{e.protocol} is denied by {rule}: "
                 "no NetworkPolicy can allow it")
    if not args.no_least_privilege:
        print(
            f"extra:    {len(report.extra)} (src workload, dst workload, port) triples allowed inside the cluster"
            " but never observed"
        )
        for s, d, p, proto in report.extra[:20]:
            print(f"  EXTRA {s} -> {d} {p}/{proto}")
        if report.extra_dns:
            print(
                f"dns:      {len(report.extra_dns)} DNS allowances to kube-system on port 53 beyond those observed"
                " (granted on purpose)"
            )
        if report.not_covered:
            print(f"uncovered: {report.not_covered} observed in-cluster edges where neither end is isolated by any policy")
    return 0 if report.ok else 1


# --- explain -------------------------------------------------------------------------------------


def resolve(inventory: Inventory, spec: str, what: str) -> tuple[Target, str]:
    """NS/POD, NS/WORKLOAD or an IP -> the Target policies see, and words for it."""
    if is_ip(spec):
        pod = inventory.pod_by_ip.get(spec)
        if pod is None:
            return inventory.address(spec), spec
        return inventory.target(pod.workload, spec), f"{pod.namespace}/{pod.name} ({spec})"
    namespace, sep, name = spec.partition("/")
    if not sep or not namespace or not name:
        raise InputError(f"--{what}: expected NAMESPACE/POD, NAMESPACE/WORKLOAD or an IP, got {spec!r}")
    pods = [p for p in inventory.pods if p.namespace == namespace and p.name == name]
    if pods:
        return inventory.target(pods[0].workload, pods[0].ip or None), f"pod {namespace}/{name}"
    workloads = [w for w in inventory.workloads if w.namespace == namespace and w.name == name]
    if not workloads:
        prefixed = sorted({p.workload for p in inventory.pods if p.namespace == namespace and p.name.startswith(name)})
        workloads = prefixed if len(prefixed) == 1 else []
    if not workloads:
        raise InputError(f"--{what}: no pod or workload {spec!r} in the inventory")
    workload = workloads[0]
    ip = next((p.ip for p in inventory.pods if p.workload == workload and p.ip), None)
    return inventory.target(workload, ip), f"{workload.kind} {workload}"


def parse_port(spec: str) -> tuple[int, str]:
    number, _, proto = spec.partition("/")
    proto = (proto or "TCP").upper()
    if proto not in PROTOCOLS:
        raise InputError(f"--port: unknown protocol {proto!r} (TCP, UDP or SCTP)")
    if not number.isdigit() or not 1 <= int(number) <= 65535:
        raise InputError(f"--port: expected a port 1-65535, got {number!r}")
    return int(number), proto


def explain(args: argparse.Namespace) -> int:
    from netguard.evaluate import PolicySet
    from netguard.inventory import load_policies as read_policies

    inventory = load_inventory_or_empty(args.inventory)
    policies: list[NetworkPolicy] = read_policies(args.policies) if args.policies else list(inventory.policies)
    src, src_words = resolve(inventory, args.src, "from")
    dst, dst_words = resolve(inventory, args.dst, "to")
    port, proto = parse_port(args.port)
    policy_set = PolicySet(with_admin(inventory, args.policies, policies))
    for warning in policy_set.warnings:
        stderr_progress(f"warning: {warning}")
    verdict = policy_set.evaluate(src, dst, port, proto)
    print(f"{src_words} -> {dst_words} on {port}/{proto}: {'ALLOWED' if verdict.allowed else 'DENIED'}")
    by_ref = {p.ref: p for p in policies}
    for side in (verdict.egress, verdict.ingress):
        print(f"  {side.reason()}")
        if side.isolated and not side.allowed and side.admin is None:  # say what the isolating policies do allow
            for ref in side.selecting:
                rules = by_ref[ref].rules(side.direction)
                for i, rule in enumerate(rules):
                    print(f"    {ref} {side.direction}[{i}] allows only {rule.describe(side.direction)}")
                if not rules:
                    print(f"    {ref} has no {side.direction} rules: it denies all {side.direction}")
    return 0 if verdict.allowed else 1


# --- connectivity --------------------------------------------------------------------------------


def focus_workload(inventory: Inventory, spec: str):
    """NS/NAME -> the one workload of that name in that namespace (any kind)."""
    namespace, sep, name = spec.partition("/")
    found = [w for w in inventory.workloads if w.namespace == namespace and w.name == name] if sep else []
    if len(found) != 1:
        what = "no" if not found else "more than one"
        raise InputError(f"--focus-workload: {what} workload {spec!r} in the inventory (expected NAMESPACE/NAME)")
    return found[0]


def connectivity(args: argparse.Namespace) -> int:
    from netguard.connectivity import connectivity as compute
    from netguard.inventory import load_policies as read_policies
    from policygen.connectivity import FORMATS, write_output

    inventory = load_inventory_or_empty(args.inventory)
    policies = read_policies(args.policies) if args.policies else list(inventory.policies)
    policies = with_admin(inventory, args.policies, policies)
    focus = focus_workload(inventory, args.focus_workload) if args.focus_workload else None
    cmap = compute(inventory, policies, focus=focus, exposure=args.exposure)
    for warning in cmap.warnings:
        stderr_progress(f"warning: {warning}")
    text = FORMATS[args.format](cmap, args.exposure)
    if args.output:
        write_output(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return 0


# --- diff ----------------------------------------------------------------------------------------


def diff(args: argparse.Namespace) -> int:
    from netguard.inventory import load_policies as read_policies
    from policygen.diff import diff_policies

    inventory = load_inventory_or_empty(args.inventory)
    changes = diff_policies(inventory.policies, read_policies(args.policies))
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.status] = counts.get(change.status, 0) + 1
        marker = {"added": "+", "changed": "~", "unchanged": "=", "cluster-only": "-"}[change.status]
        note = " (in the cluster, not in the folder: left as is)" if change.status == "cluster-only" else ""
        print(f"{marker} {change.ref} {change.status}{note}")
        if change.diff and not args.stat:
            sys.stdout.write(change.diff if change.diff.endswith("\n") else change.diff + "\n")
    print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no policies on either side")
    return 1 if any(c.differs for c in changes) else 0
