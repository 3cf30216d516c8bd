"""Manifests -> lab pods and services (pure)."""

from __future__ import annotations

import pytest
import yaml

from netguard.errors import InputError
from netguard.inventory import Inventory, guess_workload, iter_objects
from netguard.lab.plan import build_plan
from netguard.lab.render import inventory
from tests.lab.conftest import BOOKINFO


def test_pods_are_named_and_owned_as_kubernetes_does():
    plan = build_plan(iter_objects([BOOKINFO]), "abcdefg", 3)
    names = [p.name for p in plan.pods]
    assert len(names) == 7 and len(set(names)) == 7
    for pod in plan.pods:
        assert guess_workload(pod.namespace, pod.name).kind == "Deployment"  # <deploy>-<hash>-<suffix>
        assert len(pod.veth) <= 15 and pod.veth.startswith("ng-abcdefg-")
        assert pod.ip.startswith("10.244.3.")
    assert plan.dns_ip == "10.96.3.10"
    inv = Inventory.build(("lab", item) for item in inventory(plan)["items"])
    assert {str(p.workload) for p in inv.pods} >= {"default/productpage-v1", "kube-system/coredns"}
    info = inv.workloads[next(p.workload for p in inv.pods if p.workload.name == "reviews-v2")]
    assert dict(info.selector.match_labels) == {"app": "reviews", "version": "v2"}  # no pod-template-hash


def test_statefulset_replicas_and_bad_names():
    docs = yaml.safe_load_all("""
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  selector: {matchLabels: {app: db}}
  template: {metadata: {labels: {app: db}}, spec: {containers: [{name: c, image: x}]}}
""")
    plan = build_plan((("m", d) for d in docs), "s", 1)
    assert [p.name for p in plan.pods if p.namespace == "default"] == ["db-0", "db-1"]
    with pytest.raises(InputError, match="invalid lab name"):
        build_plan(iter_objects([BOOKINFO]), "toolongname", 1)
    with pytest.raises(InputError, match="no Deployment"):
        build_plan([("m", {"kind": "Service", "metadata": {"name": "x"}, "spec": {}})], "s", 1)


def test_lab_and_agent_say_clearly_that_they_need_root(monkeypatch, capsys, tmp_path):
    import os

    from netguard.cli import main

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["lab", "up", "-f", str(BOOKINFO), "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert "needs root" in err and err.count("\n") == 1
    assert main(["agent", "--output", str(tmp_path / "f.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "needs root" in err and err.count("\n") == 1
    assert not (tmp_path / "f.jsonl").exists()  # nothing half-written
