"""Properties that must hold for every input: generated policies allow every observed flow, and no
other (src workload, dst workload, port) inside the cluster."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netguard.enrich import aggregate
from netguard.inventory import Inventory
from netguard.model import Flow
from policygen.synth import SynthesisOptions, synthesize
from policygen.verify import verify

PROTOCOLS = ["TCP", "UDP", "SCTP"]


@st.composite
def clusters(draw):
    n = draw(st.integers(1, 8))
    objects = []
    pods = []
    for i in range(n):
        ns = draw(st.sampled_from(["ns0", "ns1", "ns2"]))
        tier = draw(st.sampled_from(["front", "back"]))
        # Some Deployments select on a label their neighbours share: synthesis must tighten them.
        selector = {"tier": tier} if draw(st.booleans()) else {"app": f"app{i}"}
        labels = {"app": f"app{i}", "tier": tier}
        ports = draw(st.lists(st.tuples(st.integers(1, 65535), st.sampled_from(PROTOCOLS)), min_size=1, max_size=3, unique=True))
        kind = draw(st.sampled_from(["Deployment", "StatefulSet", "DaemonSet"]))
        container = {"name": "c", "ports": [{"containerPort": p, "protocol": proto, "name": f"p{j}x"} for j, (p, proto) in enumerate(ports)]}
        objects.append({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": f"w{i}", "namespace": ns},
                        "spec": {"selector": {"matchLabels": selector},
                                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}})
        for r in range(draw(st.integers(1, 2))):
            ip = f"10.244.{i}.{r + 1}"
            objects.append({"apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": f"w{i}-{r}", "namespace": ns, "labels": labels,
                                         "ownerReferences": [{"kind": kind, "name": f"w{i}", "controller": True}]},
                            "spec": {"containers": [container]}, "status": {"podIP": ip}})
            pods.append((ip, ports))
    return objects, pods


@st.composite
def cluster_and_flows(draw):
    objects, pods = draw(clusters())
    flows = []
    for t in range(draw(st.integers(0, 25))):
        dst_ip, ports = draw(st.sampled_from(pods))
        if draw(st.booleans()):
            port, proto = draw(st.sampled_from(ports))
        else:
            port, proto = draw(st.integers(1, 65535)), draw(st.sampled_from(PROTOCOLS))
        if draw(st.integers(0, 4)) == 0:
            src_ip = draw(st.sampled_from(["203.0.113.5", "198.51.100.7", "10.0.0.1"]))
        else:
            src_ip = draw(st.sampled_from(pods))[0]
        flows.append(Flow(float(t), src_ip, 40000, dst_ip, port, proto))
    return objects, flows


def _check(objects, flows, options):
    inventory = Inventory.build(("gen", o) for o in objects)
    edges = aggregate(flows, inventory).edges()
    result = synthesize(inventory, edges, options)
    report = verify(inventory, edges, [g.policy for g in result.policies])
    assert report.denied == [], [str(d.edge) + str(d.verdict.reasons()) for d in report.denied]
    assert report.extra == []
    assert report.connections == len(flows)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster_and_flows())
def test_generated_policies_allow_every_observed_flow_and_nothing_else(data):
    _check(*data, SynthesisOptions())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster_and_flows(), st.sampled_from(["always", "never"]), st.integers(8, 32))
def test_the_properties_hold_for_every_dns_mode_and_cidr_prefix(data, dns, prefix):
    _check(*data, SynthesisOptions(dns=dns, cidr_prefix=prefix, named_ports=True))
