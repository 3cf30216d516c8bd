"""The sidecar injection itself: one pure function from a pod (or pod template) to the injected pod.

Both the admission webhook and `netguard inject` call `inject_pod` (or `inject_object`, which finds the
pod template inside a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob). Nothing here does
I/O, and the input is never modified: the result is a new dict.

Two ways to put the WAF in front of the app's port:

* takeover (the default, no privileges): the sidecar takes the guarded port's number (and its name, when
  it has one), so a Service that targets the name or the number now reaches the WAF; the app's port moves
  to `app_port` (15081) (a named one is renamed `app-<name>`), and the app is told its new port through
  the env var that already carries the port (`PORT: "8080"` is rewritten), the one the
  `netguard.io/waf-app-port-env` annotation names, or, for a named port only, `PORT`. An unnamed port
  with no such variable is left alone: nothing would tell the app to move. So is an app whose command
  line names the port's number (it would keep listening there).
* iptables (opt in with `netguard.io/waf-redirect: iptables`): an init container with NET_ADMIN adds
  nat PREROUTING rules that redirect the app's port to the sidecar (15080), as Istio's init container
  does. The app is not changed; its port may be unnamed.

Probes go *around* the sidecar, straight to the app, so a restart of the WAF never restarts the app and a
probe path such as /healthz is answered by the app, not by the WAF: in takeover mode the app's probes that
used the guarded port use the app's new port; in iptables mode they use `probe_port` (15021), which the
init container redirects to the app's port. The sidecar has its own readiness and liveness probes
(`/healthz` on its listen port), so the pod is ready only when both the app and the WAF are.

Native sidecars (Kubernetes >= 1.29, `native_sidecar`): the sidecar goes into initContainers with
`restartPolicy: Always` and a startup probe, so the kubelet starts the WAF (after the iptables init
container, when there is one) and waits until it listens before it starts the app, stops it after the
app, and run-to-completion pods (Jobs) can be protected too.

Pods it does not understand are left alone, with the reason in the warnings; a pod already injected (it
has a container named netguard-waf) is returned unchanged, so injecting twice changes nothing.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from waf.injection.settings import (
    APP_PORT_ENV,
    DEFAULTS,
    NATIVE_SIDECAR,
    OPT_IN,
    PORT,
    REDIRECT,
    STATUS,
    Settings,
    SettingsError,
    opt_in,
    read_settings,
    wants_native,
)

SIDECAR = "netguard-waf"
INIT = "netguard-waf-init"
METRICS_PORT_NAME = "waf-metrics"
LISTEN_PORT_NAME = "netguard-waf"  # iptables mode: the sidecar's own port
CONFIG_VOLUME = "netguard-waf-config"
CONFIG_DIR = "/etc/netguard/waf"
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
UNPRIVILEGED_PORT_SYSCTL = "net.ipv4.ip_unprivileged_port_start"
SIDECAR_UID = 65532  # the image's non-root user

# kind -> path of the pod template inside the object
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
# Service meshes whose own iptables rules would fight the redirect (Istio, Linkerd, Kuma).
MESH_CONTAINERS = {
    "istio-init",
    "istio-proxy",
    "istio-validation",
    "linkerd-init",
    "linkerd-proxy",
    "kuma-init",
}


DEFAULT_APP_PORT_ENV = "PORT"


class Result(StrEnum):
    """What the injection did with one pod or workload."""

    NOT_OPTED_IN = "not opted in"
    INJECTED = "injected"
    ALREADY_INJECTED = "already injected"
    LEFT_ALONE = "left alone"


@dataclass(frozen=True)
class Outcome:
    """The pod after injection (equal to the input when nothing changed), what was done and why.

    `what` names the pod or workload ("Deployment shop/web"); `how` says, when injected, how the WAF was
    put in front of the app; `warnings` say why an opted-in pod was left alone.
    """

    pod: Any
    result: Result = Result.NOT_OPTED_IN
    warnings: tuple[str, ...] = ()
    what: str = ""
    how: str = ""

    @property
    def changed(self) -> bool:
        return self.result is Result.INJECTED

    @property
    def opted_in(self) -> bool:
        return self.result is not Result.NOT_OPTED_IN


class _LeaveAlone(Exception):
    """The pod opted in but cannot be injected safely; the message goes into the warnings."""


def inject_pod(
    pod: dict[str, Any],
    *,
    defaults: Settings = DEFAULTS,
    services: Sequence[dict[str, Any]] = (),
    namespace: str | None = None,
    what: str = "",
    workload: str = "",
) -> Outcome:
    """Inject the WAF sidecar into a Pod or pod template ({metadata, spec}) that opted in.

    `services`: Services seen next to the pod (offline inject); one whose selector matches the pod tells
    which port the front end uses. `namespace`: the pod's, when its metadata has none (the webhook's
    request.namespace). `what`: how to name the pod in warnings. `workload`: `Kind/name` of the pod's
    top owner (told to the sidecar for its audit log); derived from the pod's ownerReferences when empty.
    """
    if not isinstance(pod, dict):
        return _left_alone(pod, what or "object", "not an object")
    meta = pod.get("metadata") or {}
    if not isinstance(meta, dict):
        return _left_alone(pod, what or "pod", "metadata is not an object")
    what = what or _describe("Pod", meta, namespace)
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    if not isinstance(labels, dict) or not isinstance(annotations, dict):
        return _left_alone(pod, what, "labels or annotations are not maps")
    choice = opt_in(labels, annotations)
    if choice is None or choice == "disabled":
        return Outcome(pod, what=what)
    if choice != "enabled":
        return _left_alone(pod, what, f"{OPT_IN}={choice!r} is neither enabled nor disabled")
    try:
        done = _inject(
            pod,
            defaults,
            services,
            namespace if meta.get("namespace") is None else meta["namespace"],
            workload or _owner_workload(meta),
        )
    except (_LeaveAlone, SettingsError) as exc:
        return _left_alone(pod, what, str(exc))
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:  # a shape not foreseen
        return _left_alone(pod, what, f"not understood ({type(exc).__name__}: {exc})")
    if done is None:
        return Outcome(pod, Result.ALREADY_INJECTED, what=what)
    return Outcome(done[0], Result.INJECTED, what=what, how=done[1])


def _left_alone(pod: Any, what: str, why: str) -> Outcome:
    return Outcome(pod, Result.LEFT_ALONE, (f"{what}: {why}; left alone",), what=what)


def inject_object(
    obj: Any, *, defaults: Settings = DEFAULTS, services: Sequence[dict[str, Any]] = ()
) -> Outcome:
    """`inject_pod` on the pod template of any workload kind; anything else comes back unchanged."""
    if not isinstance(obj, dict) or obj.get("kind") not in TEMPLATE_PATHS:
        return Outcome(obj)
    kind = obj["kind"]
    meta: dict[str, Any] = obj["metadata"] if isinstance(obj.get("metadata"), dict) else {}
    what = _describe(str(kind), meta, None)
    path = TEMPLATE_PATHS[str(kind)]
    template: Any = obj
    for key in path:
        template = template.get(key) if isinstance(template, dict) else None
    if not isinstance(template, dict):
        return Outcome(obj, what=what)  # no pod template: nothing could have opted in
    workload = f"{kind}/{meta['name']}" if kind != "Pod" and meta.get("name") else ""
    outcome = inject_pod(
        template,
        defaults=defaults,
        services=services,
        namespace=meta.get("namespace"),
        what=what,
        workload=workload,
    )
    if not outcome.changed or not path:
        return outcome
    new = copy.deepcopy(obj)
    parent = new
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = outcome.pod
    return Outcome(new, outcome.result, outcome.warnings, outcome.what, outcome.how)


def _describe(kind: str, meta: dict[str, Any], namespace: str | None) -> str:
    name = meta.get("name") or (f"{meta['generateName']}*" if meta.get("generateName") else "(unnamed)")
    ns = meta.get("namespace") or namespace
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


def _owner_workload(meta: dict[str, Any]) -> str:
    """`Kind/name` of a pod's top owner as far as the pod tells: a ReplicaSet named `<d>-<pod-template-hash>`
    is Deployment `<d>`; another controller owner is itself; a bare pod is `Pod/<name>` (or nothing)."""
    owners = [o for o in meta.get("ownerReferences") or [] if isinstance(o, dict) and o.get("controller")]
    if not owners:
        return f"Pod/{meta['name']}" if meta.get("name") else ""
    kind, name = str(owners[0].get("kind", "")), str(owners[0].get("name", ""))
    labels: dict[str, Any] = meta["labels"] if isinstance(meta.get("labels"), dict) else {}
    suffix = f"-{labels.get('pod-template-hash')}"
    if kind == "ReplicaSet" and labels.get("pod-template-hash") and name.endswith(suffix):
        return f"Deployment/{name[: -len(suffix)]}"
    return f"{kind}/{name}" if kind and name else ""


def _inject(
    pod: dict[str, Any],
    defaults: Settings,
    services: Sequence[dict[str, Any]],
    namespace: str | None,
    workload: str = "",
) -> tuple[dict[str, Any], str] | None:
    """(the injected pod, how it was done), or None when the pod already has the sidecar."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        raise _LeaveAlone("no pod spec")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers or not all(isinstance(c, dict) for c in containers):
        raise _LeaveAlone("spec.containers is not a list of containers")
    init_containers = spec.get("initContainers") or []
    if not isinstance(init_containers, list) or not all(isinstance(c, dict) for c in init_containers):
        raise _LeaveAlone("spec.initContainers is not a list of containers")
    if any(c.get("name") == SIDECAR for c in containers + init_containers):
        return None
    if spec.get("hostNetwork"):
        raise _LeaveAlone("hostNetwork pod: its ports and iptables are the node's, not the pod's")
    if isinstance(spec.get("os"), dict) and spec["os"].get("name") not in (None, "linux"):
        raise _LeaveAlone(f"a {spec['os'].get('name')} pod: the sidecar image is for Linux")
    all_ports = [(c, p) for c in containers + init_containers for p in _ports(c)]
    settings = read_settings(pod["metadata"].get("annotations") or {}, defaults)
    ci, pi, number = _target_port(pod, containers, settings, services, namespace)
    target: dict[str, Any] = containers[ci]["ports"][pi] if pi is not None else {"containerPort": number}  # undeclared: as TCP
    number = target["containerPort"]
    port_name = target.get("name")
    native = wants_native(settings.native_sidecar, settings.cluster_version, bool(port_name))
    if spec.get("restartPolicy", "Always") != "Always" and not native:
        policy = spec["restartPolicy"]
        raise _LeaveAlone(
            f"restartPolicy {policy}: a sidecar container would keep a run-to-completion pod alive "
            f"(a native sidecar would not: --native-sidecar, or {NATIVE_SIDECAR}: always, on Kubernetes >= 1.29)"
        )
    if target.get("protocol", "TCP") != "TCP":
        raise _LeaveAlone(f"port {port_name or number} is {target['protocol']}, the WAF speaks HTTP over TCP")
    if target.get("hostPort"):
        raise _LeaveAlone(f"port {port_name or number} has a hostPort")
    used_numbers = {p.get("containerPort") for _, p in all_ports if p is not target}
    used_names = {p.get("name") for _, p in all_ports if p.get("name")}

    new = copy.deepcopy(pod)
    new_spec = new["spec"]
    app = new_spec["containers"][ci]
    port = app["ports"][pi] if pi is not None else None
    _check_free("port", settings.metrics_port, used_numbers | {number})
    _check_free("port name", METRICS_PORT_NAME, used_names)

    if settings.redirect == "takeover":
        env_name = _port_env(app, number, port_name, settings)
        _check_command_line(app, number, env_name)
        _check_free("port", settings.app_port, used_numbers | {number, settings.metrics_port})
        listen, upstream = number, settings.app_port
        if port is None:  # the app never declared the port it listens on: declare where it moves
            _field(app, "ports", list).append({"containerPort": settings.app_port, "protocol": "TCP"})
        else:
            if port_name:
                app_name = _app_port_name(port_name)
                _check_free("port name", app_name, used_names)
                port["name"] = app_name
            port["containerPort"] = settings.app_port
        _set_env(app, env_name, str(settings.app_port))
        _reroute_probes(app, {port_name, number} - {None}, settings.app_port)
        taken: dict[str, Any] = {"name": port_name} if port_name else {}
        sidecar_ports = [{**taken, "containerPort": number, "protocol": "TCP"}]
        how = (
            f"takeover of port {port_name or number}: the WAF listens on {number}, "
            f"the app moves to {settings.app_port} ({env_name}={settings.app_port})"
        )
    else:
        _check_free("port", settings.listen_port, used_numbers | {number, settings.metrics_port})
        _check_free(
            "port", settings.probe_port, used_numbers | {number, settings.metrics_port, settings.listen_port}
        )
        _check_free("port name", LISTEN_PORT_NAME, used_names)
        if any(c.get("name") == INIT for c in init_containers):
            raise _LeaveAlone(f"an init container is already named {INIT}")
        mesh = sorted({c.get("name") for c in containers + init_containers} & MESH_CONTAINERS)
        if mesh:
            raise _LeaveAlone(f"{mesh[0]} already redirects this pod's traffic with iptables; use takeover")
        listen, upstream = settings.listen_port, number
        _reroute_probes(app, {port_name, number} - {None}, settings.probe_port)
        sidecar_ports = [{"name": LISTEN_PORT_NAME, "containerPort": listen, "protocol": "TCP"}]
        how = f"iptables redirect of port {number} to the WAF on {listen}"
        _put_init_containers(new_spec, [_init_container(settings, number)])
    sidecar_ports.append(
        {"name": METRICS_PORT_NAME, "containerPort": settings.metrics_port, "protocol": "TCP"}
    )

    sidecar = _sidecar(settings, listen, upstream, sidecar_ports, workload)
    if settings.config_map:
        volumes = _field(new_spec, "volumes", list)
        if any(isinstance(v, dict) and v.get("name") == CONFIG_VOLUME for v in volumes):
            raise _LeaveAlone(f"a volume is already named {CONFIG_VOLUME}")
        volumes.append({"name": CONFIG_VOLUME, "configMap": {"name": settings.config_map}})
    if native:
        sidecar = _as_native(sidecar, listen)
        inits = new_spec.get("initContainers") or []
        at = 1 if inits and inits[0].get("name") == INIT else 0  # after the iptables init container
        _put_init_containers(new_spec, [sidecar], at)
        how += ", as a native sidecar"
    else:
        new_spec["containers"].append(sidecar)
    if listen < 1024:
        _allow_unprivileged_port(new_spec, listen)

    annotations = _field(new["metadata"], "annotations", dict)
    annotations.setdefault(DEFAULT_CONTAINER, app.get("name"))
    status: dict[str, Any] = {
        "redirect": settings.redirect,
        "container": app.get("name"),
        "port": number,
        "upstream": upstream,
        "listen": listen,
    }
    if settings.redirect == "takeover":
        status["env"] = env_name
    if native:
        status["sidecar"] = "native"
    annotations[STATUS] = json.dumps(status, sort_keys=True, separators=(",", ":"))
    return new, how


def _put_init_containers(spec: dict[str, Any], containers: list[dict[str, Any]], at: int = 0) -> None:
    """Insert init containers at `at`; a new initContainers list goes before the containers, where a
    person would write it."""
    if spec.get("initContainers"):
        spec["initContainers"][at:at] = containers
        return
    rest = dict(spec)
    spec.clear()
    for key, value in rest.items():
        if key == "initContainers":
            continue
        if key == "containers":
            spec["initContainers"] = containers
        spec[key] = value


def _ports(container: dict[str, Any]) -> list[dict[str, Any]]:
    ports = container.get("ports") or []
    if not isinstance(ports, list) or not all(
        isinstance(p, dict) and isinstance(p.get("containerPort"), int) and isinstance(p.get("name", ""), str)
        for p in ports
    ):
        raise _LeaveAlone(f"container {container.get('name')}: ports are not a list of containerPorts")
    return ports


def _target_port(
    pod: dict[str, Any],
    containers: list[dict[str, Any]],
    settings: Settings,
    services: Sequence[dict[str, Any]],
    namespace: str | None,
) -> tuple[int, int | None, int]:
    """(container index, port index, port number) of the port to guard.

    In order: the `netguard.io/waf-port` annotation; the targetPort of the Services next to the pod that
    select it (offline only: the webhook sees no Service); the port named `http`; the pod's only port.
    A port number that no container declares (declaring is optional: Bank of Anthos' front end declares
    none) is the app container's: the pod's only container, or its default-container; port index None.
    """
    where = [(ci, pi, p) for ci, c in enumerate(containers) for pi, p in enumerate(_ports(c))]

    def find(ref: str | int) -> tuple[int, int | None, int] | None:
        for ci, pi, p in where:
            by_number = str(p["containerPort"]) == str(ref) and p.get("protocol", "TCP") == "TCP"
            if p.get("name") == ref or by_number:
                return ci, pi, p["containerPort"]
        if isinstance(ref, int) or str(ref).isdigit():
            return _app_container(pod, containers, int(ref)), None, int(ref)
        return None

    if settings.port is not None:
        found = find(settings.port)
        if found is None:
            raise _LeaveAlone(f"no containerPort named {settings.port} ({PORT})")
        return found
    targets = list(_service_targets(pod, services, namespace))
    if targets:
        named = [t for t in targets if not (isinstance(t, int) or str(t).isdigit())]
        resolved = {f for f in (find(t) for t in named) if f is not None}
        numbers = {int(t) for t in targets if t not in named} | {f[2] for f in resolved}
        if len(numbers) > 1:
            names = ", ".join(str(t) for t in dict.fromkeys(targets))
            raise _LeaveAlone(f"Services target several ports ({names}): name one with {PORT}")
        if numbers:
            found = find(numbers.pop())
            assert found is not None  # a number is always found, declared or not
            return found
    found = find("http")
    if found is not None:
        return found
    if len(where) == 1:
        return where[0][0], where[0][1], where[0][2]["containerPort"]
    probed = sorted({n for c in containers for n in _probe_numbers(c)})
    hint = f": the probes use {', '.join(map(str, probed))}" if probed else ""
    raise _LeaveAlone(
        f"cannot tell which port to guard: no Service next to it targets one, no port is named http and "
        f"not exactly one port is declared (set {PORT}{hint})"
    )


def _probe_numbers(container: dict[str, Any]) -> Iterable[int]:
    """The port numbers a container's HTTP and TCP probes use: a hint for a pod that declares no port."""
    for name in PROBES:
        probe = container.get(name)
        for kind in ("httpGet", "tcpSocket"):
            action = probe.get(kind) if isinstance(probe, dict) else None
            if isinstance(action, dict) and isinstance(action.get("port"), int):
                yield action["port"]


def _app_container(pod: dict[str, Any], containers: list[dict[str, Any]], number: int) -> int:
    """The container that listens on a port no container declares: the only one, or the default one."""
    default = ((pod.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CONTAINER)
    names = [c.get("name") for c in containers]
    if default in names:
        return names.index(default)
    if len(containers) == 1:
        return 0
    raise _LeaveAlone(
        f"port {number} is declared by no container and the pod has {len(containers)}: declare it on the "
        f"app's container, or name that container with the {DEFAULT_CONTAINER} annotation"
    )


def _service_targets(
    pod: dict[str, Any], services: Sequence[dict[str, Any]], namespace: str | None
) -> Iterable[str | int]:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    for svc in services:
        meta = svc.get("metadata") or {}
        spec = svc.get("spec") or {}
        selector = spec.get("selector") or {}
        if (meta.get("namespace") or None) != (namespace or None) or not isinstance(selector, dict):
            continue
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            continue
        for port in spec.get("ports") or []:
            if isinstance(port, dict) and port.get("protocol", "TCP") == "TCP":
                target = port.get("targetPort", port.get("port"))
                if target is not None:
                    yield target


def _field(obj: dict[str, Any], key: str, kind: type) -> Any:
    """obj[key], made an empty list or map when absent or null (as the API server reads null)."""
    if obj.get(key) is None:
        obj[key] = kind()
    if not isinstance(obj[key], kind):
        raise _LeaveAlone(f"{key} is not a {'list' if kind is list else 'map'}")
    return obj[key]


def _check_free(what: str, value: Any, used: set[Any]) -> None:
    if value in used:
        raise _LeaveAlone(f"{what} {value} is already used in the pod (choose another with an annotation)")


def _port_env(app: dict[str, Any], number: int, named: str | None, settings: Settings) -> str:
    """The env var that tells the app its port after the takeover.

    The annotation's, when set; else the one variable of the container already set to the port's
    number (`PORT: "8080"`: the app evidently reads it); else `PORT` for a named port, as before.
    An unnamed port with nothing carrying its number has no safe way to move the app: left alone.
    """
    if settings.app_port_env:
        return settings.app_port_env
    env = app.get("env") or []
    carriers = [
        str(e.get("name"))
        for e in (env if isinstance(env, list) else [])
        if isinstance(e, dict) and "value" in e and str(e["value"]).strip() == str(number)
    ]
    container = app.get("name")
    if len(carriers) > 1:
        raise _LeaveAlone(
            f"env vars {', '.join(carriers)} of container {container} all carry {number}: "
            f"name the one the app listens on with {APP_PORT_ENV}"
        )
    if carriers:
        return carriers[0]
    if named:
        return DEFAULT_APP_PORT_ENV
    raise _LeaveAlone(
        f"port {number} of container {container} has no name and no env var of the container carries "
        f"{number}, so nothing would tell the app to move (set {APP_PORT_ENV} to the variable it reads its "
        f"port from, name the port, or set {REDIRECT}: iptables)"
    )


def _check_command_line(app: dict[str, Any], number: int, env_name: str) -> None:
    """An app started with `--port=8080` would keep listening on 8080, where the WAF must listen."""
    pattern = re.compile(rf"(?<!\d){number}(?!\d)")
    for key in ("command", "args"):
        values = app.get(key) or []
        for i, arg in enumerate(values if isinstance(values, list) else []):
            if pattern.search(str(arg)):
                raise _LeaveAlone(
                    f"container {app.get('name')} names port {number} on its command line ({key}[{i}] "
                    f"{str(arg)!r}), so it would not move: write $({env_name}) there, or set {REDIRECT}: iptables"
                )


def _app_port_name(name: str) -> str:
    return ("app-" + name)[:15].rstrip("-")


def _set_env(container: dict[str, Any], name: str, value: str) -> None:
    env = _field(container, "env", list)
    for entry in env:
        if isinstance(entry, dict) and entry.get("name") == name:
            entry.clear()
            entry.update({"name": name, "value": value})
            return
    env.append({"name": name, "value": value})


def _reroute_probes(container: dict[str, Any], old: set[Any], new_port: int) -> None:
    """Point the container's probes and lifecycle hooks that used the guarded port at `new_port`."""
    handlers = [container.get(p) for p in PROBES]
    lifecycle = container.get("lifecycle") or {}
    handlers += [lifecycle.get("postStart"), lifecycle.get("preStop")]
    for handler in handlers:
        if not isinstance(handler, dict):
            continue
        for kind in ("httpGet", "tcpSocket", "grpc"):
            action = handler.get(kind)
            if isinstance(action, dict) and action.get("port") in old:
                action["port"] = new_port


def _allow_unprivileged_port(spec: dict[str, Any], port: int) -> None:
    """A non-root sidecar may bind a port below 1024: lower the pod's safe sysctl, never raise it."""
    sysctls = _field(_field(spec, "securityContext", dict), "sysctls", list)
    for entry in sysctls:
        if entry.get("name") == UNPRIVILEGED_PORT_SYSCTL:
            if str(entry.get("value", "")).isdigit() and int(entry["value"]) > port:
                entry["value"] = str(port)
            return
    sysctls.append({"name": UNPRIVILEGED_PORT_SYSCTL, "value": str(port)})


def sidecar_workers(cpu_limit: str | None) -> int:
    """One worker process per CPU of the sidecar's CPU limit (rounded up); 1 without a limit, where `auto`
    would mean every CPU of the node and a worker's memory each under the one memory limit."""
    if not cpu_limit:
        return 1
    cpus = float(cpu_limit[:-1]) / 1000 if cpu_limit.endswith("m") else float(cpu_limit)
    return max(1, math.ceil(cpus - 1e-9))


def _sidecar(
    settings: Settings, listen: int, upstream: int, ports: list[dict[str, Any]], workload: str = ""
) -> dict[str, Any]:
    command = [
        "netguard",
        "waf",
        "--listen",
        f"0.0.0.0:{listen}",
        "--upstream",
        f"http://127.0.0.1:{upstream}",
        "--mode",
        settings.mode,
        "--metrics-listen",
        f"0.0.0.0:{settings.metrics_port}",
        "--audit-log",
        "-",
        "--workers",
        str(sidecar_workers(settings.cpu_limit)),
    ]
    if settings.paranoia is not None:
        command += ["--paranoia", str(settings.paranoia)]
    if settings.config_map:
        command += ["--config", f"{CONFIG_DIR}/waf.yaml"]
    env: list[dict[str, Any]] = []
    if settings.body_limit is not None:
        env.append({"name": "NETGUARD_WAF_BODY_LIMIT", "value": str(settings.body_limit)})
    env += [
        {"name": "NETGUARD_WAF_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {
            "name": "NETGUARD_WAF_POD_NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        },
    ]
    if workload:  # the audit log names the workload it protected (waf/audit.py)
        env.append({"name": "NETGUARD_WAF_WORKLOAD", "value": workload})
    resources: dict[str, Any] = {
        "requests": {"cpu": settings.cpu_request, "memory": settings.memory_request},
        "limits": {"memory": settings.memory_limit},
    }
    if settings.cpu_limit:
        resources["limits"]["cpu"] = settings.cpu_limit
    health = {"httpGet": {"path": "/healthz", "port": listen}}
    sidecar: dict[str, Any] = {
        "name": SIDECAR,
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "ports": ports,
        "env": env,
        "readinessProbe": {**health, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**copy.deepcopy(health), "periodSeconds": 10, "failureThreshold": 6},
        "resources": resources,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": SIDECAR_UID,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if settings.config_map:
        sidecar["volumeMounts"] = [{"name": CONFIG_VOLUME, "mountPath": CONFIG_DIR, "readOnly": True}]
    return sidecar


def _as_native(sidecar: dict[str, Any], listen: int) -> dict[str, Any]:
    """The sidecar as a restartable init container. Its startup probe makes the kubelet wait until the WAF
    listens before it starts the next init container or the app (KEP-753)."""
    startup = {"httpGet": {"path": "/healthz", "port": listen}, "periodSeconds": 1, "failureThreshold": 30}
    native: dict[str, Any] = {}
    for key, value in sidecar.items():
        if key == "readinessProbe":
            native["startupProbe"] = startup
        native[key] = value
        if key == "imagePullPolicy":
            native["restartPolicy"] = "Always"
    return native


def _init_container(settings: Settings, app_port: int) -> dict[str, Any]:
    """iptables mode: redirect the app's port to the sidecar, and the probe port to the app.

    Only PREROUTING (traffic entering the pod) is changed, so the sidecar's own connection to
    127.0.0.1:<app port> (OUTPUT, loopback) is not redirected back to itself. -C before -A keeps a
    re-run of the container from adding the rules twice.
    """
    script = (
        'rule() { iptables -w -t nat -C PREROUTING "$@" 2>/dev/null ||'
        ' iptables -w -t nat -A PREROUTING "$@"; }\n'
        f"rule -p tcp --dport {settings.probe_port} -j REDIRECT --to-ports {app_port}\n"
        f"rule -p tcp --dport {app_port} -j REDIRECT --to-ports {settings.listen_port}\n"
    )
    return {
        "name": INIT,
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-ec", script],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": {
            "runAsUser": 0,
            "runAsNonRoot": False,
            "allowPrivilegeEscalation": False,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
        },
    }
