"""`--format cilium`: the same least-privilege rules as CiliumNetworkPolicy (cilium.io/v2).

Differences from the NetworkPolicy output, on purpose: default deny is explicit
(`enableDefaultDeny`, Cilium >= 1.15); node and API-server peers become the entities `host`/
`remote-node` and `kube-apiserver` (Cilium identifies them better than by address); DNS egress goes
through Cilium's DNS proxy (`rules.dns`), which is what makes `toFQDNs` possible: an outside peer
whose every observed edge carries DNS names (Hubble's `destination_names`, native `dst_names`) is
allowed by those names (`toFQDNs`, in a rule of its own: Cilium refuses to combine it with other
peers in one rule) on the same ports, instead of by address. A workload with such a rule always
gets the DNS rule; with `--dns never` its named peers stay addresses.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from netguard.inventory import NAMESPACE_NAME_LABEL
from netguard.model import Edge, EndpointKind
from netguard.netpol import Direction, PolicyPeer, Rule
from netguard.selectors import Selector
from policygen.render import dump_yaml
from policygen.synth import DNS_PORTS, DNS_TITLE, GeneratedPolicy, Justification

POD_NAMESPACE = "k8s:io.kubernetes.pod.namespace"


def _selector(selector: Selector, namespace: str | None = None) -> dict[str, Any]:
    out = selector.to_dict()
    if namespace is not None:
        out.setdefault("matchLabels", {})[POD_NAMESPACE] = namespace
    return out


def _peer_namespace(peer: PolicyPeer, policy_namespace: str) -> str | None:
    if peer.namespace_selector is None:
        return policy_namespace
    labels = dict(peer.namespace_selector.match_labels)
    return labels.get(NAMESPACE_NAME_LABEL)


def _rules(rule: Rule, why: Justification, direction: Direction, namespace: str) -> list[dict[str, Any]]:
    """One Cilium rule per kind of peer (entities, endpoints, CIDRs), each on the rule's ports:
    Cilium's validation refuses a rule that mixes peer types."""
    kinds = {e.src.kind if direction is Direction.INGRESS else e.dst.kind for e in why.edges}
    prefix = direction.peers_key
    endpoints, cidrs, entities = [], [], []
    for peer in rule.peers:
        if peer.ip_block is not None:
            cidrs.append({"cidr": str(peer.ip_block.cidr)})
        else:
            endpoints.append(_selector(peer.pod_selector or Selector(), _peer_namespace(peer, namespace)))
    if EndpointKind.NODE in kinds:
        entities.extend(["host", "remote-node"])
    if EndpointKind.APISERVER in kinds:
        entities.append("kube-apiserver")
    if entities:  # those peers are better named by entity than by address
        addresses = {
            e.src.address if direction is Direction.INGRESS else e.dst.address
            for e in why.edges
            if (e.src if direction is Direction.INGRESS else e.dst).kind in (EndpointKind.NODE, EndpointKind.APISERVER)
        }
        cidrs = [c for c in cidrs if c["cidr"].split("/")[0] not in addresses]
    ports = _to_ports(rule)
    out = [
        {f"{prefix}{kind}": peers, **ports}
        for kind, peers in (("Entities", entities), ("Endpoints", endpoints), ("CIDRSet", cidrs))
        if peers
    ]
    return out or [dict(ports)]  # no peers: every peer, on the ports


def _to_ports(rule: Rule) -> dict[str, Any]:
    ports = [
        {"port": str(p.port), "protocol": p.protocol, **({"endPort": p.end_port} if p.end_port is not None else {})}
        for p in rule.ports
    ]
    if not ports:
        return {}
    to_ports: dict[str, Any] = {"ports": ports}
    if rule.ports == DNS_PORTS:
        to_ports["rules"] = {"dns": [{"matchPattern": "*"}]}
    return {"toPorts": [to_ports]}


def fqdn_names(peer: PolicyPeer, edges: tuple[Edge, ...]) -> tuple[str, ...]:
    """The DNS names of an egress ipBlock peer when every edge it came from is to the world and
    carries all its names (none dropped by the bound), sorted; else () and the address stays."""
    if peer.ip_block is None:
        return ()
    cidr = peer.ip_block.cidr
    mine = [e for e in edges if e.dst.address and ipaddress.ip_address(e.dst.address) in cidr]
    if not mine or any(e.dst.kind is not EndpointKind.WORLD or not e.dst_names or e.names_overflow for e in mine):
        return ()
    return tuple(sorted({n for e in mine for n in e.dst_names}))


def _egress_rules(rule: Rule, why: Justification, namespace: str, fqdn: bool) -> list[dict[str, Any]]:
    """One egress rule, or two: the peers by address or selector, then the named world peers by
    `toFQDNs` on the same ports (Cilium rejects toFQDNs combined with other peers in one rule)."""
    named = {peer: fqdn_names(peer, why.edges) for peer in rule.peers} if fqdn else {}
    names = sorted({n for found in named.values() for n in found})
    if not names:
        return _rules(rule, why, Direction.EGRESS, namespace)
    rest = tuple(p for p in rule.peers if not named[p])
    out = _rules(Rule(rest, rule.ports), why, Direction.EGRESS, namespace) if rest else []
    out.append({"toFQDNs": [{"matchName": n} for n in names], **_to_ports(rule)})
    return out


def _cilium(generated: GeneratedPolicy) -> tuple[dict[str, Any], list[str]]:
    """The CiliumNetworkPolicy and the notes only this format has."""
    policy = generated.policy
    notes: list[str] = []
    has_dns = any(w.title.startswith(DNS_TITLE) for w in generated.egress_why)
    fqdn = has_dns or generated.fqdn_dns is not None
    egress: list[dict[str, Any]] = []
    for r, w in zip(policy.egress, generated.egress_why, strict=True):
        egress.extend(_egress_rules(r, w, policy.namespace, fqdn))
    has_fqdn = any("toFQDNs" in r for r in egress)
    if has_fqdn and not has_dns and generated.fqdn_dns is not None:
        dns_rule, dns_why = generated.fqdn_dns
        egress.extend(_rules(dns_rule, dns_why, Direction.EGRESS, policy.namespace))
        notes.append(
            "DNS egress to kube-dns (with rules.dns) is allowed although no lookup was observed: toFQDNs rules "
            "work only when Cilium's DNS proxy sees the lookups that resolve the names"
        )
    if not fqdn and any(fqdn_names(p, w.edges) for r, w in zip(policy.egress, generated.egress_why, strict=True)
                        for p in r.peers):
        notes.append("--dns never: outside peers with DNS names stay addresses (toFQDNs needs DNS through Cilium's proxy)")
    doc = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": policy.to_dict()["metadata"],
        "spec": {
            "endpointSelector": _selector(policy.pod_selector),
            "enableDefaultDeny": {"ingress": True, "egress": True},
            "ingress": [
                c
                for r, w in zip(policy.ingress, generated.ingress_why, strict=True)
                for c in _rules(r, w, Direction.INGRESS, policy.namespace)
            ],
            "egress": egress,
        },
    }
    return doc, notes


def cilium_policy(generated: GeneratedPolicy) -> dict[str, Any]:
    return _cilium(generated)[0]


def render_cilium(generated: GeneratedPolicy) -> str:
    w = generated.workload
    doc, notes = _cilium(generated)
    header = (
        f"# Generated by netguard for {w.kind} {w} from {generated.connections} observed connections "
        "(CiliumNetworkPolicy; default deny both ways).\n"
    )
    return header + "".join(f"# note: {note}\n" for note in notes) + dump_yaml(doc)
