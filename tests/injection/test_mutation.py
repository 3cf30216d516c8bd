"""The one mutation, on pods and workload templates: takeover, iptables, probes, opt-in, leaving alone."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.injection.conftest import make_pod, validate_all_versions
from waf.injection import Settings, inject_object, inject_pod
from waf.injection.mutation import INIT, SIDECAR, Result
from waf.injection.settings import NativeSidecar


def containers(pod):
    return {c["name"]: c for c in pod["spec"]["containers"]}


def test_takeover_gives_the_sidecar_the_named_port_and_moves_the_app(pod):
    out = inject_pod(pod)
    assert out.changed and out.warnings == ()
    c = containers(out.pod)
    assert c[SIDECAR]["ports"][0] == {"name": "http", "containerPort": 8080, "protocol": "TCP"}
    assert c[SIDECAR]["command"][:6] == [
        "netguard",
        "waf",
        "--listen",
        "0.0.0.0:8080",
        "--upstream",
        "http://127.0.0.1:15081",
    ]
    app_ports = {p["name"]: p["containerPort"] for p in c["web"]["ports"]}
    assert app_ports == {"app-http": 15081, "admin": 9000}
    assert {"name": "PORT", "value": "15081"} in c["web"]["env"]
    validate_all_versions(out.pod)


def test_takeover_probes_go_around_the_sidecar_to_the_app(pod):
    app = containers(inject_pod(pod).pod)["web"]
    assert app["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 15081}  # was the name http
    assert app["livenessProbe"]["tcpSocket"] == {"port": 15081}  # was the number 8080
    assert app["startupProbe"]["httpGet"]["port"] == "admin"  # another port: untouched


def test_the_sidecar_has_its_own_health_probes_and_runs_unprivileged(pod):
    sidecar = containers(inject_pod(pod).pod)[SIDECAR]
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert sidecar["securityContext"]["runAsNonRoot"] is True
    assert sidecar["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "sysctls" not in inject_pod(pod).pod["spec"].get("securityContext", {})


def test_injecting_twice_changes_nothing(pod):
    once = inject_pod(pod).pod
    twice = inject_pod(once)
    assert not twice.changed and twice.warnings == ()
    assert twice.pod == once


def test_the_input_is_not_modified(pod):
    before = copy.deepcopy(pod)
    inject_pod(pod)
    assert pod == before


def test_a_pod_that_did_not_opt_in_is_returned_unchanged(pod):
    del pod["metadata"]["labels"]["netguard.io/waf"]
    out = inject_pod(pod)
    assert (out.changed, out.warnings, out.pod) == (False, (), pod)


def test_the_annotation_opts_in_and_disabled_opts_out(pod):
    del pod["metadata"]["labels"]["netguard.io/waf"]
    pod["metadata"]["annotations"] = {"netguard.io/waf": "enabled"}
    assert inject_pod(pod).changed
    pod["metadata"]["labels"]["netguard.io/waf"] = "enabled"
    pod["metadata"]["annotations"] = {"netguard.io/waf": "disabled"}
    assert not inject_pod(pod).changed


def test_an_odd_opt_in_value_is_left_alone_and_said(pod):
    pod["metadata"]["labels"]["netguard.io/waf"] = "yes"
    out = inject_pod(pod)
    assert not out.changed and "neither enabled nor disabled" in out.warnings[0]
    assert out.warnings[0].startswith("Pod shop/web:")


def test_settings_come_from_annotations(pod):
    pod["metadata"]["annotations"] = {
        "netguard.io/waf-mode": "detect",
        "netguard.io/waf-paranoia": "3",
        "netguard.io/waf-body-limit": "64Ki",
        "netguard.io/waf-memory-limit": "512Mi",
        "netguard.io/waf-cpu-limit": "500m",
        "netguard.io/waf-config": "web-waf",
        "netguard.io/waf-app-port": "18080",
        "netguard.io/waf-app-port-env": "HTTP_PORT",
    }
    out = inject_pod(pod).pod
    sidecar = containers(out)[SIDECAR]
    command = sidecar["command"]
    assert command[command.index("--mode") + 1] == "detect"
    assert command[-4:] == ["--paranoia", "3", "--config", "/etc/netguard/waf/waf.yaml"]
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["NETGUARD_WAF_BODY_LIMIT"] == str(64 * 1024)
    assert sidecar["resources"]["limits"] == {"memory": "512Mi", "cpu": "500m"}
    assert {"name": "netguard-waf-config", "configMap": {"name": "web-waf"}} in out["spec"]["volumes"]
    assert {"name": "HTTP_PORT", "value": "18080"} in containers(out)["web"]["env"]
    validate_all_versions(out)


@pytest.mark.parametrize(
    "key,value",
    [
        ("netguard.io/waf-mode", "drop"),
        ("netguard.io/waf-paranoia", "9"),
        ("netguard.io/waf-body-limit", "lots"),
        ("netguard.io/waf-app-port", "70000"),
        ("netguard.io/waf-redirect", "ebpf"),
        ("netguard.io/waf-memory-limit", "a lot"),
        ("netguard.io/waf-port", "grpc"),
    ],
)
def test_a_bad_annotation_leaves_the_pod_alone_and_names_it(pod, key, value):
    pod["metadata"]["annotations"] = {key: value}
    out = inject_pod(pod)
    assert not out.changed and out.pod == pod
    assert ("waf-port" in out.warnings[0]) if key.endswith("waf-port") else (key in out.warnings[0])


def test_null_maps_and_lists_are_read_as_empty_like_the_api_server_does(pod):
    pod["metadata"]["annotations"] = None
    pod["spec"].update(volumes=None, securityContext=None)
    pod["spec"]["containers"][0].update(env=None)
    pod["spec"]["containers"][0]["ports"][0]["containerPort"] = 80
    out = inject_pod(pod)
    assert out.changed, out.warnings
    assert out.pod["spec"]["securityContext"]["sysctls"][0]["value"] == "80"
    assert containers(out.pod)["web"]["env"] == [{"name": "PORT", "value": "15081"}]
    validate_all_versions(out.pod)
    pod["metadata"]["annotations"] = {"netguard.io/waf-config": "web-waf"}
    assert inject_pod(pod).pod["spec"]["volumes"] == [
        {"name": "netguard-waf-config", "configMap": {"name": "web-waf"}}
    ]


def test_the_app_env_var_replaces_an_existing_one(pod):
    pod["spec"]["containers"][0]["env"] = [{"name": "PORT", "value": "8080"}, {"name": "X", "value": "1"}]
    env = containers(inject_pod(pod).pod)["web"]["env"]
    assert env == [{"name": "PORT", "value": "15081"}, {"name": "X", "value": "1"}]


def unnamed_pod(**app: object) -> dict:
    """A front end like Bank of Anthos': one unnamed port 8080, probes on the number, PORT=8080."""
    pod = make_pod()
    web = pod["spec"]["containers"][0]
    web["ports"] = [{"containerPort": 8080}]
    web["env"] = [{"name": "VERSION", "value": "v1"}, {"name": "PORT", "value": "8080"}]
    web["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8080}}
    web["lifecycle"] = {"preStop": {"httpGet": {"path": "/quit", "port": 8080}}}
    del web["startupProbe"]
    web.update(app)
    return pod


def test_an_unnamed_port_is_taken_over_and_the_variable_carrying_it_is_rewritten():
    out = inject_pod(unnamed_pod())
    assert out.changed, out.warnings
    web, waf = out.pod["spec"]["containers"]
    assert waf["name"] == SIDECAR and waf["ports"][0] == {"containerPort": 8080, "protocol": "TCP"}
    assert "--upstream" in waf["command"] and "http://127.0.0.1:15081" in waf["command"]
    assert web["ports"] == [{"containerPort": 15081}]
    assert web["env"] == [{"name": "VERSION", "value": "v1"}, {"name": "PORT", "value": "15081"}]
    assert web["readinessProbe"]["httpGet"]["port"] == 15081 and web["livenessProbe"]["tcpSocket"]["port"] == 15081
    assert web["lifecycle"]["preStop"]["httpGet"]["port"] == 15081
    assert json.loads(out.pod["metadata"]["annotations"]["netguard.io/waf-status"])["env"] == "PORT"
    assert "the app moves to 15081 (PORT=15081)" in out.how
    validate_all_versions(out.pod)


def test_the_annotation_names_the_variable_when_none_carries_the_port():
    pod = unnamed_pod(env=[{"name": "VERSION", "value": "v1"}])
    pod["metadata"]["annotations"] = {"netguard.io/waf-app-port-env": "HTTP_PORT"}
    out = inject_pod(pod)
    assert containers(out.pod)["web"]["env"] == [{"name": "VERSION", "value": "v1"}, {"name": "HTTP_PORT", "value": "15081"}]


@pytest.mark.parametrize(
    "app,why",
    [
        ({"env": [{"name": "VERSION", "value": "v1"}]}, "has no name and no env var of the container carries 8080"),
        ({"env": [{"name": "PORT", "value": "8080"}, {"name": "LISTEN", "value": "8080"}]}, "env vars PORT, LISTEN of container web all carry 8080"),
        ({"args": ["--bind", "0.0.0.0:8080"]}, "names port 8080 on its command line (args[1] '0.0.0.0:8080')"),
        ({"command": ["web", "--port=8080"]}, "(command[1] '--port=8080'), so it would not move: write $(PORT) there"),
    ],
)
def test_no_safe_way_to_move_the_app_leaves_it_alone_and_says_exactly_why(app, why):
    pod = unnamed_pod(**app)
    out = inject_pod(pod)
    assert out.result is Result.LEFT_ALONE and out.pod == pod
    assert why in out.warnings[0] and out.warnings[0].startswith("Pod shop/web: "), out.warnings


def test_a_command_line_reading_the_variable_is_fine_and_other_numbers_do_not_count():
    out = inject_pod(unnamed_pod(args=["--port=$(PORT)", "--workers=18080", "--timeout=80800"]))
    assert out.changed, out.warnings


def test_iptables_mode_adds_the_redirecting_init_container_and_keeps_the_app():
    pod = make_pod()
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 9080}]
    pod["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"path": "/", "port": 9080}}
    pod["metadata"]["annotations"] = {"netguard.io/waf-redirect": "iptables"}
    out = inject_pod(pod)
    assert out.changed
    init = out.pod["spec"]["initContainers"][0]
    assert init["name"] == INIT
    assert init["securityContext"]["capabilities"]["add"] == ["NET_ADMIN", "NET_RAW"]
    script = init["command"][2]
    assert "--dport 9080 -j REDIRECT --to-ports 15080" in script
    assert "--dport 15021 -j REDIRECT --to-ports 9080" in script
    app = containers(out.pod)["web"]
    assert app["ports"] == [{"containerPort": 9080}] and "env" not in app
    assert app["readinessProbe"]["httpGet"]["port"] == 15021  # probe port: redirected to the app itself
    sidecar = containers(out.pod)[SIDECAR]
    assert "http://127.0.0.1:9080" in sidecar["command"] and "0.0.0.0:15080" in sidecar["command"]
    validate_all_versions(out.pod)
    assert inject_pod(out.pod).pod == out.pod


def test_the_waf_port_annotation_chooses_among_several_ports(pod):
    pod["spec"]["containers"][0]["ports"] = [
        {"name": "web", "containerPort": 3000},
        {"name": "metrics", "containerPort": 9090},
    ]
    assert "cannot tell which port" in inject_pod(pod).warnings[0]
    pod["metadata"]["annotations"] = {"netguard.io/waf-port": "web"}
    sidecar = containers(inject_pod(pod).pod)[SIDECAR]
    assert sidecar["ports"][0] == {"name": "web", "containerPort": 3000, "protocol": "TCP"}


def test_a_service_that_selects_the_pod_names_the_port(pod):
    pod["spec"]["containers"][0]["ports"] = [
        {"name": "web", "containerPort": 3000},
        {"name": "metrics", "containerPort": 9090},
    ]
    service = {
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "web"}]},
    }
    other_ns = copy.deepcopy(service)
    other_ns["metadata"]["namespace"] = "elsewhere"
    other_ns["spec"]["ports"][0]["targetPort"] = "metrics"
    out = inject_pod(pod, services=[other_ns, service])
    assert containers(out.pod)[SIDECAR]["ports"][0]["name"] == "web"
    service["spec"]["ports"].append({"port": 9090, "targetPort": 9090, "name": "m"})
    assert "several ports" in inject_pod(pod, services=[service]).warnings[0]


def test_a_port_below_1024_is_bound_through_the_safe_sysctl_not_a_capability(pod):
    pod["spec"]["containers"][0]["ports"][0]["containerPort"] = 80
    out = inject_pod(pod).pod
    assert out["spec"]["securityContext"]["sysctls"] == [
        {"name": "net.ipv4.ip_unprivileged_port_start", "value": "80"}
    ]
    validate_all_versions(out)


@pytest.mark.parametrize(
    "change,reason",
    [
        (lambda p: p["spec"].update(hostNetwork=True), "hostNetwork"),
        (lambda p: p["spec"].update(restartPolicy="Never"), "run-to-completion"),
        (lambda p: p["spec"].update(containers="web"), "not a list of containers"),
        (
            lambda p: p["spec"]["containers"][0].update(ports=[{"containerPort": "8080"}]),
            "ports are not a list",
        ),
        (lambda p: p["spec"]["containers"][0]["ports"][0].update(protocol="UDP"), "UDP"),
        (
            lambda p: p["spec"]["containers"][0]["ports"][1].update(containerPort=15081),
            "15081 is already used",
        ),
        (lambda p: p.pop("spec"), "no pod spec"),
        (lambda p: p["spec"].update(os={"name": "windows"}), "a windows pod"),
        (
            lambda p: (
                p["metadata"].update(annotations={"netguard.io/waf-redirect": "iptables"}),
                p["spec"]["containers"].append({"name": "istio-proxy", "image": "istio/proxyv2"}),
            ),
            "istio-proxy already redirects",
        ),
    ],
)
def test_pods_it_does_not_understand_are_left_alone_with_the_reason(pod, change, reason):
    change(pod)
    out = inject_pod(pod)
    assert not out.changed and out.pod == pod
    assert reason in out.warnings[0] and out.warnings[0].endswith("left alone")


def test_workload_templates_are_injected_and_the_rest_kept():
    template = make_pod()
    del template["apiVersion"], template["kind"]
    del template["metadata"]["name"], template["metadata"]["namespace"]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template},
    }
    out = inject_object(deployment)
    assert out.changed and SIDECAR in containers(out.pod["spec"]["template"])
    assert out.pod["spec"]["selector"] == deployment["spec"]["selector"]
    validate_all_versions(out.pod)
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": copy.deepcopy(template)}}},
    }
    cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    out = inject_object(cron)
    assert not out.changed and out.warnings[0].startswith("CronJob nightly: restartPolicy OnFailure")
    assert inject_object({"kind": "ConfigMap", "data": {}}).changed is False


def test_the_status_annotation_records_what_was_done(pod):
    annotations = inject_pod(pod).pod["metadata"]["annotations"]
    assert json.loads(annotations["netguard.io/waf-status"]) == {
        "redirect": "takeover",
        "container": "web",
        "port": 8080,
        "upstream": 15081,
        "listen": 8080,
        "env": "PORT",
    }
    assert annotations["kubectl.kubernetes.io/default-container"] == "web"


def test_unset_paranoia_and_body_limit_are_left_to_the_waf_and_its_config(pod):
    sidecar = containers(inject_pod(pod).pod)[SIDECAR]
    assert "--paranoia" not in sidecar["command"]
    assert "NETGUARD_WAF_BODY_LIMIT" not in {e["name"] for e in sidecar["env"]}
    assert sidecar["command"][-6:] == ["--metrics-listen", "0.0.0.0:9102", "--audit-log", "-", "--workers", "1"]


@pytest.mark.parametrize("limit,workers", [(None, 1), ("500m", 1), ("1", 1), ("1500m", 2), ("2", 2), ("3.5", 4)])
def test_the_sidecar_runs_one_worker_per_cpu_of_its_limit(pod, limit, workers):
    """Without a CPU limit one worker (not every CPU of the node, each worker costing memory under the one
    memory limit); with one, a worker per CPU, rounded up."""
    if limit is not None:
        pod["metadata"]["annotations"] = {"netguard.io/waf-cpu-limit": limit}
    command = containers(inject_pod(pod).pod)[SIDECAR]["command"]
    assert command[command.index("--workers") + 1] == str(workers)


def test_the_image_comes_from_the_defaults(pod):
    out = inject_pod(pod, defaults=Settings(image="registry.local/netguard:dev"))
    assert containers(out.pod)[SIDECAR]["image"] == "registry.local/netguard:dev"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "ports",
                    "containerPort",
                    "containers",
                    "spec",
                    "metadata",
                    "labels",
                    "hostNetwork",
                    "annotations",
                    "netguard.io/waf",
                    "protocol",
                    "env",
                    "readinessProbe",
                    "httpGet",
                    "port",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=25,
)


ports = st.fixed_dictionaries(
    {"containerPort": st.integers(1, 70000)},
    optional={
        "name": st.sampled_from(["http", "web", 7]) | json_values,
        "protocol": json_values,
        "hostPort": json_values,
    },
)
container = st.fixed_dictionaries(
    {"name": st.sampled_from(["a", "b", "netguard-waf"]), "ports": st.lists(ports, max_size=3)},
    optional={
        "env": json_values,
        "readinessProbe": json_values,
        "lifecycle": json_values,
        "livenessProbe": st.fixed_dictionaries({"httpGet": st.fixed_dictionaries({"port": json_values})}),
    },
)


@settings(max_examples=400, deadline=None)
@given(
    containers=st.lists(container, max_size=3) | json_values,
    extra=json_values,
    annotations=st.dictionaries(
        st.sampled_from(
            [
                "netguard.io/waf-port",
                "netguard.io/waf-redirect",
                "netguard.io/waf-config",
                "netguard.io/waf-mode",
            ]
        ),
        st.sampled_from(["http", "iptables", "cfg", "7"]) | json_values,
        max_size=3,
    ),
)
def test_it_never_raises_whatever_the_pod_looks_like(containers, extra, annotations):
    spec = {"containers": containers}
    if isinstance(extra, dict):
        spec.update(extra)
    pod = {"metadata": {"labels": {"netguard.io/waf": "enabled"}, "annotations": annotations}, "spec": spec}
    before = copy.deepcopy(pod)
    out = inject_pod(pod)
    assert pod == before
    assert out.changed or out.pod == pod


def native(pod, **settings_kw):
    return inject_pod(pod, defaults=Settings(**settings_kw))


def test_a_native_sidecar_is_a_restartable_init_container_that_starts_before_the_app():
    out = native(unnamed_pod(), native_sidecar=NativeSidecar.ALWAYS)
    assert out.changed, out.warnings
    spec = out.pod["spec"]
    assert [c["name"] for c in spec["containers"]] == ["web"]
    (waf,) = spec["initContainers"]
    assert waf["name"] == SIDECAR and waf["restartPolicy"] == "Always"
    assert waf["startupProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}  # the app starts once the WAF listens
    assert waf["ports"][0] == {"containerPort": 8080, "protocol": "TCP"}
    assert list(spec) == ["initContainers", "containers"]
    assert json.loads(out.pod["metadata"]["annotations"]["netguard.io/waf-status"])["sidecar"] == "native"
    assert out.how.endswith(", as a native sidecar")
    validate_all_versions(out.pod)
    assert native(out.pod, native_sidecar=NativeSidecar.ALWAYS).result is Result.ALREADY_INJECTED


def test_a_native_sidecar_comes_after_the_iptables_init_container_and_before_the_pods_own():
    pod = make_pod()
    pod["metadata"]["annotations"] = {"netguard.io/waf-redirect": "iptables"}
    pod["spec"]["initContainers"] = [{"name": "migrate", "image": "example/migrate:1"}]
    out = native(pod, native_sidecar=NativeSidecar.ALWAYS)
    assert [c["name"] for c in out.pod["spec"]["initContainers"]] == [INIT, SIDECAR, "migrate"]
    validate_all_versions(out.pod)


def test_a_job_is_protected_by_a_native_sidecar_and_left_alone_without_one():
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "crawl", "namespace": "shop"},
        "spec": {"template": {**unnamed_pod(), "spec": {**unnamed_pod()["spec"], "restartPolicy": "Never"}}},
    }
    job["spec"]["template"].pop("apiVersion"), job["spec"]["template"].pop("kind")
    left = inject_object(job)
    assert left.result is Result.LEFT_ALONE and "a native sidecar would not" in left.warnings[0]
    out = inject_object(job, defaults=Settings(native_sidecar=NativeSidecar.ALWAYS))
    assert out.changed and out.pod["spec"]["template"]["spec"]["initContainers"][0]["restartPolicy"] == "Always"
    validate_all_versions(out.pod)


@pytest.mark.parametrize(
    "version,named,expected",
    [
        (None, False, False),  # the API server could not be asked: a plain container works everywhere
        ((1, 28), False, False),
        ((1, 29), False, True),
        ((1, 29), True, False),  # a Service's targetPort name would not resolve to an init container's port
        ((1, 32), True, False),
        ((1, 33), True, True),
        ((2, 0), True, True),
    ],
)
def test_auto_asks_for_a_version_that_runs_native_sidecars_safely(version, named, expected):
    pod = make_pod() if named else unnamed_pod()
    out = native(pod, native_sidecar=NativeSidecar.AUTO, cluster_version=version)
    assert out.changed, out.warnings
    assert ("initContainers" in out.pod["spec"]) is expected


def test_the_annotation_chooses_per_pod():
    pod = unnamed_pod()
    pod["metadata"]["annotations"] = {"netguard.io/waf-native-sidecar": "never"}
    assert "initContainers" not in native(pod, native_sidecar=NativeSidecar.ALWAYS).pod["spec"]
    pod["metadata"]["annotations"] = {"netguard.io/waf-native-sidecar": "always"}
    assert "initContainers" in inject_pod(pod).pod["spec"]
    pod["metadata"]["annotations"] = {"netguard.io/waf-native-sidecar": "sometimes"}
    assert "want auto, always or never" in inject_pod(pod).warnings[0]


def test_the_webhook_sees_no_service_so_an_undeclared_port_needs_the_annotation_and_the_reason_names_it():
    pod = unnamed_pod()
    del pod["spec"]["containers"][0]["ports"]  # Bank of Anthos declares none: its Service targets 8080
    out = inject_pod(pod)
    assert out.result is Result.LEFT_ALONE
    assert out.warnings[0].endswith("(set netguard.io/waf-port: the probes use 8080); left alone"), out.warnings
    pod["metadata"]["annotations"] = {"netguard.io/waf-port": "8080"}
    out = inject_pod(pod)
    assert out.changed and containers(out.pod)["web"]["ports"] == [{"containerPort": 15081, "protocol": "TCP"}]
    validate_all_versions(out.pod)
