"""Whatever shape an inventory object or a flow record has, the readers answer with InputError or a result."""

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netguard.enrich import aggregate
from netguard.errors import InputError
from netguard.flows import parse_record, read_flows
from netguard.inventory import Inventory, load_inventory

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 70000), st.floats(allow_nan=False),
                    st.text(max_size=12), st.sampled_from(["TCP", "abc", "10.0.0.1", "not-an-ip", "a/b", "../x", "-1"]))
SHAPES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)

VALID = [
    {"kind": "Pod", "metadata": {"name": "web-1", "namespace": "a", "labels": {"app": "web"},
                                 "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d4b9c6f5d", "controller": True}]},
     "spec": {"nodeName": "n1", "hostNetwork": False,
              "containers": [{"name": "c", "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]}]},
     "status": {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}], "hostIP": "10.1.0.1"}},
    {"kind": "Deployment", "metadata": {"name": "web", "namespace": "a"},
     "spec": {"selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "t", "operator": "In", "values": ["x"]}]},
              "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}}},
    {"kind": "CronJob", "metadata": {"name": "r", "namespace": "a"},
     "spec": {"jobTemplate": {"spec": {"template": {"metadata": {"labels": {"app": "r"}}}}}}},
    {"kind": "Service", "metadata": {"name": "web", "namespace": "a"},
     "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"], "type": "ClusterIP",
              "ports": [{"port": 80, "targetPort": "http", "protocol": "TCP", "name": "http"}], "externalIPs": ["1.2.3.4"]},
     "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.5"}]}}},
    {"kind": "Endpoints", "metadata": {"name": "web", "namespace": "a"},
     "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80, "protocol": "TCP", "name": "http"}]}]},
    {"kind": "EndpointSlice", "metadata": {"name": "web-x", "namespace": "a", "labels": {"kubernetes.io/service-name": "web"}},
     "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80, "protocol": "TCP", "name": "http"}]},
    {"kind": "Namespace", "metadata": {"name": "a", "labels": {"team": "x"}}},
    {"kind": "Node", "metadata": {"name": "n1"}, "status": {"addresses": [{"type": "InternalIP", "address": "10.1.0.1"}]}},
    {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "a"},
     "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 80}]}]}},
]

NATIVE = {"time": 1.5, "src_ip": "10.0.0.2", "src_port": 40000, "dst_ip": "10.0.0.1", "dst_port": 80, "protocol": "TCP",
          "bytes": 10, "packets": 1, "node": "n1", "dst_pod_ip": "10.0.0.1", "dst_pod_port": 80, "dst_names": ["a.example"]}
HUBBLE = {"flow": {"time": "2026-01-01T00:00:00Z", "verdict": "FORWARDED", "is_reply": False, "traffic_direction": "EGRESS",
                   "IP": {"source": "10.0.0.2", "destination": "10.0.0.1"},
                   "l4": {"TCP": {"source_port": 40000, "destination_port": 80, "flags": {"ACK": True}}},
                   "source": {"ID": 1, "namespace": "a", "pod_name": "web-7d4b9c6f5d-x1x2x", "labels": ["k8s:app=web"],
                              "workloads": [{"name": "web", "kind": "Deployment"}]},
                   "destination": {"labels": ["reserved:world"]}, "destination_names": ["a.example"]}}


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def _mutate(value, path, replacement):
    if not path:
        return replacement
    out = copy.deepcopy(value)
    node = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = replacement
    return out


@st.composite
def mutated(draw, originals):
    original = draw(st.sampled_from(originals))
    path = draw(st.sampled_from(list(_paths(original))))
    return _mutate(original, path, draw(SHAPES))


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.lists(st.one_of(mutated(VALID), SHAPES), min_size=1, max_size=3))
def test_inventory_reader_raises_only_input_error(tmp_path_factory, objects):
    path = tmp_path_factory.mktemp("inv") / "inv.json"
    path.write_text(json.dumps({"kind": "List", "items": objects}))
    try:
        inventory = load_inventory([path])
    except InputError:
        return
    assert isinstance(inventory, Inventory)
    inventory.listening()


@FUZZ
@given(st.one_of(mutated([NATIVE, HUBBLE, HUBBLE["flow"]]), SHAPES))
def test_flow_reader_raises_only_input_error(record):
    try:
        flow = parse_record(record) if isinstance(record, dict) else None
    except InputError:
        return
    if flow is not None:
        aggregate([flow], Inventory())


@FUZZ
@given(st.lists(st.one_of(mutated([NATIVE, HUBBLE]), SHAPES), max_size=4))
def test_flow_files_raise_only_input_error(tmp_path_factory, records):
    path = tmp_path_factory.mktemp("flows") / "f.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    try:
        list(read_flows([path]))
    except InputError:
        pass
