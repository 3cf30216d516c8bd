"""The pod cache the agent enriches flows with: Kubernetes YAML files (loaded once), or the Kubernetes
API, listed at start and then watched (netguard/kube.py: list+watch per kind from the resourceVersion,
bookmarks, 410 Gone relists), so a pod that appears is known to the agent within about a second: the
inventory is rebuilt when something changed, at most once a second, and spaced further when rebuilds
would take more than a tenth of a core (a whole inventory is 2 s of CPU at 20,000 pods: then a new pod
is known within about 20 s, where a relist every 30 s cost as much). Every `refresh` seconds each kind
is listed again in full: a safety net under the watch, not the way changes arrive.

Objects from the API are read as raw JSON (no client models) and resolved by the core's
`Inventory.build`, exactly like `kubectl get -o yaml` output, so both paths agree.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from netguard.errors import InputError
from netguard.inventory import Inventory
from netguard.kube import KubeInventory, load_cluster

# kind -> list/watch path (all namespaces): what resolves a pod IP to its workload and a Service IP to its
# Service. The DaemonSet's RBAC (deploy/) grants list and watch on exactly these.
KINDS = {
    "Namespace": "/api/v1/namespaces",
    "Pod": "/api/v1/pods",
    "Service": "/api/v1/services",
    "ReplicaSet": "/apis/apps/v1/replicasets",
    "Deployment": "/apis/apps/v1/deployments",
    "StatefulSet": "/apis/apps/v1/statefulsets",
    "DaemonSet": "/apis/apps/v1/daemonsets",
    "Job": "/apis/batch/v1/jobs",
}

MAX_SHARE = 0.1  # of a core for rebuilding the inventory on changes: no more than the 30 s relists cost at scale


class ApiPodCache:
    """The inventory from the Kubernetes API, kept current by watches; `take()` hands out a new one."""

    def __init__(self, kubeconfig: str | None, refresh: float, log: Callable[..., None], metrics: Any = None,
                 sync_timeout: float = 60.0, rebuild_interval: float = 1.0, max_share: float = MAX_SHARE) -> None:
        self.log = log
        try:
            cluster = load_cluster("kubeconfig" if kubeconfig else "auto", kubeconfig or "")
        except Exception as exc:  # config errors
            raise InputError(f"cannot list from the Kubernetes API: {str(exc).splitlines()[0]}") from None
        if cluster is None:
            raise InputError("cannot list from the Kubernetes API: no in-cluster configuration and no kubeconfig")
        self.source = KubeInventory(cluster, KINDS, metrics=metrics, rebuild_interval=rebuild_interval,
                                    relist=max(refresh, 0.0), max_share=max_share).start()
        try:
            self._wait_synced(sync_timeout)
        except InputError:
            self.source.close()
            raise
        self._taken, self.inventory = self.source.snapshot()

    def _wait_synced(self, timeout: float) -> None:
        """Until every kind was listed once and the inventory built from them; the first list error ends
        the start (one line, exit 2), as a wrong token or missing RBAC should."""
        deadline = time.monotonic() + timeout
        while not self.source.ready:
            errors = self.source.list_errors
            if errors:
                kind = sorted(errors)[0]
                raise InputError(f"cannot list from the Kubernetes API: {kind}: {errors[kind]}")
            if time.monotonic() > deadline:
                raise InputError(f"cannot list from the Kubernetes API: not synced after {timeout:.0f} s")
            time.sleep(0.02)

    def take(self) -> Inventory | None:
        """The inventory when it changed since the last one taken, else None (cheap: every sink tick)."""
        generation, inventory = self.source.snapshot()
        if generation == self._taken:
            return None
        self._taken = generation
        self.log("podcache_updated", pods=len(inventory.pods))
        return inventory

    def close(self) -> None:
        self.source.close()
