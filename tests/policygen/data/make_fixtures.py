"""Writes the bookinfo fixtures: a cluster snapshot (as `kubectl get -o yaml` prints it) and the
same observed traffic as native flows and as Hubble flows. Run once; the outputs are committed.

    python tests/policygen/data/make_fixtures.py
"""

import json
from pathlib import Path

import yaml

HERE = Path(__file__).parent
NODE = ("node-1", "10.0.0.11")
T0 = 1_790_000_000  # 2026-09-21

DEPLOYMENTS = {  # name -> (labels, pod IP, hash)
    "productpage-v1": ({"app": "productpage", "version": "v1"}, "10.244.1.10", "5d8c6b7f9c"),
    "details-v1": ({"app": "details", "version": "v1"}, "10.244.1.11", "6f7d9b8c5d"),
    "ratings-v1": ({"app": "ratings", "version": "v1"}, "10.244.1.12", "7c9f8d6b4a"),
    "reviews-v1": ({"app": "reviews", "version": "v1"}, "10.244.1.13", "58d4b9c7f6"),
    "reviews-v2": ({"app": "reviews", "version": "v2"}, "10.244.1.14", "64c8f7d9b5"),
    "reviews-v3": ({"app": "reviews", "version": "v3"}, "10.244.1.15", "7b6d5c9f8e"),
}
SERVICES = {"productpage": "10.96.10.10", "details": "10.96.10.11", "ratings": "10.96.10.12", "reviews": "10.96.10.13"}
COREDNS = ("kube-system", "coredns", {"k8s-app": "kube-dns"}, "10.244.0.2", "5d78c9869d")


def pod(namespace, deploy, labels, ip, hash_):
    rs = f"{deploy}-{hash_}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{rs}-x{ip.split('.')[-1]}ab",
            "namespace": namespace,
            "labels": {**labels, "pod-template-hash": hash_},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "controller": True, "uid": "u-" + rs}],
        },
        "spec": {
            "nodeName": NODE[0],
            "containers": [{"name": deploy.split("-")[0], "image": "example", "ports": [{"containerPort": 9080 if namespace == "default" else 53, "protocol": "TCP" if namespace == "default" else "UDP", **({"name": "dns"} if namespace != "default" else {})}]}],
        },
        "status": {"podIP": ip, "podIPs": [{"ip": ip}], "hostIP": NODE[1], "phase": "Running"},
    }


def snapshot():
    items = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}}
        for ns in ("default", "kube-system")
    ]
    items.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE[0]},
                  "status": {"addresses": [{"type": "InternalIP", "address": NODE[1]}]}})
    for name, (labels, ip, hash_) in DEPLOYMENTS.items():
        items.append(pod("default", name, labels, ip, hash_))
    ns, name, labels, ip, hash_ = COREDNS
    items.append(pod(ns, name, labels, ip, hash_))
    items.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "coredns", "namespace": "kube-system"},
                  "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels},
                           "spec": {"containers": [{"name": "coredns", "image": "coredns", "ports": [
                               {"containerPort": 53, "protocol": "UDP", "name": "dns"},
                               {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"}]}]}}}})
    items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": "kube-system"},
                  "spec": {"clusterIP": "10.96.0.10", "selector": labels, "ports": [
                      {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                      {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}})
    for name, cip in SERVICES.items():
        items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
                      "spec": {"clusterIP": cip, "clusterIPs": [cip], "selector": {"app": name},
                               "ports": [{"name": "http", "port": 9080, "protocol": "TCP", "targetPort": 9080}]}})
    return {"apiVersion": "v1", "kind": "List", "items": items}


CALLS = [  # (src deployment or outside address, service, dst deployment, count)
    ("productpage-v1", "details", "details-v1", 40),
    ("productpage-v1", "reviews", "reviews-v1", 14),
    ("productpage-v1", "reviews", "reviews-v2", 13),
    ("productpage-v1", "reviews", "reviews-v3", 13),
    ("reviews-v2", "ratings", "ratings-v1", 13),
    ("reviews-v3", "ratings", "ratings-v1", 13),
    ("203.0.113.7", "productpage", "productpage-v1", 40),
    (NODE[1], None, "productpage-v1", 6),  # kubelet probes straight to the pod
]
DNS_CLIENTS = ["productpage-v1", "reviews-v2", "reviews-v3"]


def ip_of(name):
    return DEPLOYMENTS[name][1] if name in DEPLOYMENTS else name


def native_flows():
    out, t = [], T0
    for src, svc, dst, count in CALLS:
        for i in range(count):
            t += 1
            rec = {"time": t, "src_ip": ip_of(src), "src_port": 40000 + i, "protocol": "TCP", "bytes": 1200 + i, "packets": 10, "node": NODE[0]}
            if svc:
                rec |= {"dst_ip": SERVICES[svc], "dst_port": 9080, "dst_pod_ip": ip_of(dst)}
            else:
                rec |= {"dst_ip": ip_of(dst), "dst_port": 9080}
            out.append(rec)
    for src in DNS_CLIENTS:
        t += 1
        out.append({"time": t, "src_ip": ip_of(src), "src_port": 53000, "dst_ip": "10.96.0.10", "dst_port": 53,
                    "protocol": "UDP", "dst_pod_ip": COREDNS[3], "bytes": 180, "packets": 2, "node": NODE[0]})
    return out


def hubble_endpoint(name_or_ip):
    if name_or_ip in DEPLOYMENTS:
        labels, ip, hash_ = DEPLOYMENTS[name_or_ip]
        return {"ID": 100, "identity": 1000, "namespace": "default",
                "labels": [f"k8s:{k}={v}" for k, v in labels.items()] + [
                    "k8s:io.kubernetes.pod.namespace=default", "k8s:io.cilium.k8s.policy.cluster=default",
                    f"k8s:io.cilium.k8s.policy.serviceaccount=bookinfo-{name_or_ip.split('-')[0]}"],
                "pod_name": f"{name_or_ip}-{hash_}-x{ip.split('.')[-1]}ab",
                "workloads": [{"name": name_or_ip, "kind": "Deployment"}]}
    if name_or_ip == "coredns":
        return {"ID": 7, "identity": 7000, "namespace": "kube-system",
                "labels": ["k8s:k8s-app=kube-dns", "k8s:io.kubernetes.pod.namespace=kube-system"],
                "pod_name": f"coredns-{COREDNS[4]}-abcde", "workloads": [{"name": "coredns", "kind": "Deployment"}]}
    if name_or_ip == NODE[1]:
        return {"identity": 1, "labels": ["reserved:host"]}
    return {"identity": 2, "labels": ["reserved:world"]}


def hubble_flows():
    out = []
    for rec in native_flows():
        dst_name = next((n for n, d in DEPLOYMENTS.items() if d[1] == rec.get("dst_pod_ip", rec["dst_ip"])), None)
        if rec.get("dst_pod_ip") == COREDNS[3]:
            dst_name = "coredns"
        src_name = next((n for n, d in DEPLOYMENTS.items() if d[1] == rec["src_ip"]), rec["src_ip"])
        dst_ip = rec.get("dst_pod_ip") or rec["dst_ip"]
        proto = rec["protocol"]
        l4 = {"source_port": rec["src_port"], "destination_port": rec["dst_port"]}
        if proto == "TCP":
            l4["flags"] = {"SYN": True}
        ts = rec["time"]
        flow = {"time": f"2026-09-21T{(ts - T0) // 3600 + 14:02d}:{((ts - T0) // 60 + 13) % 60:02d}:{(ts - T0 + 20) % 60:02d}.123456789Z",
                "verdict": "FORWARDED", "IP": {"source": rec["src_ip"], "destination": dst_ip, "ipVersion": "IPv4"},
                "l4": {proto: l4}, "source": hubble_endpoint(src_name), "destination": hubble_endpoint(dst_name),
                "Type": "L3_L4", "node_name": NODE[0], "traffic_direction": "EGRESS", "is_reply": False}
        out.append({"flow": flow, "node_name": NODE[0], "time": flow["time"]})
        reply = json.loads(json.dumps(flow))
        reply["is_reply"] = True
        reply["IP"] = {"source": dst_ip, "destination": rec["src_ip"], "ipVersion": "IPv4"}
        out.append(reply)  # bare form, a reply: must not count as a connection
    return out


if __name__ == "__main__":
    (HERE / "bookinfo-cluster.yaml").write_text(yaml.safe_dump(snapshot(), sort_keys=False))
    (HERE / "bookinfo-flows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in native_flows()))
    (HERE / "bookinfo-hubble.jsonl").write_text("".join(json.dumps(r) + "\n" for r in hubble_flows()))
    print("wrote bookinfo-cluster.yaml, bookinfo-flows.jsonl, bookinfo-hubble.jsonl")
