"""The pod cache the agent enriches flows with: Kubernetes YAML files (loaded once), or the
Kubernetes API (listed at start, relisted every `refresh` seconds in a background thread).

Objects from the API are read as raw JSON (no client models) and resolved by the core's
`Inventory.build`, exactly like `kubectl get -o yaml` output, so both paths agree.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx

from netguard.errors import InputError
from netguard.inventory import Inventory

# (kind, API group/version path, resource)
_RESOURCES = (
    ("Namespace", "api/v1", "namespaces"),
    ("Pod", "api/v1", "pods"),
    ("Service", "api/v1", "services"),
    ("ReplicaSet", "apis/apps/v1", "replicasets"),
    ("Deployment", "apis/apps/v1", "deployments"),
    ("StatefulSet", "apis/apps/v1", "statefulsets"),
    ("DaemonSet", "apis/apps/v1", "daemonsets"),
    ("Job", "apis/batch/v1", "jobs"),
)


def _api_client(kubeconfig: str | None) -> httpx.Client:
    """An HTTP client for the API server, configured by the `kubernetes` package (kubeconfig or in-cluster)."""
    from kubernetes import client, config

    cfg = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    else:
        try:
            config.load_incluster_config(client_configuration=cfg)
        except config.ConfigException:
            config.load_kube_config(client_configuration=cfg)
    headers = {"Accept": "application/json"}
    token = cfg.get_api_key_with_prefix("BearerToken") if hasattr(cfg, "get_api_key_with_prefix") else None
    if token:
        headers["Authorization"] = token
    verify: Any = cfg.ssl_ca_cert or bool(cfg.verify_ssl)
    cert = (cfg.cert_file, cfg.key_file) if cfg.cert_file and cfg.key_file else None
    return httpx.Client(base_url=cfg.host, headers=headers, verify=verify, cert=cert, timeout=30.0)


def list_inventory(api: httpx.Client) -> Inventory:
    """One list of every resource the inventory needs (all namespaces)."""
    objects: list[tuple[str, dict[str, Any]]] = []
    for kind, group, resource in _RESOURCES:
        response = api.get(f"/{group}/{resource}")
        if response.status_code == 404 and kind == "Job":
            continue
        response.raise_for_status()
        data = json.loads(response.content)
        for item in data.get("items") or []:
            item.setdefault("kind", kind)
            objects.append((f"kubernetes:{resource}", item))
    return Inventory.build(objects)


class ApiPodCache:
    """The inventory from the Kubernetes API, relisted in the background; `take()` hands out a new one."""

    def __init__(self, kubeconfig: str | None, refresh: float, log: Callable[..., None]) -> None:
        self.refresh = refresh
        self.log = log
        try:
            self.api = _api_client(kubeconfig)
            self.inventory = list_inventory(self.api)
        except Exception as exc:  # config errors, connection errors, API errors
            raise InputError(f"cannot list from the Kubernetes API: {str(exc).splitlines()[0]}") from None
        self._fresh: Inventory | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="netguard-podcache", daemon=True)
        if refresh > 0:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.refresh):
            try:
                self._fresh = list_inventory(self.api)
            except Exception as exc:  # keep the last good inventory
                self.log("podcache_refresh_failed", error=str(exc).splitlines()[0])

    def take(self) -> Inventory | None:
        fresh, self._fresh = self._fresh, None
        return fresh

    def close(self) -> None:
        self._stop.set()
        self.api.close()
