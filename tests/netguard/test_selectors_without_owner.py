"""Selectors without an owner's spec.selector never pick one pod: per-pod labels stay out of them.

Every input mode (an inventory with the owners, pods only, Hubble with and without `workloads`), every
kind (StatefulSet, DaemonSet, Job, CronJob, bare Pod), with one or both pods of a workload seen.
"""

import json

import pytest

from netguard.inventory import UNSTABLE_LABELS
from policygen.pipeline import observe
from policygen.synth import synthesize

PORT = 8080
# workload (kind, name) -> its pods: (pod name, labels, owner reference)
PODS = {
    ("StatefulSet", "db"): [
        (f"db-{i}", {"app": "db", "tier": "data", "controller-revision-hash": "db-5f7c9d8b6", "apps.kubernetes.io/pod-index": str(i),
                     "statefulset.kubernetes.io/pod-name": f"db-{i}"}, ("StatefulSet", "db")) for i in (0, 1)],
    ("DaemonSet", "agent"): [
        (f"agent-{s}", {"app": "agent", "controller-revision-hash": "6d9b7c5f4", "pod-template-generation": "1"},
         ("DaemonSet", "agent")) for s in ("x7k2p", "b9zzq")],
    ("Job", "migrate"): [
        (f"migrate-{s}", {"app": "migrate", "job-name": "migrate", "controller-uid": "u-1", "batch.kubernetes.io/job-name": "migrate",
                          "batch.kubernetes.io/controller-uid": "u-1", "batch.kubernetes.io/job-completion-index": str(i)},
         ("Job", "migrate")) for i, s in enumerate(("x7k2p", "b9zzq"))],
    ("CronJob", "report"): [
        (f"report-{run}-{s}", {"app": "report", "job-name": f"report-{run}", "controller-uid": f"u-{run}",
                               "batch.kubernetes.io/job-name": f"report-{run}"}, ("Job", f"report-{run}"))
        for run, s in (("29012345", "x7k2p"), ("29012405", "b9zzq"))],
    ("Pod", "debug"): [("debug", {"app": "debug", "run": "debug"}, None)],
}
CLIENT = ("web-7d4b9c6f5d-x1x2x", {"app": "web", "pod-template-hash": "7d4b9c6f5d"})


def _ips():
    ips, n = {}, 10
    for pods in PODS.values():
        for name, _, _ in pods:
            ips[name] = f"10.244.1.{n}"
            n += 1
    ips[CLIENT[0]] = "10.244.9.9"
    return ips


def _pod(name, labels, owner, ip):
    meta = {"name": name, "namespace": "shop", "labels": labels}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": PORT}]}]}, "status": {"podIP": ip}}


def _owners():
    template = {"metadata": {"labels": {}}, "spec": {"containers": [{"name": "c", "ports": [{"containerPort": PORT}]}]}}

    def tpl(labels):
        return {**template, "metadata": {"labels": labels}}

    return [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "shop"},
         "spec": {"selector": {"matchLabels": {"app": "db"}}, "template": tpl({"app": "db", "tier": "data"})}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "shop"},
         "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": tpl({"app": "agent"})}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "shop"},
         "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}, "template": tpl({"app": "migrate"})}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report", "namespace": "shop"},
         "spec": {"jobTemplate": {"spec": {"template": tpl({"app": "report"})}}}},
        *[{"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": f"report-{run}", "namespace": "shop",
                        "ownerReferences": [{"kind": "CronJob", "name": "report", "controller": True}]},
           "spec": {"template": tpl({"app": "report"})}} for run in ("29012345", "29012405")],
    ]


def _hubble(src, dst, ips, with_workloads):
    def side(name, labels, kind_name):
        out = {"ID": 1, "namespace": "shop", "pod_name": name,
               "labels": [f"k8s:{k}={v}" for k, v in labels.items()] + ["k8s:io.kubernetes.pod.namespace=shop"]}
        if with_workloads and kind_name:
            out["workloads"] = [{"kind": kind_name[0], "name": kind_name[1]}]
        return out

    return {"flow": {"time": "2026-01-01T00:00:00Z", "verdict": "FORWARDED", "is_reply": False,
                     "IP": {"source": ips[src[0]], "destination": ips[dst[0]]},
                     "l4": {"TCP": {"source_port": 40000, "destination_port": PORT, "flags": {"ACK": True}}},
                     "source": side(src[0], src[1], ("Deployment", "web")),
                     "destination": side(dst[0], dst[1], dst[2])}}


MODES = ["inventory with owners", "inventory of pods only", "hubble", "hubble with workloads"]


@pytest.mark.parametrize("seen", [1, 2])
@pytest.mark.parametrize("mode", MODES)
def test_selectors_select_every_pod_of_a_workload_and_no_per_pod_label(tmp_path, mode, seen):
    ips = _ips()
    calls = [(CLIENT, pod) for pods in PODS.values() for pod in pods[:seen]]
    inventory = []
    flows = tmp_path / "flows.jsonl"
    if mode.startswith("inventory"):
        objects = [_pod(*pod, ips[pod[0]]) for pods in PODS.values() for pod in pods]
        objects.append(_pod(*CLIENT, ("ReplicaSet", "web-7d4b9c6f5d"), ips[CLIENT[0]]))
        if mode == "inventory with owners":
            objects += _owners()
        (tmp_path / "inv.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
        inventory = [tmp_path / "inv.json"]
        flows.write_text("".join(json.dumps({"src_ip": ips[a[0]], "src_port": 40000, "dst_ip": ips[b[0]], "dst_port": PORT,
                                             "protocol": "TCP"}) + "\n" for a, b in calls))
    else:
        flows.write_text("".join(json.dumps(_hubble(a, b, ips, mode == "hubble with workloads")) + "\n" for a, b in calls))
    observed = observe(inventory, [flows])
    policies = {g.workload.name: g.policy for g in synthesize(observed.inventory, observed.edges).policies}
    web = policies["web"]
    peers = [peer.pod_selector for rule in web.egress for peer in rule.peers]
    for (kind, name), pods in PODS.items():
        policy = policies[name]
        assert policy.pod_selector is not None and not policy.pod_selector.is_empty, (kind, name)
        keys = {k for k, _ in policy.pod_selector.match_labels}
        assert not keys & UNSTABLE_LABELS, (kind, name, keys)
        for pod_name, labels, _ in pods:  # also the pod the capture did not see
            assert policy.pod_selector.matches(labels), (kind, pod_name, policy.pod_selector)
            assert any(p is not None and p.matches(labels) for p in peers), (kind, pod_name)
        others = [lb for (k2, n2), ps in PODS.items() if n2 != name for _, lb, _ in ps]
        assert not any(policy.pod_selector.matches(lb) for lb in others), (kind, name)
