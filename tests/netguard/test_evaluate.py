"""The semantics engine against hand-checked cases, one or more per rule of the Kubernetes spec."""

import pytest

from netguard.evaluate import PolicySet
from netguard.netpol import Target, parse_network_policy

NS_LABELS = {
    "prod": {"kubernetes.io/metadata.name": "prod", "env": "prod"},
    "dev": {"kubernetes.io/metadata.name": "dev", "env": "dev"},
    "mon": {"kubernetes.io/metadata.name": "mon", "team": "ops"},
}


def pod(ns, ip, ports=None, **labels):
    return Target(ip=ip, namespace=ns, labels=labels, namespace_labels=NS_LABELS[ns], named_ports=ports or {})


WEB = pod("prod", "10.244.0.10", {("http", "TCP"): 8080}, app="web", tier="front")
API = pod("prod", "10.244.0.11", {("http", "TCP"): 9090, ("grpc", "TCP"): 9000}, app="api", tier="back")
DB = pod("prod", "10.244.0.12", {}, app="db", tier="back")
DEV_WEB = pod("dev", "10.244.1.10", {}, app="web")
MON = pod("mon", "10.244.2.10", {}, app="prometheus")
OUTSIDE = Target(ip="203.0.113.9")


def policy(name, selector, *, ns="prod", ingress=None, egress=None, types=None):
    spec = {"podSelector": selector}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    if types is not None:
        spec["policyTypes"] = types
    return parse_network_policy({"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec})


DENY_INGRESS_API = policy("deny-api", {"matchLabels": {"app": "api"}}, types=["Ingress"])
DENY_EGRESS_WEB = policy("deny-web-out", {"matchLabels": {"app": "web"}}, types=["Egress"])

CASES = [
    # (id, policies, src, dst, port, protocol, allowed)
    ("no policy selects either pod: allowed", [], WEB, API, 9090, "TCP", True),
    ("ingress isolation with no rules denies ingress", [DENY_INGRESS_API], WEB, API, 9090, "TCP", False),
    ("ingress isolation does not isolate egress", [DENY_INGRESS_API], API, DB, 5432, "TCP", True),
    ("egress isolation denies egress", [DENY_EGRESS_WEB], WEB, API, 9090, "TCP", False),
    ("egress isolation does not isolate ingress", [DENY_EGRESS_WEB], API, WEB, 8080, "TCP", True),
    ("a policy selecting another pod does not isolate this one", [DENY_INGRESS_API], API, WEB, 8080, "TCP", True),
    ("empty from allows every source",
     [policy("all", {"matchLabels": {"app": "api"}}, ingress=[{}])], MON, API, 1, "UDP", True),
    ("empty from with ports allows every source on those ports only",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"ports": [{"port": 9090}]}])], OUTSIDE, API, 9091, "TCP", False),
    ("podSelector alone means the policy's namespace",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}])],
     DEV_WEB, API, 9090, "TCP", False),
    ("podSelector alone matches in the policy's namespace",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}])],
     WEB, API, 9090, "TCP", True),
    ("namespaceSelector alone: every pod of matching namespaces",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "ops"}}}]}])],
     MON, API, 9090, "TCP", True),
    ("namespaceSelector {} matches every namespace",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"from": [{"namespaceSelector": {}}]}])], DEV_WEB, API, 1, "TCP", True),
    ("namespaceSelector {} does not match an IP outside the pods",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"from": [{"namespaceSelector": {}}]}])], OUTSIDE, API, 1, "TCP", False),
    ("namespaceSelector AND podSelector in one peer: both must match",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"from": [
         {"namespaceSelector": {"matchLabels": {"env": "dev"}}, "podSelector": {"matchLabels": {"app": "prometheus"}}}]}])],
     MON, API, 9090, "TCP", False),
    ("namespaceSelector AND podSelector: both match",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"from": [
         {"namespaceSelector": {"matchLabels": {"env": "dev"}}, "podSelector": {"matchLabels": {"app": "web"}}}]}])],
     DEV_WEB, API, 9090, "TCP", True),
    ("two peers are an OR",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"from": [
         {"namespaceSelector": {"matchLabels": {"env": "dev"}}}, {"podSelector": {"matchLabels": {"app": "prometheus"}}}]}])],
     DEV_WEB, API, 9090, "TCP", True),
    ("ipBlock allows an address inside the CIDR",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"from": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}])],
     OUTSIDE, API, 9090, "TCP", True),
    ("ipBlock except carves an address out",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"from": [
         {"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.8/30"]}}]}])], OUTSIDE, API, 9090, "TCP", False),
    ("named port resolves against the destination pod",
     [policy("p", {"matchLabels": {"tier": "back"}}, ingress=[{"ports": [{"port": "http"}]}])], WEB, API, 9090, "TCP", True),
    ("named port: another pod's number for the name does not count",
     [policy("p", {"matchLabels": {"tier": "back"}}, ingress=[{"ports": [{"port": "http"}]}])], WEB, API, 8080, "TCP", False),
    ("named port the destination does not have matches nothing",
     [policy("p", {"matchLabels": {"tier": "back"}}, ingress=[{"ports": [{"port": "http"}]}])], WEB, DB, 9090, "TCP", False),
    ("egress named port resolves against the destination pod",
     [policy("p", {"matchLabels": {"app": "web"}}, egress=[{"ports": [{"port": "grpc"}]}])], WEB, API, 9000, "TCP", True),
    ("endPort: inside the range",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"ports": [{"port": 9000, "endPort": 9100}]}])], WEB, API, 9100, "TCP", True),
    ("endPort: past the range",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"ports": [{"port": 9000, "endPort": 9100}]}])], WEB, API, 9101, "TCP", False),
    ("protocol defaults to TCP: UDP on the same port is denied",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"ports": [{"port": 53}]}])], WEB, API, 53, "UDP", False),
    ("SCTP is its own protocol",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"ports": [{"protocol": "SCTP", "port": 3868}]}])], WEB, API, 3868, "SCTP", True),
    ("the union of policies: the second one allows",
     [policy("a", {"matchLabels": {"app": "api"}}, ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "db"}}}]}]),
      policy("b", {"matchLabels": {"tier": "back"}}, ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}])],
     WEB, API, 9090, "TCP", True),
    ("both ends must allow: ingress allows, egress does not",
     [policy("in", {"matchLabels": {"app": "api"}}, ingress=[{}]), DENY_EGRESS_WEB], WEB, API, 9090, "TCP", False),
    ("both ends allow",
     [policy("in", {"matchLabels": {"app": "api"}}, ingress=[{}]),
      policy("out", {"matchLabels": {"app": "web"}}, egress=[{"to": [{"podSelector": {"matchLabels": {"app": "api"}}}]}])],
     WEB, API, 9090, "TCP", True),
    ("policyTypes default: an egress section makes it an egress policy",
     [policy("p", {"matchLabels": {"app": "web"}}, egress=[{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}]}])],
     WEB, API, 9090, "TCP", False),
    ("policyTypes default: without an egress section it is ingress only",
     [policy("p", {"matchLabels": {"app": "web"}}, ingress=[])], WEB, API, 9090, "TCP", True),
    ("policyTypes [Egress] ignores the ingress section",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[], types=["Egress"])], WEB, API, 9090, "TCP", True),
    ("empty podSelector selects every pod of the namespace",
     [policy("p", {}, types=["Ingress"])], MON, DB, 5432, "TCP", False),
    ("a policy in another namespace does not select",
     [policy("p", {}, ns="dev", types=["Ingress"])], MON, DB, 5432, "TCP", True),
    ("matchExpressions In",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"from": [{"podSelector": {"matchExpressions": [
         {"key": "app", "operator": "In", "values": ["web", "db"]}]}}]}])], WEB, API, 1, "TCP", True),
    ("matchExpressions NotIn",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"from": [{"podSelector": {"matchExpressions": [
         {"key": "app", "operator": "NotIn", "values": ["web"]}]}}]}])], WEB, API, 1, "TCP", False),
    ("matchExpressions Exists / DoesNotExist",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"from": [{"podSelector": {"matchExpressions": [
         {"key": "tier", "operator": "Exists"}, {"key": "canary", "operator": "DoesNotExist"}]}}]}])], DB, API, 1, "TCP", True),
    ("egress to an address outside the pods: only the source's egress applies",
     [policy("p", {"matchLabels": {"app": "web"}}, egress=[{"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"port": 443}]}])],
     WEB, OUTSIDE, 443, "TCP", True),
    ("ingress from an address outside the pods needs an ipBlock",
     [policy("p", {"matchLabels": {"app": "api"}}, ingress=[{"from": [{"podSelector": {}}]}])], OUTSIDE, API, 9090, "TCP", False),
]


@pytest.mark.parametrize(("policies", "src", "dst", "port", "protocol", "allowed"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_semantics_agree_with_hand_checked_cases(policies, src, dst, port, protocol, allowed):
    assert PolicySet(policies).evaluate(src, dst, port, protocol).allowed is allowed


def test_verdict_names_the_rule_that_allows():
    policies = [
        policy("a", {"matchLabels": {"app": "api"}}, ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "db"}}}]},
                                                             {"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]),
    ]
    verdict = PolicySet(policies).evaluate(WEB, API, 9090)
    assert verdict.allowed
    assert [str(r) for r in verdict.ingress.allowed_by] == ["prod/a ingress[1]"]
    assert verdict.egress.reason() == "egress: no policy selects the pod for egress: allowed"


def test_verdict_says_the_pod_is_isolated_and_no_rule_matches():
    verdict = PolicySet([DENY_INGRESS_API]).evaluate(WEB, API, 9090)
    assert not verdict.allowed
    assert verdict.ingress.reason() == "ingress: isolated by prod/deny-api and no ingress rule of it matches: denied"


def test_the_decision_is_typed_and_tells_not_covered_from_allowed():
    from netguard.evaluate import Decision, Direction

    open_verdict = PolicySet([]).evaluate(WEB, API, 9090)
    assert open_verdict.decision is Decision.NOT_COVERED and open_verdict.allowed
    denied = PolicySet([DENY_INGRESS_API]).evaluate(WEB, API, 9090)
    assert denied.decision is Decision.DENIED and denied.ingress.direction is Direction.INGRESS
    allowed = PolicySet([DENY_EGRESS_WEB, policy("out", {"matchLabels": {"app": "web"}}, egress=[{}])]).evaluate(WEB, API, 1)
    assert allowed.decision is Decision.ALLOWED and str(allowed.egress.allowed_by[0]) == "prod/out egress[0]"


@pytest.mark.parametrize(("policies", "src", "dst", "port", "protocol", "allowed"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_port_set_answers_agree_with_one_port_answers(policies, src, dst, port, protocol, allowed):
    policy_set = PolicySet(policies)
    ports = policy_set.allowed_ports(src, dst)
    assert ports.contains(port, protocol) is allowed
    for probe in (1, port - 1, port + 1, 65535):  # the neighbours of the case's port agree too
        for proto in ("TCP", "UDP", "SCTP"):
            if 1 <= probe <= 65535:
                assert ports.contains(probe, proto) is policy_set.evaluate(src, dst, probe, proto).allowed
