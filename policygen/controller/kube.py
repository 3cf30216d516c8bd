"""The controller's Kubernetes adapter: the kinds it watches (list+watch: netguard/kube.py), and
server-side apply of the approved policies."""

from __future__ import annotations

import json
from typing import Any

import httpx

from netguard import kube
from netguard.kube import Cluster, load_cluster

__all__ = ["RESOURCES", "Applier", "Cluster", "KubeInventory", "load_cluster"]

# kind -> list/watch path (all namespaces)
RESOURCES: dict[str, str] = {
    "Namespace": "/api/v1/namespaces",
    "Node": "/api/v1/nodes",
    "Pod": "/api/v1/pods",
    "Service": "/api/v1/services",
    "Endpoints": "/api/v1/namespaces/default/endpoints?fieldSelector=metadata.name%3Dkubernetes",  # the API server
    "ReplicaSet": "/apis/apps/v1/replicasets",
    "Deployment": "/apis/apps/v1/deployments",
    "StatefulSet": "/apis/apps/v1/statefulsets",
    "DaemonSet": "/apis/apps/v1/daemonsets",
    "Job": "/apis/batch/v1/jobs",
    "CronJob": "/apis/batch/v1/cronjobs",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/networkpolicies",
    # admin tiers: listed when the CRDs exist (a 404 marks the kind synced and empty)
    "AdminNetworkPolicy": "/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies",
    "BaselineAdminNetworkPolicy": "/apis/policy.networking.k8s.io/v1alpha1/baselineadminnetworkpolicies",
}
FIELD_MANAGER = "netguard"
MANAGED_LABEL = "app.kubernetes.io/managed-by=netguard"


class KubeInventory(kube.KubeInventory):
    """The controller's inventory: every kind of RESOURCES (unless `kinds`), watched."""

    def __init__(self, cluster: Cluster, kinds: dict[str, str] | None = None, **kw: Any) -> None:
        super().__init__(cluster, kinds or RESOURCES, **kw)


# --- protect: server-side apply ---------------------------------------------------------------------


class Applier:
    """Server-side apply of generated NetworkPolicies (field manager `netguard`), every dry run first."""

    def __init__(self, cluster: Cluster, metrics: Any = None) -> None:
        self.cluster = cluster
        self.metrics = metrics

    def _path(self, namespace: str, name: str) -> str:
        return f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}"

    def _patch(self, client: httpx.Client, obj: dict, dry_run: bool) -> httpx.Response:
        meta = obj["metadata"]
        params = {"fieldManager": FIELD_MANAGER, "force": "true"}
        if dry_run:
            params["dryRun"] = "All"
        headers = {**self.cluster.headers(), "Content-Type": "application/apply-patch+yaml"}
        return client.patch(self._path(meta["namespace"], meta["name"]), params=params, headers=headers,
                            content=json.dumps(obj))  # JSON is YAML

    def apply(self, generated: list, store: Any, dry_run_only: bool = False) -> dict:
        objects = [(g.workload.key, g.policy.to_dict()) for g in generated]
        out: dict[str, Any] = {"dry_run": [], "applied": [], "errors": []}
        with self.cluster.client() as client:
            for workload, obj in objects:
                ref = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
                before = client.get(self._path(obj["metadata"]["namespace"], obj["metadata"]["name"]),
                                    headers=self.cluster.headers())
                response = self._patch(client, obj, dry_run=True)
                out["dry_run"].append({"ref": ref, "workload": workload, "status": response.status_code,
                                       **_preview(before, response)})
                if response.status_code >= 300:
                    out["errors"].append({"ref": ref, "stage": "dry-run", "status": response.status_code,
                                          "message": _message(response)})
            if out["errors"] or dry_run_only:
                return out  # nothing is applied unless every dry run passed
            for workload, obj in objects:
                ref = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
                response = self._patch(client, obj, dry_run=False)
                if response.status_code >= 300:
                    out["errors"].append({"ref": ref, "stage": "apply", "status": response.status_code,
                                          "message": _message(response)})
                    continue
                store.record_applied(ref, workload)
                out["applied"].append({"ref": ref, "workload": workload})
                if self.metrics is not None:
                    self.metrics.applied.labels(action="apply").inc()
        return out

    def remove(self, store: Any) -> dict:
        """Delete the NetworkPolicies netguard applied (and only those)."""
        out: dict[str, Any] = {"removed": [], "errors": []}
        with self.cluster.client() as client:
            for ref in sorted(store.applied()):
                namespace, name = ref.split("/", 1)
                response = client.delete(self._path(namespace, name), headers=self.cluster.headers())
                if response.status_code in (200, 202, 404):
                    store.forget_applied(ref)
                    out["removed"].append(ref)
                    if self.metrics is not None:
                        self.metrics.applied.labels(action="remove").inc()
                else:
                    out["errors"].append({"ref": ref, "status": response.status_code, "message": _message(response)})
        return out


def _preview(before: httpx.Response, after: httpx.Response) -> dict[str, Any]:
    """What the API server would do, from the object now (GET) and the dry run's answer: create,
    change (with the spec's diff) or unchanged."""
    if after.status_code >= 300:
        return {"action": "refused"}
    if before.status_code == 404:
        return {"action": "create"}
    try:
        old, new = before.json().get("spec"), after.json().get("spec")
    except ValueError:
        return {"action": "change"}
    if old == new:
        return {"action": "unchanged"}
    import difflib

    import yaml

    a = yaml.safe_dump(old, sort_keys=False).splitlines(keepends=True)
    b = yaml.safe_dump(new, sort_keys=False).splitlines(keepends=True)
    return {"action": "change", "diff": "".join(difflib.unified_diff(a, b, "in the cluster", "after apply"))}


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message") or response.text[:300])
    except ValueError:
        return response.text[:300]
