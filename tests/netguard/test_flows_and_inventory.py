"""Inventory loading and owner resolution; flow readers (native, Hubble, pcap); enrichment."""

import json

import pytest

from netguard.enrich import aggregate
from netguard.errors import InputError
from netguard.flows import ReadStats, parse_record, read_flows
from netguard.inventory import Inventory, load_inventory
from netguard.model import EndpointKind, Flow, Workload


def test_pods_resolve_to_their_top_owner(bookinfo_data):
    inv = load_inventory([bookinfo_data / "bookinfo-cluster.yaml"])
    pod = inv.pod_by_ip["10.244.1.14"]
    assert pod.workload == Workload("default", "Deployment", "reviews-v2")
    info = inv.workloads[pod.workload]
    assert dict(info.labels) == {"app": "reviews", "version": "v2"}  # pod-template-hash dropped
    assert inv.nodes["10.0.0.11"] == "node-1"


def test_owner_chain_through_replicaset_and_cronjob():
    objs = [
        {
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "a"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web", "v": "1"}}}},
        },
        {
            "kind": "ReplicaSet",
            "metadata": {
                "name": "web-abc",
                "namespace": "a",
                "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": True}],
            },
        },
        {
            "kind": "Pod",
            "metadata": {
                "name": "web-abc-1",
                "namespace": "a",
                "labels": {"app": "web", "pod-template-hash": "abc"},
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc", "controller": True}],
            },
            "status": {"podIP": "10.244.0.1"},
        },
        {
            "kind": "CronJob",
            "metadata": {"name": "backup", "namespace": "a"},
            "spec": {"jobTemplate": {"spec": {"template": {"metadata": {"labels": {"job": "backup"}}}}}},
        },
        {
            "kind": "Job",
            "metadata": {
                "name": "backup-123",
                "namespace": "a",
                "ownerReferences": [{"kind": "CronJob", "name": "backup", "controller": True}],
            },
        },
        {
            "kind": "Pod",
            "metadata": {
                "name": "backup-123-x",
                "namespace": "a",
                "labels": {"job": "backup", "job-name": "backup-123"},
                "ownerReferences": [{"kind": "Job", "name": "backup-123", "controller": True}],
            },
            "status": {"podIP": "10.244.0.2"},
        },
        {
            "kind": "Pod",
            "metadata": {"name": "debug", "namespace": "a", "labels": {"run": "debug"}},
            "status": {"podIP": "10.244.0.3"},
        },
        {
            "kind": "Pod",
            "metadata": {
                "name": "orphan-7d9f8c6b5a-qwert",
                "namespace": "a",
                "labels": {"app": "o", "pod-template-hash": "7d9f8c6b5a"},
                "ownerReferences": [{"kind": "ReplicaSet", "name": "orphan-7d9f8c6b5a", "controller": True}],
            },
            "status": {"podIP": "10.244.0.4"},
        },
    ]
    inv = Inventory.build(("t", o) for o in objs)
    assert inv.pod_by_ip["10.244.0.1"].workload == Workload("a", "Deployment", "web")
    assert inv.pod_by_ip["10.244.0.2"].workload == Workload("a", "CronJob", "backup")
    assert inv.pod_by_ip["10.244.0.3"].workload == Workload("a", "Pod", "debug")
    assert inv.pod_by_ip["10.244.0.4"].workload == Workload("a", "Deployment", "orphan")  # ReplicaSet not listed
    assert dict(inv.workloads[Workload("a", "CronJob", "backup")].selector.match_labels) == {"job": "backup"}


def test_list_and_directories_and_json(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ns.json").write_text(
        json.dumps({"kind": "NamespaceList", "items": [{"metadata": {"name": "x", "labels": {"team": "t"}}}]})
    )
    (tmp_path / "svc.yml").write_text(
        "kind: Service\nmetadata: {name: s, namespace: x}\nspec: {clusterIP: 10.96.0.5, ports: [{port: 80, targetPort: http}]}\n"
    )
    inv = load_inventory([tmp_path])
    assert inv.namespace_labels("x") == {"team": "t", "kubernetes.io/metadata.name": "x"}
    assert inv.service_by_ip["10.96.0.5"].ports[0].target_port == "http"


def test_service_named_target_port_maps_to_each_backend_pod_port():
    objs = [
        {
            "kind": "Service",
            "metadata": {"name": "api", "namespace": "a"},
            "spec": {"clusterIP": "10.96.0.9", "selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": "web"}]},
        },
    ]
    for version, port in (("v1", 8080), ("v2", 8081)):
        objs.append(
            {
                "kind": "Pod",
                "metadata": {"name": f"api-{version}", "namespace": "a", "labels": {"app": "api", "v": version}},
                "spec": {"containers": [{"name": "c", "ports": [{"containerPort": port, "name": "web"}]}]},
                "status": {"podIP": f"10.244.0.{port - 8070}"},
            }
        )
    objs.append(
        {
            "kind": "Pod",
            "metadata": {"name": "client", "namespace": "a", "labels": {"app": "client"}},
            "status": {"podIP": "10.244.0.1"},
        }
    )
    inv = Inventory.build(("t", o) for o in objs)
    edges = aggregate([Flow(0, "10.244.0.1", 5555, "10.96.0.9", 80)], inv).edges()
    assert sorted((e.dst.workload.name, e.port, e.port_name, e.via_service) for e in edges) == [
        ("api-v1", 8080, "web", "a/api"),
        ("api-v2", 8081, "web", "a/api"),
    ]
    # the post-DNAT pod wins when the capture knows it
    edges = aggregate([Flow(0, "10.244.0.1", 5555, "10.96.0.9", 80, dst_pod_ip="10.244.0.11")], inv).edges()
    assert [(e.dst.workload.name, e.port) for e in edges] == [("api-v2", 8081)]


def test_outside_addresses_become_named_peers(bookinfo_data):
    inv = load_inventory([bookinfo_data / "bookinfo-cluster.yaml"])
    flows = [
        Flow(0, "10.244.1.10", 1, "1.1.1.1", 443),
        Flow(0, "10.244.1.10", 1, "169.254.20.10", 53, "UDP"),
        Flow(0, "10.0.0.11", 1, "10.244.1.10", 9080),
    ]
    kinds = sorted((e.src.kind.value, e.dst.kind.value) for e in aggregate(flows, inv).edges())
    assert kinds == [("node", "workload"), ("workload", "node-local-dns"), ("workload", "world")]


def test_apiserver_through_service_default_kubernetes():
    objs = [
        {
            "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "targetPort": 6443}]},
        },
        {
            "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "172.18.0.2"}], "ports": [{"name": "https", "port": 6443}]}],
        },
        {"kind": "Pod", "metadata": {"name": "op", "namespace": "a", "labels": {"app": "op"}}, "status": {"podIP": "10.244.0.1"}},
    ]
    inv = Inventory.build(("t", o) for o in objs)
    [edge] = aggregate([Flow(0, "10.244.0.1", 1, "10.96.0.1", 443)], inv).edges()
    assert (edge.dst.kind, edge.dst.address, edge.port) == (EndpointKind.APISERVER, "172.18.0.2", 6443)


def test_native_record_fields_and_time_formats():
    f = parse_record(
        {
            "time": "2026-01-02T03:04:05.123456789Z",
            "src_ip": "10.0.0.1",
            "src_port": 1,
            "dst_ip": "10.0.0.2",
            "dst_port": 80,
            "protocol": "udp",
            "bytes": 10,
        }
    )
    assert (f.protocol, f.bytes, int(f.time)) == ("UDP", 10, 1767323045)
    assert parse_record({"time": 5, "src_ip": "::1", "dst_ip": "::2", "dst_port": 1, "protocol": 132}).protocol == "SCTP"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "dst_port": 80, "protocol": "ICMP"}, "unknown protocol 'ICMP'"),
        ({"src_ip": "10.0.0.1", "dst_ip": "nope", "dst_port": 80}, "dst_ip: invalid IP address 'nope'"),
        ({"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "dst_port": 70000}, "dst_port: invalid port 70000"),
        ({"hello": 1}, "unrecognized flow record"),
    ],
)
def test_bad_records_are_named(record, message):
    with pytest.raises(InputError, match=message):
        parse_record(record)


def test_hubble_reserved_identities_and_replies():
    stats = ReadStats()
    world = {
        "flow": {
            "IP": {"source": "8.8.8.8", "destination": "10.244.0.1"},
            "l4": {"TCP": {"destination_port": 80, "flags": {"SYN": True}}},
            "source": {"labels": ["reserved:world"]},
            "destination": {
                "namespace": "a",
                "pod_name": "web-0",
                "labels": ["k8s:app=web", "k8s:io.cilium.k8s.policy.cluster=c"],
            },
        }
    }
    flow = parse_record(world, stats)
    assert flow.src_hint.reserved == "world"
    assert flow.dst_hint.workload == Workload("a", "StatefulSet", "web")
    assert dict(flow.dst_hint.labels) == {"app": "web"}
    ack = json.loads(json.dumps(world))
    ack["flow"]["l4"]["TCP"]["flags"] = {"ACK": True}
    assert parse_record(ack, stats) is None  # no source port, no is_reply: nothing says which way it goes
    ack["flow"]["is_reply"] = True
    assert parse_record(ack, stats) is None
    icmp = {
        "IP": {"source": "10.0.0.1", "destination": "10.0.0.2"},
        "l4": {"ICMPv4": {"type": 8}},
        "source": {},
        "destination": {},
    }
    assert parse_record(icmp, stats) is None
    dropped = {**world["flow"], "verdict": "DROPPED"}
    assert parse_record(dropped, stats) is None
    assert (stats.replies, stats.undecided, stats.not_l4, stats.dropped_verdicts) == (1, 1, 1, 1)


def test_pcap_connection_starts(tmp_path):
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.utils import wrpcap

    packets = [
        IP(src="10.244.0.1", dst="10.244.0.2") / TCP(sport=1000, dport=80, flags="S"),
        IP(src="10.244.0.2", dst="10.244.0.1") / TCP(sport=80, dport=1000, flags="SA"),
        IP(src="10.244.0.1", dst="10.244.0.2") / TCP(sport=1000, dport=80, flags="A"),
        IP(src="10.244.0.1", dst="10.244.0.3") / UDP(sport=2000, dport=53),
        IP(src="10.244.0.3", dst="10.244.0.1") / UDP(sport=53, dport=2000),
        IP(src="10.244.0.1", dst="10.244.0.3") / UDP(sport=2000, dport=53),
    ]
    path = tmp_path / "cap.pcap"
    wrpcap(str(path), packets)
    flows = list(read_flows([path]))
    assert [(f.dst_ip, f.dst_port, f.protocol) for f in flows] == [("10.244.0.2", 80, "TCP"), ("10.244.0.3", 53, "UDP")]


# --- DNS names of outside destinations --------------------------------------------------------------


def _hubble_to_world(names):
    return {
        "flow": {
            "IP": {"source": "10.244.1.10", "destination": "203.0.113.9"},
            "l4": {"TCP": {"source_port": 41000, "destination_port": 443, "flags": {"SYN": True}}},
            "source": {"namespace": "default", "pod_name": "productpage-v1-5d8c6b7f9c-x10ab", "labels": ["k8s:app=productpage"],
                       "workloads": [{"name": "productpage-v1", "kind": "Deployment"}]},
            "destination": {"labels": ["reserved:world"]},
            "destination_names": names,
        }
    }


def test_hubble_destination_names_are_read_sorted_lower_case():
    flow = parse_record(_hubble_to_world(["API.example.com.", "cdn.example.net", "api.example.com"]))
    assert flow.dst_names == ("api.example.com", "cdn.example.net")
    assert parse_record(_hubble_to_world(None)).dst_names == ()
    bare = _hubble_to_world(["api.example.com"])["flow"]
    assert parse_record(bare).dst_names == ("api.example.com",)


def test_native_dst_names_round_trip():
    from netguard.flows import flow_to_record

    record = {"time": 1, "src_ip": "10.244.1.10", "dst_ip": "203.0.113.9", "dst_port": 443,
              "dst_names": ["api.example.com", "API.example.com"]}
    flow = parse_record(record)
    assert flow.dst_names == ("api.example.com",)
    assert flow_to_record(flow)["dst_names"] == ["api.example.com"]
    assert parse_record(flow_to_record(flow)) == flow
    del record["dst_names"]
    assert "dst_names" not in flow_to_record(parse_record(record))


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ("api.example.com", "dst_names: expected a list of DNS names, got 'api.example.com'"),
        ({"a": 1}, "dst_names: expected a list of DNS names"),
        ([1], "dst_names: not a DNS name: 1"),
        ([""], "dst_names: not a DNS name: ''"),
        (["api example.com"], "dst_names: not a DNS name: 'api example.com'"),
        (["a..b"], "dst_names: not a DNS name: 'a..b'"),
    ],
)
def test_bad_dst_names_are_one_line_errors_naming_the_line(tmp_path, names, message):
    good = {"time": 1, "src_ip": "10.244.1.10", "dst_ip": "203.0.113.9", "dst_port": 443}
    path = tmp_path / "flows.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "dst_names": names}) + "\n")
    with pytest.raises(InputError) as err:
        list(read_flows([path]))
    text = str(err.value)
    assert "\n" not in text and "line 2: " in text and message in text, text


def test_bad_hubble_destination_names_name_the_line(tmp_path):
    path = tmp_path / "hubble.jsonl"
    path.write_text(json.dumps(_hubble_to_world(["api.example.com"])) + "\n" + json.dumps(_hubble_to_world([["x"]])) + "\n")
    with pytest.raises(InputError, match=r"line 2: destination_names: not a DNS name: \['x'\]"):
        list(read_flows([path]))
    path.write_text(json.dumps(_hubble_to_world("api.example.com")) + "\n")
    with pytest.raises(InputError, match=r"line 1: destination_names: expected a list of DNS names"):
        list(read_flows([path]))


def test_enrichment_keeps_names_per_world_edge_bounded(bookinfo_data):
    from netguard.model import MAX_DST_NAMES

    inv = load_inventory([bookinfo_data / "bookinfo-cluster.yaml"])

    def flow(dst, port, names, t=1.0):
        return Flow(t, "10.244.1.10", 40000, dst, port, dst_names=tuple(names))

    names = [f"h{i:02d}.example.com" for i in range(12)]
    flows = [flow("203.0.113.9", 443, ["api.example.com"]), flow("203.0.113.9", 443, ["api.example.com", "b.example.com"]),
             flow("203.0.113.9", 80, []), flow("198.51.100.7", 443, names[6:]), flow("198.51.100.7", 443, names[:6]),
             flow("10.244.1.11", 9080, ["details.default.svc.cluster.local"])]
    edges = {(e.dst.address or str(e.dst), e.port): e for e in aggregate(flows, inv).edges()}
    assert len(edges) == 4  # names never split an edge: the world stays keyed by address
    assert edges[("203.0.113.9", 443)].dst_names == ("api.example.com", "b.example.com")
    assert edges[("203.0.113.9", 443)].connections == 2 and not edges[("203.0.113.9", 443)].names_overflow
    assert edges[("203.0.113.9", 80)].dst_names == ()
    bounded = edges[("198.51.100.7", 443)]
    assert bounded.dst_names == tuple(names[:MAX_DST_NAMES]) and bounded.names_overflow
    assert edges[("default/details-v1", 9080)].dst_names == ()  # names are kept for outside destinations only
    # Parallel parts merge to the same names, whatever the order.
    a, b = aggregate(flows[:4], inv), aggregate(flows[4:], inv)
    b.merge(a)
    assert b.edges() == aggregate(flows, inv).edges()
    c, d = aggregate(flows[4:], inv), aggregate(flows[:4], inv)
    c.merge(d)
    assert c.edges() == b.edges()


def test_an_fqdn_endpointslice_is_valid_and_gives_no_addresses():
    slice_ = {"kind": "EndpointSlice", "addressType": "FQDN",
              "metadata": {"name": "ext-x1", "namespace": "a", "labels": {"kubernetes.io/service-name": "ext"}},
              "endpoints": [{"addresses": ["db.example.com"]}], "ports": [{"port": 5432, "protocol": "TCP"}]}
    inv = Inventory.build([("f.yaml", slice_)])
    assert inv.endpoints == {}
