"""The pod cache from the Kubernetes API (`--kube`): listed, then watched, against the stateful stand-in of
the API server on 127.0.0.1 (tests/controller/standin.py) that the controller's reflector is tested with."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from netguard.agent.metrics import Metrics
from netguard.agent.podcache import KINDS, MAX_SHARE, ApiPodCache
from netguard.kube import Cluster, KubeInventory
from netguard.model import Edge
from tests.controller.standin import StandIn
from tests.controller.test_kube import _pod, wait_for

CLUSTER = Path(__file__).parent.parent / "policygen" / "data" / "bookinfo-cluster.yaml"
TOKEN = "t0ken"


@pytest.fixture
def standin():
    s = StandIn(token=TOKEN)
    for obj in yaml.safe_load(CLUSTER.read_text())["items"]:
        if obj["kind"] != "NetworkPolicy":
            s.put(obj)
    yield s
    s.close()


def kubeconfig(tmp_path: Path, url: str, token: str = TOKEN) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": url}}],
        "users": [{"name": "agent", "user": {"token": token}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "agent"}}],
    }))
    return path


@pytest.fixture
def make_cache(standin, tmp_path: Path):
    made: list[ApiPodCache] = []

    def make(refresh: float = 600.0) -> ApiPodCache:
        cache = ApiPodCache(str(kubeconfig(tmp_path, standin.url)), refresh, lambda *a, **k: None, metrics=Metrics(),
                            rebuild_interval=0)
        cache.source.backoff = 0.05
        made.append(cache)
        return cache

    yield make
    for cache in made:
        cache.close()


def known_ip(cache: ApiPodCache, ip: str) -> bool:
    fresh = cache.take()
    if fresh is not None:
        cache.inventory = fresh
    return ip in cache.inventory.pod_by_ip


def test_a_pod_that_appears_or_goes_is_known_by_the_watch_without_a_relist(make_cache, standin):
    cache = make_cache()
    assert cache.take() is None  # nothing changed since the start
    standin.put(_pod("ratings-v1-new", "10.244.9.9", owner="ratings-v1-7c9f8d6b4a"))
    wait_for(lambda: known_ip(cache, "10.244.9.9"), "the new pod in the agent's inventory")
    standin.delete("Pod", "default", "ratings-v1-new")
    wait_for(lambda: not known_ip(cache, "10.244.9.9"), "the deleted pod gone")
    assert cache.source.lists["Pod"] == 1  # by the watch, not by listing again
    wait_for(lambda: {r["kind"] for r in standin.requests if r.get("watch")} >= set(KINDS), "every kind watched")


def test_a_bookmark_keeps_the_watch_resumable_after_compaction_and_without_it_410_relists(make_cache, standin):
    cache = make_cache()
    source = cache.source
    rv = standin.bookmark("Pod")  # the resourceVersion moved on elsewhere; the pod watch is told
    wait_for(lambda: source.resource_versions["Pod"] == str(rv), "the bookmark's resourceVersion taken")
    standin.compact()
    standin.drop_watches()  # every watch resumes from its resourceVersion
    standin.put(_pod("ratings-v1-after", "10.244.9.8", owner="ratings-v1-7c9f8d6b4a"))
    wait_for(lambda: known_ip(cache, "10.244.9.8"), "the pod added after the resume")
    assert source.lists["Pod"] == 1  # resumed from the bookmark: no relist
    # no bookmark for services: their watch's resourceVersion was compacted away, so 410 Gone and a relist
    wait_for(lambda: source.lists["Service"] == 2, "the services listed again")
    restarts = source.metrics.watch_restarts
    assert restarts.labels(kind="Service", reason="gone")._value.get() >= 1
    assert restarts.labels(kind="Pod", reason="gone")._value.get() == 0


def test_refresh_is_a_full_relist_under_the_watch(make_cache):
    cache = make_cache(refresh=1.0)
    wait_for(lambda: cache.source.lists["Pod"] >= 2, "a periodic relist", timeout=20)
    assert cache.source.metrics.watch_restarts.labels(kind="Pod", reason="relist")._value.get() >= 1


def test_agent_resolves_edges_with_a_pod_cache_from_the_api(tmp_path, standin):
    from scapy.layers.inet import IP, TCP
    from scapy.utils import wrpcap

    config = kubeconfig(tmp_path, standin.url)
    pcap = tmp_path / "cap.pcap"
    wrpcap(str(pcap), [IP(src="10.244.1.10", dst="10.96.10.11") / TCP(sport=40000, dport=9080, flags="S")])
    edges = tmp_path / "edges.json"
    command = [sys.executable, "-m", "netguard", "agent", "--source", "pcap", "--pcap", str(pcap), "--kube",
               "--kubeconfig", str(config), "--edges", str(edges)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    listed = {r["kind"] for r in standin.requests if not r.get("watch")}
    assert {"Pod", "Deployment"} <= listed
    result = json.loads(edges.read_text())
    assert [(e["src"], e["dst"], e["port"], e.get("via_service")) for e in result] == [
        ("w:default/Deployment/productpage-v1", "w:default/Deployment/details-v1", 9080, "default/details")]
    assert [Edge.from_record(r).to_record() for r in result] == result  # the one edge record
    # a wrong token: one clear line, exit 2
    kubeconfig(tmp_path, standin.url, token="wrong")
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "cannot list from the Kubernetes API" in proc.stderr


def test_rebuilds_are_spaced_to_keep_them_under_a_share_of_a_core(standin):
    """A rebuild is the whole inventory (2 s of CPU at 20,000 pods): on a node, pod churn must not take a
    core. Each rebuild here "costs" 0.5 s of CPU (a stand-in clock), so at a tenth of a core the next one
    waits 5 s."""
    ticks = itertools.count(0.0, 0.5)
    source = KubeInventory(Cluster(host=standin.url, token=f"Bearer {TOKEN}"), KINDS, rebuild_interval=1.0,
                           max_share=MAX_SHARE, cpu_clock=lambda: next(ticks)).start()
    try:
        assert source.wait_synced(30)
        assert source.rebuild_spacing == 0.5 / MAX_SHARE == 5.0
    finally:
        source.close()
