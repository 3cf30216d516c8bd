"""The Kubernetes adapter against a stateful stand-in of the API server on 127.0.0.1."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from netguard.model import Workload
from policygen.controller.app import create_app
from policygen.controller.kube import Applier, Cluster, KubeInventory, load_cluster
from policygen.controller.metrics import Metrics
from tests.controller.conftest import AUTH, CLUSTER, batch, bookinfo_records
from tests.controller.standin import StandIn


def wait_for(condition, what: str, timeout: float = 15.0):
    """Poll until `condition()` is true (bounded); the assertion is on the state, not on the time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def bookinfo_objects() -> list[dict]:
    return [o for o in yaml.safe_load(CLUSTER.read_text())["items"] if o["kind"] != "NetworkPolicy"]


@pytest.fixture
def standin():
    s = StandIn(token="cluster-token")
    for obj in bookinfo_objects():
        s.put(obj)
    yield s
    s.close()


@pytest.fixture
def reflector(standin):
    metrics = Metrics()
    cluster = Cluster(host=standin.url, token="Bearer cluster-token")
    inv = KubeInventory(cluster, metrics=metrics, rebuild_interval=0, backoff=0.05).start()
    assert inv.wait_synced(30)
    inv.metrics_ = metrics
    yield inv
    inv.close()


def _pod(name: str, ip: str, app: str = "ratings", version: str = "v1", owner: str = "") -> dict:
    meta = {"name": name, "namespace": "default", "labels": {"app": app, "version": version}}
    if owner:
        meta["labels"]["pod-template-hash"] = owner.rsplit("-", 1)[1]
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "controller": True}]
    spec = {"nodeName": "node-1", "containers": [{"name": "c", "ports": [{"containerPort": 9080}]}]}
    return {"kind": "Pod", "metadata": meta, "spec": spec,
            "status": {"podIP": ip, "hostIP": "10.0.0.11"}}


def test_list_then_watch_builds_the_inventory_and_follows_changes(standin, reflector):
    _, inventory = reflector.snapshot()
    assert Workload("default", "Deployment", "ratings-v1") in inventory.workloads
    assert inventory.pod_by_ip["10.244.1.12"].workload == Workload("default", "Deployment", "ratings-v1")
    assert "kube-system" in inventory.namespaces
    # every kind was listed once and is being watched with the list's resourceVersion
    assert all(n == 1 for n in reflector.lists.values()), reflector.lists
    lists = [r for r in standin.requests if r["kind"] == "Pod" and not r["watch"]]
    watches = [r for r in standin.requests if r["watch"] and r["kind"] == "Pod"]
    assert len(lists) == 1 and watches
    assert watches[0]["query"]["resourceVersion"] == str(lists[0]["rv"])
    assert watches[0]["query"]["allowWatchBookmarks"] == "true"
    # a rescheduled pod: new name, new IP, same workload
    standin.delete("Pod", "default", "ratings-v1-7c9f8d6b4a-x12ab")
    standin.put(_pod("ratings-v1-7c9f8d6b4a-zz999", "10.244.2.50", owner="ratings-v1-7c9f8d6b4a"))
    inv = wait_for(lambda: (lambda i: i if "10.244.2.50" in i.pod_by_ip else None)(reflector.snapshot()[1]), "new pod")
    assert inv.pod_by_ip["10.244.2.50"].workload == Workload("default", "Deployment", "ratings-v1")
    assert "10.244.1.12" not in inv.pod_by_ip
    assert all(n == 1 for n in reflector.lists.values())  # followed by the watch, no relist
    # cluster-scoped admin policies are watched too (the CRDs exist here)
    standin.put({"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy",
                 "metadata": {"name": "deny-intruders"},
                 "spec": {"priority": 5, "subject": {"namespaces": {}},
                          "ingress": [{"action": "Deny", "from": [{"pods": {"podSelector": {"matchLabels": {"app": "x"}}}}]}]}})
    inv = wait_for(lambda: (lambda i: i if i.admin_policies else None)(reflector.snapshot()[1]), "admin policy")
    assert [p.name for p in inv.admin_policies] == ["deny-intruders"]


def test_the_watch_resumes_from_its_resource_version_after_a_dropped_connection(standin, reflector):
    rv_before = reflector.resource_versions["Pod"]
    watches_before = len([r for r in standin.requests if r["watch"] and r["kind"] == "Pod"])
    standin.drop_watches()
    wait_for(lambda: len([r for r in standin.requests if r["watch"] and r["kind"] == "Pod"]) > watches_before, "re-watch")
    resumed = [r for r in standin.requests if r["watch"] and r["kind"] == "Pod"][watches_before]
    assert resumed["query"]["resourceVersion"] == rv_before
    standin.put(_pod("intruder", "10.244.3.3", app="intruder"))
    wait_for(lambda: "10.244.3.3" in reflector.snapshot()[1].pod_by_ip, "pod added after the drop")
    assert reflector.lists["Pod"] == 1  # resumed, not relisted
    assert Workload("default", "Pod", "intruder") in reflector.snapshot()[1].workloads


def test_the_watch_relists_after_410_gone(standin, reflector):
    assert reflector.lists["Pod"] == 1
    # the pod goes away while the watch is cut, and the history is compacted past it: 410 on resume
    standin.delete("Pod", "default", "details-v1-6f7d9b8c5d-x11ab", quiet=True)
    wait_for(lambda: reflector.lists["Pod"] == 2, "relist")
    wait_for(lambda: "10.244.1.11" not in reflector.snapshot()[1].pod_by_ip, "deleted pod gone")
    errors = [r for r in standin.requests
              if r["watch"] and r["kind"] == "Pod" and int(r["query"]["resourceVersion"]) < standin.compacted]
    assert errors, "a watch from a compacted resourceVersion was made"
    assert reflector.metrics_.watch_restarts.labels(kind="Pod", reason="gone")._value.get() >= 1
    # after the relist it watches again from the new list's resourceVersion, and follows changes
    standin.put(_pod("late", "10.244.3.4", app="late"))
    wait_for(lambda: "10.244.3.4" in reflector.snapshot()[1].pod_by_ip, "pod after relist")


def test_the_kubeconfig_path_goes_through_the_kubernetes_client(standin, tmp_path: Path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "standin",
        "clusters": [{"name": "standin", "cluster": {"server": standin.url}}],
        "users": [{"name": "u", "user": {"token": "cluster-token"}}],
        "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "u"}}],
    }))
    cluster = load_cluster("kubeconfig", str(kubeconfig))
    assert cluster.host == standin.url
    with cluster.client() as client:
        response = client.get("/api/v1/namespaces", headers=cluster.headers())
    assert response.status_code == 200
    assert {i["metadata"]["name"] for i in response.json()["items"]} == {"default", "kube-system"}
    with cluster.client() as client:
        assert client.get("/api/v1/namespaces").status_code == 401  # the stand-in checks the token


def _protect_controller(make_controller, standin, reflector, **kw):
    cluster = Cluster(host=standin.url, token="Bearer cluster-token")
    return make_controller(inventory=[], source=reflector, applier=Applier(cluster), **kw)


def test_apply_goes_through_dry_run_then_apply_and_removes_cleanly(make_controller, standin, reflector):
    ns = standin.get("Namespace", "", "default")
    ns["metadata"]["labels"]["netguard.io/mode"] = "protect"
    standin.put(ns)
    wait_for(lambda: reflector.snapshot()[1].namespaces["default"].get("netguard.io/mode") == "protect", "label")
    controller = _protect_controller(make_controller, standin, reflector)
    with TestClient(create_app(controller)) as client:
        assert client.post("/api/v1/flows", json=batch(bookinfo_records()), headers=AUTH).status_code == 200
        for w in ("default/Deployment/ratings-v1", "default/Deployment/details-v1"):
            assert client.post("/api/v1/policies/approve", json={"workload": w, "decision": "approved"},
                               headers=AUTH).status_code == 200
        assert client.post("/api/v1/policies/apply").status_code == 401
        before = len(standin.requests)
        response = client.post("/api/v1/policies/apply", headers=AUTH)
        assert response.status_code == 200, response.text
        result = response.json()
        assert [a["ref"] for a in result["applied"]] == ["default/netguard-details-v1", "default/netguard-ratings-v1"]
        patches = [r for r in standin.requests[before:] if r["method"] == "PATCH"]
        assert [(r["path"].rsplit("/", 1)[1], r["query"].get("dryRun")) for r in patches] == [
            ("netguard-details-v1", "All"), ("netguard-ratings-v1", "All"),
            ("netguard-details-v1", None), ("netguard-ratings-v1", None)]
        assert all(r["query"]["fieldManager"] == "netguard" and r["content_type"] == "application/apply-patch+yaml"
                   for r in patches)
        stored = standin.get("NetworkPolicy", "default", "netguard-ratings-v1")
        assert stored["metadata"]["managedFields"][0]["manager"] == "netguard"
        generated = next(p for p in client.get("/api/v1/policies").json()["policies"] if p["name"] == "netguard-ratings-v1")
        assert stored["spec"] == generated["policy"]["spec"]
        # the watch brings the applied policies back into the inventory: the diff no longer lists them as new
        wait_for(lambda: len(reflector.snapshot()[1].policies) == 2, "policies watched back")
        changes = {c["ref"]: c["status"] for c in client.get("/api/v1/policies/diff").json()["changes"]}
        assert changes["default/netguard-ratings-v1"] not in ("added", "new")
        # remove cleanly: only what netguard applied
        standin.put({"kind": "NetworkPolicy", "metadata": {"name": "someone-elses", "namespace": "default"},
                     "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
        response = client.delete("/api/v1/policies/apply", headers=AUTH)
        assert response.json()["removed"] == ["default/netguard-details-v1", "default/netguard-ratings-v1"]
        assert standin.get("NetworkPolicy", "default", "netguard-ratings-v1") is None
        assert standin.get("NetworkPolicy", "default", "someone-elses") is not None
        assert controller.store.applied() == {}


def test_a_failed_dry_run_applies_nothing_and_other_modes_are_skipped(make_controller, standin, reflector):
    controller = _protect_controller(make_controller, standin, reflector, namespaces={"default": "protect"})
    controller.ingest(json.dumps(batch(bookinfo_records())).encode())
    controller.approve("default/Deployment/ratings-v1", "approved")
    controller.approve("default/Deployment/reviews-v1", "approved")
    standin.reject.add("netguard-reviews-v1")
    result = controller.apply()
    assert [e["ref"] for e in result["errors"]] == ["default/netguard-reviews-v1"]
    assert result["errors"][0]["stage"] == "dry-run" and result["applied"] == []
    assert not [r for r in standin.requests if r["method"] == "PATCH" and "dryRun" not in r["query"]]
    assert standin.get("NetworkPolicy", "default", "netguard-ratings-v1") is None
    # a namespace in monitor mode is not touched
    controller.settings.namespaces["default"] = "monitor"
    controller._inv_gen = -2  # re-read the modes
    standin.reject.clear()
    result = controller.apply()
    assert result["applied"] == [] and {s["workload"] for s in result["skipped"]} == {
        "default/Deployment/ratings-v1", "default/Deployment/reviews-v1"}


def test_a_silent_half_open_watch_is_taken_for_dead_and_resumed(standin):
    metrics = Metrics()
    cluster = Cluster(host=standin.url, token="Bearer cluster-token")
    inv = KubeInventory(cluster, kinds={"Namespace": "/api/v1/namespaces", "Pod": "/api/v1/pods"}, metrics=metrics,
                        rebuild_interval=0, backoff=0.05, watch_timeout=1, silence=0.5).start()
    try:
        assert inv.wait_synced(30)
        standin.set_frozen(True)
        standin.drop_watches()
        standin.put(_pod("while-silent", "10.244.4.4", app="silent"))
        wait_for(lambda: metrics.watch_restarts.labels(kind="Pod", reason="dropped")._value.get() >= 1, "read timeout")
        assert "10.244.4.4" not in inv.snapshot()[1].pod_by_ip
        standin.set_frozen(False)
        wait_for(lambda: "10.244.4.4" in inv.snapshot()[1].pod_by_ip, "pod seen once the watch is alive again")
        assert inv.lists["Pod"] == 1  # resumed from its resourceVersion, no relist
    finally:
        inv.close()


def test_a_controller_process_runs_against_the_cluster_from_a_kubeconfig(standin, controller_process, tmp_path: Path,
                                                                        token_file):
    import httpx

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "standin",
        "clusters": [{"name": "standin", "cluster": {"server": standin.url}}],
        "users": [{"name": "u", "user": {"token": "cluster-token"}}],
        "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "u"}}],
    }))
    ns = standin.get("Namespace", "", "default")
    ns["metadata"]["labels"]["netguard.io/mode"] = "protect"
    standin.put(ns)
    ctl = controller_process("--db", str(tmp_path / "k.db"), "--token-file", str(token_file), "--kubeconfig", str(kubeconfig))
    response = httpx.post(ctl.url + "/api/v1/flows", json=batch(bookinfo_records()), headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    policies = httpx.get(ctl.url + "/api/v1/policies", timeout=30).json()["policies"]
    assert {p["workload"] for p in policies} >= {"default/Deployment/ratings-v1", "default/Deployment/productpage-v1"}
    assert httpx.post(ctl.url + "/api/v1/policies/approve", json={"workload": "default/Deployment/ratings-v1",
                      "decision": "approved"}, headers=AUTH, timeout=30).status_code == 200
    result = httpx.post(ctl.url + "/api/v1/policies/apply", headers=AUTH, timeout=30).json()
    assert [a["ref"] for a in result["applied"]] == ["default/netguard-ratings-v1"]
    assert standin.get("NetworkPolicy", "default", "netguard-ratings-v1") is not None
    assert any(r["kind"] == "Deployment" and r["watch"] for r in standin.requests)
