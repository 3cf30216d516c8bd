"""The semantics table: NetworkPolicy rules from the Kubernetes documentation (concepts/services-networking/
network-policies) and AdminNetworkPolicy / BaselineAdminNetworkPolicy rules from the API reference
(network-policy-api.sigs.k8s.io, policy.networking.k8s.io/v1alpha1), one case or more per rule, on one
small world. test_semantics_table.py checks each case through `policy explain`, through the connectivity
map and through the lab's nftables compiler (and, as root, a real kernel for a subset)."""

from __future__ import annotations

from dataclasses import dataclass

WORLD = """
apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {env: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {env: dev}}
---
apiVersion: v1
kind: Namespace
metadata: {name: mon, labels: {team: ops}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: prod, labels: {app: web, tier: front}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 8080, name: http}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: prod, labels: {app: api, tier: back}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 9090, name: http}, {containerPort: 9000, name: grpc}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: prod, labels: {app: db, tier: back}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 5432, name: pg}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: dev, labels: {app: web}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 8080, name: http}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: prom, namespace: mon, labels: {app: prometheus}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 9100, name: metrics}]}]}
---
apiVersion: v1
kind: Node
metadata: {name: cp-1, labels: {node-role.kubernetes.io/control-plane: ""}}
status: {addresses: [{type: InternalIP, address: 192.0.2.10}]}
"""
OUTSIDE = "203.0.113.9"
NODE = "192.0.2.10"


@dataclass(frozen=True)
class Case:
    id: str
    policies: str  # YAML documents
    src: str  # namespace/pod or an address
    dst: str
    port: int
    protocol: str
    allowed: bool
    kernel: bool = False  # also proven in the lab's kernel dataplane (root)


def np(name: str, ns: str, spec: str) -> str:
    return f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {spec}\n---\n"


def anp(name: str, priority: int, spec: str) -> str:
    return (f"apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {{name: {name}}}\n"
            f"spec: {{priority: {priority}, {spec}}}\n---\n")


def banp(spec: str) -> str:
    return (f"apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\n"
            f"metadata: {{name: default}}\nspec: {{{spec}}}\n---\n")


API_IN_DENY = np("api-deny", "prod", "{podSelector: {matchLabels: {app: api}}, policyTypes: [Ingress]}")
WEB_OUT_DENY = np("web-deny", "prod", "{podSelector: {matchLabels: {app: web}}, policyTypes: [Egress]}")
API_FROM_WEB = np("api-from-web", "prod",
                  "{podSelector: {matchLabels: {app: api}}, ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]}")
ALL_PROD = "subject: {namespaces: {matchLabels: {env: prod}}}"

CASES = [
    # --- NetworkPolicy (kubernetes.io/docs/concepts/services-networking/network-policies) ---------------
    Case("np: no policy selects either pod: allowed", "", "prod/web", "prod/api", 9090, "TCP", True, kernel=True),
    Case("np: a pod selected for ingress with no rules denies ingress", API_IN_DENY, "prod/web", "prod/api", 9090, "TCP",
         False, kernel=True),
    Case("np: ingress isolation does not isolate egress", API_IN_DENY, "prod/api", "prod/db", 5432, "TCP", True),
    Case("np: egress isolation denies egress", WEB_OUT_DENY, "prod/web", "prod/api", 9090, "TCP", False, kernel=True),
    Case("np: egress isolation does not isolate ingress", WEB_OUT_DENY, "prod/api", "prod/web", 8080, "TCP", True),
    Case("np: podSelector alone means the policy's namespace", API_FROM_WEB, "dev/web", "prod/api", 9090, "TCP", False,
         kernel=True),
    Case("np: podSelector alone matches in the policy's namespace", API_FROM_WEB, "prod/web", "prod/api", 9090, "TCP", True,
         kernel=True),
    Case("np: namespaceSelector alone: every pod of matching namespaces",
         np("p", "prod", "{podSelector: {matchLabels: {app: api}}, ingress: [{from: [{namespaceSelector: {matchLabels: "
                         "{team: ops}}}]}]}"), "mon/prom", "prod/api", 9090, "TCP", True),
    Case("np: namespaceSelector and podSelector in one element are ANDed",
         np("p", "prod", "{podSelector: {matchLabels: {app: api}}, ingress: [{from: [{namespaceSelector: {matchLabels: "
                         "{env: dev}}, podSelector: {matchLabels: {app: prometheus}}}]}]}"), "mon/prom", "prod/api", 9090,
         "TCP", False),
    Case("np: two elements are ORed",
         np("p", "prod", "{podSelector: {matchLabels: {app: api}}, ingress: [{from: [{namespaceSelector: {matchLabels: "
                         "{env: dev}}}, {podSelector: {matchLabels: {app: db}}}]}]}"), "dev/web", "prod/api", 9090, "TCP",
         True, kernel=True),
    Case("np: an empty rule allows every source on every port",
         np("p", "prod", "{podSelector: {matchLabels: {app: api}}, ingress: [{}]}"), "mon/prom", "prod/api", 1234, "UDP", True),
    Case("np: ipBlock allows an outside address in the CIDR",
         np("p", "prod", "{podSelector: {matchLabels: {app: api}}, ingress: [{from: [{ipBlock: {cidr: 203.0.113.0/24}}]}]}"),
         OUTSIDE, "prod/api", 9090, "TCP", True),
    Case("np: ipBlock except carves addresses out",
         np("p", "prod", "{podSelector: {matchLabels: {app: api}}, ingress: [{from: [{ipBlock: {cidr: 203.0.113.0/24, "
                         "except: [203.0.113.8/30]}}]}]}"), OUTSIDE, "prod/api", 9090, "TCP", False),
    Case("np: egress to an outside address needs only the source's egress",
         np("p", "prod", "{podSelector: {matchLabels: {app: web}}, egress: [{to: [{ipBlock: {cidr: 203.0.113.0/24}}], "
                         "ports: [{port: 443}]}]}"), "prod/web", OUTSIDE, 443, "TCP", True),
    Case("np: a named port resolves on the destination pod",
         np("p", "prod", "{podSelector: {matchLabels: {tier: back}}, ingress: [{ports: [{port: http}]}]}"),
         "prod/web", "prod/api", 9090, "TCP", True, kernel=True),
    Case("np: a named port the destination does not have matches nothing",
         np("p", "prod", "{podSelector: {matchLabels: {tier: back}}, ingress: [{ports: [{port: http}]}]}"),
         "prod/web", "prod/db", 5432, "TCP", False),
    Case("np: endPort makes a range (inside)",
         np("p", "prod", "{podSelector: {matchLabels: {app: api}}, ingress: [{ports: [{port: 9000, endPort: 9100}]}]}"),
         "prod/web", "prod/api", 9090, "TCP", True, kernel=True),
    Case("np: endPort makes a range (past it)",
         np("p", "prod", "{podSelector: {matchLabels: {app: api}}, ingress: [{ports: [{port: 9000, endPort: 9050}]}]}"),
         "prod/web", "prod/api", 9090, "TCP", False, kernel=True),
    Case("np: protocol defaults to TCP",
         np("p", "prod", "{podSelector: {matchLabels: {app: api}}, ingress: [{ports: [{port: 9090}]}]}"),
         "prod/web", "prod/api", 9090, "UDP", False),
    Case("np: the union of the policies selecting a pod",
         API_IN_DENY + np("b", "prod", "{podSelector: {matchLabels: {tier: back}}, ingress: [{from: [{podSelector: {}}]}]}"),
         "prod/web", "prod/api", 9090, "TCP", True),
    Case("np: a connection needs egress at the source and ingress at the destination",
         np("in", "prod", "{podSelector: {matchLabels: {app: api}}, ingress: [{}]}") + WEB_OUT_DENY,
         "prod/web", "prod/api", 9090, "TCP", False),
    Case("np: policyTypes default: an egress section makes it an egress policy",
         np("p", "prod", "{podSelector: {matchLabels: {app: web}}, egress: [{to: [{podSelector: {matchLabels: {app: db}}}]}]}"),
         "prod/web", "prod/api", 9090, "TCP", False, kernel=True),
    Case("np: a policy of another namespace does not select",
         np("p", "dev", "{podSelector: {}, policyTypes: [Ingress]}"), "mon/prom", "prod/db", 5432, "TCP", True),
    # --- AdminNetworkPolicy / BaselineAdminNetworkPolicy (network-policy-api.sigs.k8s.io, v1alpha1) --------
    Case("anp: Deny wins over a NetworkPolicy that allows",
         API_FROM_WEB + anp("deny-web-api", 10, ALL_PROD + ", ingress: [{name: no-web, action: Deny, from: [{pods: "
                            "{namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}}]}]"),
         "prod/web", "prod/api", 9090, "TCP", False, kernel=True),
    Case("anp: Allow wins over a NetworkPolicy that isolates",
         API_IN_DENY + anp("allow-mon", 10, ALL_PROD + ", ingress: [{name: scrape, action: Allow, from: [{namespaces: "
                           "{matchLabels: {team: ops}}}]}]"), "mon/prom", "prod/api", 9090, "TCP", True, kernel=True),
    Case("anp: Pass hands the decision to the NetworkPolicies",
         API_IN_DENY + anp("pass", 10, ALL_PROD + ", ingress: [{name: pass-all, action: Pass, from: [{namespaces: {}}]}]"),
         "mon/prom", "prod/api", 9090, "TCP", False, kernel=True),
    Case("anp: Pass skips lower-priority ANPs",
         anp("pass", 1, ALL_PROD + ", ingress: [{action: Pass, from: [{namespaces: {}}]}]")
         + anp("deny", 2, ALL_PROD + ", ingress: [{action: Deny, from: [{namespaces: {}}]}]"),
         "mon/prom", "prod/api", 9090, "TCP", True, kernel=True),
    Case("anp: Pass, no NetworkPolicy isolates: the BANP decides",
         anp("pass", 10, ALL_PROD + ", ingress: [{action: Pass, from: [{namespaces: {}}]}]")
         + banp(ALL_PROD + ", ingress: [{name: baseline-deny, action: Deny, from: [{namespaces: {}}]}]"),
         "mon/prom", "prod/api", 9090, "TCP", False, kernel=True),
    Case("anp: the lower priority number wins",
         anp("allow", 10, ALL_PROD + ", ingress: [{action: Allow, from: [{namespaces: {}}]}]")
         + anp("deny", 20, ALL_PROD + ", ingress: [{action: Deny, from: [{namespaces: {}}]}]"),
         "dev/web", "prod/api", 9090, "TCP", True, kernel=True),
    Case("anp: inside one ANP the first matching rule wins (denied port)",
         anp("order", 10, ALL_PROD + ", ingress: [{action: Deny, from: [{namespaces: {}}], ports: [{portNumber: "
                                     "{protocol: TCP, port: 9090}}]}, {action: Allow, from: [{namespaces: {}}]}]"),
         "dev/web", "prod/api", 9090, "TCP", False, kernel=True),
    Case("anp: inside one ANP the first matching rule wins (other port)",
         API_IN_DENY + anp("order", 10, ALL_PROD + ", ingress: [{action: Deny, from: [{namespaces: {}}], ports: "
                                     "[{portNumber: {protocol: TCP, port: 9090}}]}, {action: Allow, from: [{namespaces: {}}]}]"),
         "dev/web", "prod/api", 9000, "TCP", True, kernel=True),
    Case("anp: the subject's namespaces selector leaves other namespaces alone",
         anp("dev-only", 10, "subject: {namespaces: {matchLabels: {env: dev}}}, ingress: [{action: Deny, from: "
                             "[{namespaces: {}}]}]"), "mon/prom", "prod/api", 9090, "TCP", True),
    Case("anp: a pods subject ANDs namespaceSelector and podSelector",
         anp("db-only", 10, "subject: {pods: {namespaceSelector: {matchLabels: {env: prod}}, podSelector: {matchLabels: "
                            "{app: db}}}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]"),
         "prod/web", "prod/api", 9090, "TCP", True),
    Case("anp: an ANP with no egress rules does not touch egress",
         anp("in-only", 10, ALL_PROD + ", ingress: [{action: Deny, from: [{namespaces: {matchLabels: {team: ops}}}]}]"),
         "prod/web", "mon/prom", 9100, "TCP", True),
    Case("anp: egress networks peer (CIDR) denies an outside address",
         anp("no-doc-net", 10, ALL_PROD + ", egress: [{action: Deny, to: [{networks: [203.0.113.0/24]}]}]"),
         "prod/web", OUTSIDE, 443, "TCP", False),
    Case("anp: egress nodes peer selects nodes by label",
         anp("no-cp", 10, ALL_PROD + ", egress: [{action: Deny, to: [{nodes: {matchExpressions: [{key: "
                          "node-role.kubernetes.io/control-plane, operator: Exists}]}}]}]"),
         "prod/web", NODE, 6443, "TCP", False),
    Case("anp: ingress peers are pods: an outside address is not matched",
         anp("deny-all-in", 10, ALL_PROD + ", ingress: [{action: Deny, from: [{namespaces: {}}]}]"),
         OUTSIDE, "prod/api", 9090, "TCP", True),
    Case("anp: namedPort resolves on the destination pod",
         anp("named", 10, ALL_PROD + ", ingress: [{action: Deny, from: [{namespaces: {}}], ports: [{namedPort: grpc}]}]"),
         "dev/web", "prod/api", 9000, "TCP", False, kernel=True),
    Case("anp: portRange is inclusive",
         anp("range", 10, ALL_PROD + ", egress: [{action: Deny, to: [{namespaces: {}}], ports: [{portRange: "
                          "{protocol: TCP, start: 9000, end: 9090}}]}]"), "prod/web", "prod/api", 9090, "TCP", False,
         kernel=True),
    Case("anp: an admin Allow at one end does not open the other end",
         WEB_OUT_DENY + anp("allow-in", 10, ALL_PROD + ", ingress: [{action: Allow, from: [{namespaces: {}}]}]"),
         "prod/web", "prod/api", 9090, "TCP", False),
    Case("banp: Deny applies when no NetworkPolicy isolates the pod",
         banp(ALL_PROD + ", ingress: [{action: Deny, from: [{namespaces: {matchLabels: {env: dev}}}]}]"),
         "dev/web", "prod/api", 9090, "TCP", False, kernel=True),
    Case("banp: a NetworkPolicy that isolates the pod takes precedence",
         np("api-from-web-and-dev", "prod", "{podSelector: {matchLabels: {app: api}}, ingress: [{from: [{podSelector: "
                                            "{matchLabels: {app: web}}}, {namespaceSelector: {matchLabels: {env: dev}}}]}]}")
         + banp(ALL_PROD + ", ingress: [{action: Deny, from: [{namespaces: {matchLabels: {env: dev}}}]}]"),
         "dev/web", "prod/api", 9090, "TCP", True, kernel=True),
    Case("banp: Allow lets through what it names",
         banp(ALL_PROD + ", ingress: [{action: Allow, from: [{namespaces: {matchLabels: {team: ops}}}]}, "
                         "{action: Deny, from: [{namespaces: {}}]}]"), "mon/prom", "prod/api", 9090, "TCP", True,
         kernel=True),
    Case("banp: what no rule matches is allowed",
         banp(ALL_PROD + ", ingress: [{action: Deny, from: [{namespaces: {matchLabels: {env: dev}}}]}]"),
         "mon/prom", "prod/api", 9090, "TCP", True),
]
