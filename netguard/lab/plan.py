"""Manifests -> the lab's pods, services and addresses. Pure: no system calls.

Deployments (replicas), StatefulSets (replicas), DaemonSets (one node: one pod) and bare Pods become
pods named as Kubernetes names them (`<deploy>-<pod-template-hash>-<5 chars>`, `<sts>-<ordinal>`),
owned by ReplicaSets owned by Deployments, so the inventory the lab prints resolves exactly like a
real cluster's. A kube-dns pod (Deployment kube-system/coredns, Service kube-system/kube-dns on .10)
is added unless the manifests bring their own.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from netguard.errors import InputError
from netguard.inventory import parse_service_ports

NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,6}$")  # veth `ng-<lab>-<i>` stays within 15 characters
POD_NET = ipaddress.ip_network("10.244.0.0/16")
SVC_NET = ipaddress.ip_network("10.96.0.0/16")
MAX_PODS = 200
NODE_NAME = "lab-node"
GATEWAY = "169.254.1.1"  # the pods' default gateway, answered by proxy ARP on the host end (Calico's trick)
DNS_LABELS = {"k8s-app": "kube-dns"}
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet Kubernetes uses for generated name suffixes


@dataclass
class PortSpec:
    port: int
    protocol: str = "TCP"
    name: str = ""
    process: str = ""  # the container of a ProcessSpec that serves it ("": the lab's stand-in server)


@dataclass
class ProcessSpec:
    """A container the lab runs for real in its pod's network namespace: one whose command is `netguard ...`
    (the WAF sidecar `netguard inject` adds). `argv` is the container's command and args, `env` its plain
    values and the downward-API pod name and namespace."""

    container: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    native: bool = False  # a native sidecar (init container, restartPolicy Always): started before the app


@dataclass
class PodSpec:
    namespace: str
    name: str
    ip: str
    netns: str
    veth: str
    labels: dict[str, str]
    ports: list[PortSpec]
    owner_kind: str = ""  # ReplicaSet, StatefulSet, DaemonSet, Job or "" for a bare pod
    owner_name: str = ""
    dns: bool = False  # the kube-dns pod: its servers answer DNS
    processes: list[ProcessSpec] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class ServicePortSpec:
    port: int
    protocol: str = "TCP"
    target_port: int | str = 0
    name: str = ""


@dataclass
class ServiceSpec:
    namespace: str
    name: str
    cluster_ip: str
    selector: dict[str, str]
    ports: list[ServicePortSpec]

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def backends(self, pods: Iterable[PodSpec]) -> list[PodSpec]:
        if not self.selector:
            return []
        return [p for p in pods if p.namespace == self.namespace and all(p.labels.get(k) == v for k, v in self.selector.items())]

    def target_port(self, sport: ServicePortSpec, pod: PodSpec) -> int:
        if isinstance(sport.target_port, int):
            return sport.target_port or sport.port
        return next((p.port for p in pod.ports if p.name == sport.target_port and p.protocol == sport.protocol), 0)


@dataclass
class LabPlan:
    name: str
    slot: int
    pods: list[PodSpec] = field(default_factory=list)
    services: list[ServiceSpec] = field(default_factory=list)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    owners: list[dict[str, Any]] = field(default_factory=list)  # Deployments, ReplicaSets, ... as the API shows them
    env_targets: list[tuple[str, str, str]] = field(default_factory=list)  # (workload ref, host, port) from env values

    @property
    def prefix(self) -> str:
        return f"ng-{self.name}-"

    @property
    def pod_cidr(self) -> str:
        return f"10.244.{self.slot}.0/24"

    @property
    def dns_ip(self) -> str:
        return f"10.96.{self.slot}.10"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabPlan:
        pods = [PodSpec(**{**p, "ports": [PortSpec(**x) for x in p["ports"]],
                           "processes": [ProcessSpec(**x) for x in p.get("processes", [])]}) for p in data["pods"]]
        services = [ServiceSpec(**{**s, "ports": [ServicePortSpec(**x) for x in s["ports"]]}) for s in data["services"]]
        return cls(
            name=data["name"], slot=data["slot"], pods=pods, services=services, namespaces=dict(data["namespaces"]),
            owners=list(data["owners"]), env_targets=[tuple(t) for t in data.get("env_targets", [])],  # type: ignore[misc]
        )

    def pod(self, spec: str) -> PodSpec:
        """A pod by `ns/name`, `name`, or a unique name prefix (a workload name)."""
        ns, _, name = spec.rpartition("/")
        candidates = [p for p in self.pods if (not ns or p.namespace == ns)]
        exact = [p for p in candidates if p.name == name]
        if exact:
            return exact[0]
        prefixed = [p for p in candidates if p.name.startswith(name + "-") or p.name.startswith(name)]
        if len(prefixed) == 1:
            return prefixed[0]
        if not prefixed:
            raise InputError(f"no pod {spec!r} in lab {self.name} (pods: {', '.join(p.name for p in self.pods)})")
        raise InputError(f"pod {spec!r} is ambiguous in lab {self.name}: {', '.join(p.ref for p in prefixed)}")

    def workload_pods(self, spec: str) -> list[PodSpec]:
        """The pods of a workload `[ns/]name` (a Deployment, StatefulSet, DaemonSet or bare pod)."""
        ns, _, name = spec.rpartition("/")
        out = [p for p in self.pods if (not ns or p.namespace == ns) and _workload_name(p) == name]
        if not out:
            names = sorted({f"{p.namespace}/{_workload_name(p)}" for p in self.pods})
            raise InputError(f"no workload {spec!r} in lab {self.name} (workloads: {', '.join(names)})")
        return out

    def service(self, name: str, namespace: str) -> ServiceSpec | None:
        """A service by `svc`, `svc.ns` or `svc.ns.svc.cluster.local`, relative to `namespace`."""
        parts = name.rstrip(".").split(".")
        if len(parts) >= 2 and parts[2:] in ([], ["svc"], ["svc", "cluster", "local"]):
            svc, ns = parts[0], parts[1]
        elif len(parts) == 1:
            svc, ns = parts[0], namespace
        else:
            return None
        return next((s for s in self.services if s.name == svc and s.namespace == ns), None)


def _workload_name(pod: PodSpec) -> str:
    if pod.owner_kind == "ReplicaSet":
        return pod.owner_name.rsplit("-", 1)[0]
    return pod.owner_name or pod.name


def _hash(text: str, length: int) -> str:
    digest = int(hashlib.sha256(text.encode()).hexdigest(), 16)
    out = []
    for _ in range(length):
        digest, r = divmod(digest, len(_SAFE))
        out.append(_SAFE[r])
    return "".join(out)


def _is_process(container: Mapping[str, Any]) -> bool:
    command = [*(container.get("command") or []), *(container.get("args") or [])]
    return len(command) >= 2 and all(isinstance(c, str) for c in command) and command[0] == "netguard"


def _running(pod_spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The containers that run beside the app: its containers, and native sidecars (init containers with
    restartPolicy Always, Kubernetes >= 1.29) first; other init containers run to completion, not here."""
    natives = [c for c in pod_spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    return [*natives, *(pod_spec.get("containers") or [])]


def _ports(pod_spec: Mapping[str, Any]) -> list[PortSpec]:
    ports: list[PortSpec] = []
    for container in _running(pod_spec):
        process = str(container.get("name") or "") if _is_process(container) else ""
        for p in container.get("ports") or []:
            if isinstance(p.get("containerPort"), int):
                spec = PortSpec(p["containerPort"], p.get("protocol") or "TCP", p.get("name") or "", process)
                if spec not in ports:
                    ports.append(spec)
    return ports


_FIELD_REFS = {"metadata.name": "name", "metadata.namespace": "namespace"}


def _processes(pod_spec: Mapping[str, Any], namespace: str, pod_name: str) -> list[ProcessSpec]:
    """The containers whose command is `netguard ...`, with their env (plain values, the pod's name and
    namespace from the downward API; other sources are left out)."""
    out = []
    for container in _running(pod_spec):
        if not _is_process(container):
            continue
        env: dict[str, str] = {}
        for item in container.get("env") or []:
            if "value" in item:
                env[str(item["name"])] = str(item["value"])
            path = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
            if path in _FIELD_REFS:
                env[str(item["name"])] = pod_name if path == "metadata.name" else namespace
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        native = container.get("restartPolicy") == "Always"
        out.append(ProcessSpec(str(container.get("name") or "sidecar"), argv, env, native))
    return out


_HOSTPORT = re.compile(r"^(?:[a-z]+://)?(?P<host>[a-z0-9]([-a-z0-9.]*[a-z0-9])?):(?P<port>\d{1,5})(?:/.*)?$")


def _env_targets(pod_spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    for container in pod_spec.get("containers") or []:
        for env in container.get("env") or []:
            m = _HOSTPORT.match(str(env.get("value") or ""))
            if m:
                out.append((m["host"], m["port"]))
    return out


def build_plan(objects: Iterable[tuple[str, Mapping[str, Any]]], name: str, slot: int) -> LabPlan:
    """Pods, services and addresses for the manifests' objects (from `iter_objects`)."""
    if not NAME_RE.match(name):
        raise InputError(f"invalid lab name {name!r}: 1-7 characters, a-z and 0-9, starting with a letter")
    plan = LabPlan(name=name, slot=slot)
    raw_services: list[tuple[str, Mapping[str, Any]]] = []
    # ns, pod name, labels, ports, owner kind and name, the pod spec (for the processes)
    pending: list[tuple[str, str, dict[str, str], list[PortSpec], str, str, Mapping[str, Any]]] = []

    def add_pod(ns: str, pod_name: str, labels: dict[str, str], ports: list[PortSpec], owner_kind: str, owner_name: str,
                pod_spec: Mapping[str, Any] | None = None) -> None:
        pending.append((ns, pod_name, labels, ports, owner_kind, owner_name, pod_spec or {}))

    for source, obj in objects:
        kind = obj.get("kind")
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        oname = meta.get("name") or ""
        if kind == "Namespace":
            plan.namespaces[oname] = dict(meta.get("labels") or {})
            continue
        if kind == "Service":
            raw_services.append((source, obj))
            continue
        if kind not in ("Deployment", "StatefulSet", "DaemonSet", "Pod"):
            continue
        if not oname:
            raise InputError(f"{kind} without metadata.name", source=source)
        plan.namespaces.setdefault(ns, {})
        if kind == "Pod":
            spec = obj.get("spec") or {}
            add_pod(ns, oname, dict(meta.get("labels") or {}), _ports(spec), "", "", spec)
            plan.env_targets += [(f"{ns}/{oname}", h, p) for h, p in _env_targets(spec)]
            continue
        spec = obj.get("spec") or {}
        template = spec.get("template") or {}
        tlabels = dict((template.get("metadata") or {}).get("labels") or {})
        pod_spec = template.get("spec") or {}
        if pod_spec.get("hostNetwork"):
            continue  # a hostNetwork pod is the node itself: no namespace of its own
        ports = _ports(pod_spec)
        replicas = spec.get("replicas", 1) if kind != "DaemonSet" else 1
        if not isinstance(replicas, int) or replicas < 0:
            raise InputError(f"spec.replicas: invalid {replicas!r}", source=source, obj=f"{kind} {ns}/{oname}")
        plan.env_targets += [(f"{ns}/{oname}", h, p) for h, p in _env_targets(pod_spec)]
        owner = _api_object(obj, ns)
        plan.owners.append(owner)
        if kind == "Deployment":
            template_hash = _hash(f"{ns}/{oname}/{template}", 10)
            rs_name = f"{oname}-{template_hash}"
            rs = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": rs_name,
                    "namespace": ns,
                    "labels": {**tlabels, "pod-template-hash": template_hash},
                    "ownerReferences": [_owner_ref("apps/v1", "Deployment", oname)],
                },
                "spec": {
                    "replicas": replicas,
                    "selector": _with_hash(spec.get("selector") or {"matchLabels": tlabels}, template_hash),
                    "template": {
                        **copy.deepcopy(template),
                        "metadata": {**(template.get("metadata") or {}),
                                     "labels": {**tlabels, "pod-template-hash": template_hash}},
                    },
                },
            }
            plan.owners.append(rs)
            for i in range(replicas):
                add_pod(ns, f"{rs_name}-{_hash(f'{rs_name}/{i}', 5)}", {**tlabels, "pod-template-hash": template_hash}, ports,
                        "ReplicaSet", rs_name, pod_spec)
        elif kind == "StatefulSet":
            revision = f"{oname}-{_hash(f'{ns}/{oname}/{template}', 10)}"
            for i in range(replicas):
                labels = {**tlabels, "controller-revision-hash": revision, "statefulset.kubernetes.io/pod-name": f"{oname}-{i}"}
                add_pod(ns, f"{oname}-{i}", labels, ports, "StatefulSet", oname, pod_spec)
        else:  # DaemonSet: one node
            revision = _hash(f"{ns}/{oname}/{template}", 10)
            labels = {**tlabels, "controller-revision-hash": revision, "pod-template-generation": "1"}
            add_pod(ns, f"{oname}-{_hash(f'{ns}/{oname}/node', 5)}", labels, ports, "DaemonSet", oname, pod_spec)

    if not pending:
        raise InputError("the manifests hold no Deployment, StatefulSet, DaemonSet or Pod")
    has_dns = any(
        (obj.get("metadata") or {}).get("name") == "kube-dns" and (obj.get("metadata") or {}).get("namespace") == "kube-system"
        for _, obj in raw_services
    )
    if not has_dns:
        _add_kube_dns(plan, add_pod, raw_services)
    if len(pending) > MAX_PODS:
        raise InputError(f"the manifests make {len(pending)} pods; the lab holds at most {MAX_PODS}")
    for i, (ns, pod_name, labels, ports, owner_kind, owner_name, pod_spec) in enumerate(pending):
        plan.pods.append(
            PodSpec(
                namespace=ns, name=pod_name, ip=f"10.244.{slot}.{10 + i}", netns=f"ng-{name}-{ns}-{pod_name}"[:200],
                veth=f"ng-{name}-{i}", labels=labels, ports=copy.deepcopy(ports), owner_kind=owner_kind,
                owner_name=owner_name, dns=(ns == "kube-system" and labels.get("k8s-app") == "kube-dns"),
                processes=_processes(pod_spec, ns, pod_name),
            )
        )
    seen = set()
    for pod in plan.pods:
        if pod.ref in seen:
            raise InputError(f"two pods named {pod.ref}")
        seen.add(pod.ref)
    next_ip = 11
    for source, obj in raw_services:
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        sname = meta.get("name") or ""
        spec = obj.get("spec") or {}
        if spec.get("clusterIP") == "None" or spec.get("type") == "ExternalName":
            continue  # headless and ExternalName services get no ClusterIP
        if ns == "kube-system" and sname == "kube-dns":
            ip = plan.dns_ip
        else:
            if next_ip > 250:
                raise InputError("more than 240 Services: the lab's service range is full")
            ip, next_ip = f"10.96.{slot}.{next_ip}", next_ip + 1
        sports = [
            ServicePortSpec(p.port, p.protocol, p.target_port, p.name)
            for p in parse_service_ports(spec, source=source, obj=f"Service {ns}/{sname}")
        ]
        plan.services.append(ServiceSpec(ns, sname, ip, dict(spec.get("selector") or {}), sports))
        plan.namespaces.setdefault(ns, {})
    for ns, labels in plan.namespaces.items():
        labels.setdefault("kubernetes.io/metadata.name", ns)
    return plan


def _add_kube_dns(plan: LabPlan, add_pod: Any, raw_services: list[tuple[str, Mapping[str, Any]]]) -> None:
    ports = [PortSpec(53, "UDP", "dns"), PortSpec(53, "TCP", "dns-tcp")]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": dict(DNS_LABELS)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(DNS_LABELS)},
            "template": {
                "metadata": {"labels": dict(DNS_LABELS)},
                "spec": {"containers": [{"name": "coredns", "image": "netguard-lab-dns",
                                         "ports": [{"containerPort": 53, "protocol": "UDP", "name": "dns"},
                                                   {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"}]}]},
            },
        },
    }
    plan.namespaces.setdefault("kube-system", {})
    plan.owners.append(deployment)
    template_hash = _hash("kube-system/coredns", 10)
    rs_name = f"coredns-{template_hash}"
    plan.owners.append({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": rs_name, "namespace": "kube-system", "labels": {**DNS_LABELS, "pod-template-hash": template_hash},
                     "ownerReferences": [_owner_ref("apps/v1", "Deployment", "coredns")]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {**DNS_LABELS, "pod-template-hash": template_hash}},
                 "template": deployment["spec"]["template"]},  # type: ignore[index]
    })
    add_pod("kube-system", f"{rs_name}-{_hash(rs_name, 5)}", {**DNS_LABELS, "pod-template-hash": template_hash}, ports,
            "ReplicaSet", rs_name)
    raw_services.append(("<lab>", {
        "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": dict(DNS_LABELS)},
        "spec": {"selector": dict(DNS_LABELS), "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
        ]},
    }))


def _owner_ref(api_version: str, kind: str, name: str) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name, "controller": True, "blockOwnerDeletion": True,
            "uid": _uid(f"{kind}/{name}")}


def _uid(text: str) -> str:
    h = hashlib.sha256(text.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _with_hash(selector: Mapping[str, Any], template_hash: str) -> dict[str, Any]:
    out = copy.deepcopy(dict(selector))
    out["matchLabels"] = {**(out.get("matchLabels") or {}), "pod-template-hash": template_hash}
    return out


def _api_object(obj: Mapping[str, Any], ns: str) -> dict[str, Any]:
    out = copy.deepcopy(dict(obj))
    meta = out.setdefault("metadata", {})
    meta["namespace"] = ns
    meta.setdefault("uid", _uid(f"{obj.get('kind')}/{ns}/{meta.get('name')}"))
    return out
