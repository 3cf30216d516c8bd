"""The injected sidecar is told its workload (`NETGUARD_WAF_WORKLOAD`) for the audit log (waf/audit.py)."""

from __future__ import annotations

import pytest

from waf.injection.mutation import SIDECAR, inject_object, inject_pod

POD_SPEC = {"containers": [{"name": "app", "image": "app", "ports": [{"name": "http", "containerPort": 8080}]}]}


def _env(pod: dict) -> dict:
    sidecar = next(c for c in pod["spec"]["containers"] if c["name"] == SIDECAR)
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in sidecar["env"]}


@pytest.mark.parametrize(
    ("owner", "labels", "workload"),
    [
        ({"kind": "ReplicaSet", "name": "front-5d8c6b7f9c"}, {"pod-template-hash": "5d8c6b7f9c"}, "Deployment/front"),
        ({"kind": "StatefulSet", "name": "db"}, {}, "StatefulSet/db"),
        (None, {}, "Pod/front-x"),
    ],
)
def test_the_webhooks_pod_names_its_top_owner(owner, labels, workload):
    meta = {"name": "front-x", "labels": {"netguard.io/waf": "enabled", **labels}}
    if owner:
        meta["ownerReferences"] = [{**owner, "controller": True, "apiVersion": "apps/v1", "uid": "u"}]
    out = inject_pod({"metadata": meta, "spec": POD_SPEC}, namespace="shop")
    assert out.changed, out.warnings
    env = _env(out.pod)
    assert env["NETGUARD_WAF_WORKLOAD"] == workload
    assert env["NETGUARD_WAF_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_offline_inject_names_the_deployment():
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "front", "namespace": "shop"},
           "spec": {"template": {"metadata": {"labels": {"netguard.io/waf": "enabled"}}, "spec": POD_SPEC}}}  # fmt: skip
    out = inject_object(dep)
    assert out.changed and _env(out.pod["spec"]["template"])["NETGUARD_WAF_WORKLOAD"] == "Deployment/front"
