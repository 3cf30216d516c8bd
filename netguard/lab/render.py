"""The lab as the Kubernetes API would show it: `kubectl get ns,pods,svc,rs,deploy -A -o yaml`."""

from __future__ import annotations

from typing import Any

from netguard.lab.plan import GATEWAY, NODE_NAME, LabPlan, PodSpec, _owner_ref, _uid

_OWNER_API = {"ReplicaSet": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "Job": "batch/v1"}


def inventory(plan: LabPlan) -> dict[str, Any]:
    """A `List` of Namespaces, Pods, Services and the pods' owners, with IPs and ownerReferences."""
    items: list[dict[str, Any]] = []
    for ns, labels in sorted(plan.namespaces.items()):
        items.append({"apiVersion": "v1", "kind": "Namespace",
                      "metadata": {"name": ns, "labels": dict(labels), "uid": _uid(f"Namespace/{ns}")},
                      "status": {"phase": "Active"}})
    items += [_pod(plan, pod) for pod in plan.pods]
    for svc in plan.services:
        spec: dict[str, Any] = {
            "type": "ClusterIP",
            "clusterIP": svc.cluster_ip,
            "clusterIPs": [svc.cluster_ip],
            "ports": [{**({"name": p.name} if p.name else {}), "port": p.port, "protocol": p.protocol,
                       "targetPort": p.target_port or p.port} for p in svc.ports],
        }
        if svc.selector:
            spec["selector"] = dict(svc.selector)
        items.append({"apiVersion": "v1", "kind": "Service",
                      "metadata": {"name": svc.name, "namespace": svc.namespace, "uid": _uid(f"Service/{svc.ref}")},
                      "spec": spec})
    for owner in plan.owners:
        items.append(owner)
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def _pod(plan: LabPlan, pod: PodSpec) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": pod.name, "namespace": pod.namespace, "labels": dict(pod.labels),
                            "uid": _uid(f"Pod/{pod.ref}")}
    if pod.owner_kind:
        meta["ownerReferences"] = [_owner_ref(_OWNER_API.get(pod.owner_kind, "apps/v1"), pod.owner_kind, pod.owner_name)]
    containers = [{
        "name": "main",
        "image": "netguard-lab-server",
        "ports": [{**({"name": p.name} if p.name else {}), "containerPort": p.port, "protocol": p.protocol} for p in pod.ports],
    }]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"nodeName": NODE_NAME, "containers": containers},
        "status": {"phase": "Running", "hostIP": GATEWAY, "podIP": pod.ip, "podIPs": [{"ip": pod.ip}]},
    }
