"""NetworkPolicy -> nftables compilation (pure): the Kubernetes semantics, checked without a kernel."""

from __future__ import annotations

import yaml

from netguard.lab.enforce import Allow, compile_policies, render
from netguard.lab.plan import build_plan
from netguard.netpol import parse_network_policy

MANIFESTS = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: shop}}
---
apiVersion: v1
kind: Namespace
metadata: {name: ops, labels: {team: ops}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web, tier: front}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 8080, name: http}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 5432, name: pg}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: probe, namespace: ops, labels: {app: web}}
spec: {containers: [{name: c, image: x}]}
"""


def plan():
    return build_plan((("m.yaml", doc) for doc in yaml.safe_load_all(MANIFESTS)), "u", 7)


def policies(text: str):
    return [parse_network_policy(doc) for doc in yaml.safe_load_all(text)]


def by_pod(compiled):
    return {r.pod.name: r for r in compiled}


def test_isolation_is_per_direction_and_only_for_selected_pods():
    p = plan()
    rules = by_pod(compile_policies(p, policies("""
kind: NetworkPolicy
metadata: {name: db-in, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 5432}]}]
""")))
    assert rules["db"].ingress_isolated and not rules["db"].egress_isolated
    assert not rules["web"].ingress_isolated and not rules["web"].egress_isolated
    web_ip = next(x.ip for x in p.pods if x.name == "web")
    # podSelector without namespaceSelector: the policy's namespace only (the ops pod labelled app=web is not a peer)
    assert rules["db"].ingress == [Allow(web_ip, (), "TCP", (5432, 5432))]


def test_empty_rule_list_denies_and_empty_peer_list_allows_everyone():
    rules = by_pod(compile_policies(plan(), policies("""
kind: NetworkPolicy
metadata: {name: deny, namespace: shop}
spec: {podSelector: {matchLabels: {app: db}}, policyTypes: [Ingress, Egress]}
---
kind: NetworkPolicy
metadata: {name: web-open, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{ports: [{port: http}]}]
""")))
    assert rules["db"].ingress_isolated and rules["db"].egress_isolated
    assert rules["db"].ingress == [] and rules["db"].egress == []
    assert rules["web"].ingress == [Allow("", (), "TCP", (8080, 8080))]  # named port resolved on the pod itself


def test_namespace_and_pod_selectors_in_one_peer_are_anded():
    p = plan()
    rules = by_pod(compile_policies(p, policies("""
kind: NetworkPolicy
metadata: {name: web-in, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: ops}}, podSelector: {matchLabels: {app: web}}}]
""")))
    probe_ip = next(x.ip for x in p.pods if x.name == "probe")
    assert rules["web"].ingress == [Allow(probe_ip)]


def test_egress_named_ports_resolve_on_the_destination_and_ip_blocks_keep_excepts():
    p = plan()
    rules = by_pod(compile_policies(p, policies("""
kind: NetworkPolicy
metadata: {name: web-out, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: db}}}]
    ports: [{port: pg}]
  - to: [{ipBlock: {cidr: 192.0.2.0/24, except: [192.0.2.128/25]}}]
    ports: [{port: 443, protocol: TCP}, {port: 1000, endPort: 2000, protocol: UDP}]
""")))
    db_ip = next(x.ip for x in p.pods if x.name == "db")
    assert rules["web"].egress_isolated and not rules["web"].ingress_isolated
    assert set(rules["web"].egress) == {
        Allow(db_ip, (), "TCP", (5432, 5432)),
        Allow("192.0.2.0/24", ("192.0.2.128/25",), "TCP", (443, 443)),
        Allow("192.0.2.0/24", ("192.0.2.128/25",), "UDP", (1000, 2000)),
    }
    script = render(p, compile_policies(p, policies("""
kind: NetworkPolicy
metadata: {name: web-out, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 192.0.2.0/24, except: [192.0.2.128/25]}}], ports: [{port: 1000, endPort: 2000, protocol: UDP}]}]
""")))
    assert "ip daddr 192.0.2.0/24 ip daddr != { 192.0.2.128/25 } udp dport 1000-2000 return" in script
    assert "ct state established,related accept" in script
    assert script.count("counter drop") == 1  # one isolated direction of one pod


def test_policies_of_other_namespaces_do_not_select():
    rules = by_pod(compile_policies(plan(), policies("""
kind: NetworkPolicy
metadata: {name: all, namespace: ops}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
""")))
    assert rules["probe"].ingress_isolated and rules["probe"].egress_isolated
    assert not rules["web"].ingress_isolated and not rules["db"].egress_isolated
