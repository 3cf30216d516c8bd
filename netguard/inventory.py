"""The cluster as netguard sees it: namespaces, workloads, pods, services, nodes, policies.

Loaded from Kubernetes YAML/JSON (multi-document, `List`, directories) as `kubectl get -o yaml`
prints it, or built by the controller from a watch. Everything here is resolved once at load:
pod -> ReplicaSet -> Deployment (StatefulSet, DaemonSet, Job -> CronJob, bare Pod), Service ->
backends and targetPort, so flow enrichment is dictionary lookups.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from netguard.adminpol import ADMIN_KINDS, AdminNetworkPolicy, parse_admin_policy
from netguard.errors import InputError
from netguard.model import Labels, Workload, freeze_labels
from netguard.netpol import NetworkPolicy, Target, parse_network_policy
from netguard.selectors import Selector, match_labels_selector, parse_selector
from netguard.validation import check_object

# Labels controllers stamp on pods per revision or per instance: never part of a workload's identity.
UNSTABLE_LABELS = frozenset(
    {
        "pod-template-hash",
        "controller-revision-hash",
        "pod-template-generation",
        "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index",
        "controller-uid",
        "job-name",
        "batch.kubernetes.io/controller-uid",
        "batch.kubernetes.io/job-name",
        "batch.kubernetes.io/job-completion-index",
    }
)
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "ReplicationController", "Pod")
_INVENTORY_SUFFIXES = (".yaml", ".yml", ".json")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster


@dataclass(frozen=True)
class ContainerPort:
    port: int
    protocol: str = "TCP"
    name: str = ""


@dataclass(frozen=True)
class WorkloadInfo:
    """What policies need of a workload: how to select its pods, and its ports."""

    workload: Workload
    labels: Labels  # stable pod labels (the template's, or the pods' minus per-revision labels)
    selector: Selector  # the owner's spec.selector; a bare pod's stable labels
    ports: tuple[ContainerPort, ...] = ()
    host_network: bool = False

    @property
    def named_ports(self) -> dict[tuple[str, str], int]:
        return {(p.name, p.protocol): p.port for p in self.ports if p.name}


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    ip: str
    workload: Workload
    labels: Labels = ()
    node: str = ""
    host_ip: str = ""
    host_network: bool = False
    ports: tuple[ContainerPort, ...] = ()


@dataclass(frozen=True)
class ServicePort:
    port: int
    protocol: str = "TCP"
    target_port: int | str = 0  # a number or a container port name
    name: str = ""


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    cluster_ips: tuple[str, ...] = ()
    selector: Labels | None = None  # None: a service without selector (its Endpoints say where)
    ports: tuple[ServicePort, ...] = ()
    type: str = "ClusterIP"
    external_ips: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Inventory:
    """Indexed view of the cluster objects. Build with `load_inventory` or `Inventory.build`."""

    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    workloads: dict[Workload, WorkloadInfo] = field(default_factory=dict)
    pods: list[Pod] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    policies: list[NetworkPolicy] = field(default_factory=list)
    nodes: dict[str, str] = field(default_factory=dict)  # node IP -> node name
    node_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # node name -> labels
    admin_policies: list[AdminNetworkPolicy] = field(default_factory=list)  # ANPs and the BANP
    # service "ns/name" -> [(ip, port, protocol, port name)] from Endpoints/EndpointSlices
    endpoints: dict[str, list[tuple[str, int, str, str]]] = field(default_factory=dict)
    pod_by_ip: dict[str, Pod] = field(default_factory=dict, repr=False)
    service_by_ip: dict[str, Service] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        self.services = _dedupe_services(self.services)
        self.pod_by_ip = {p.ip: p for p in self.pods if p.ip and not p.host_network}
        self.service_by_ip = {ip: s for s in self.services for ip in s.cluster_ips + s.external_ips if ip and ip != "None"}
        for pod in self.pods:
            if pod.host_ip and pod.host_ip not in self.nodes:
                self.nodes[pod.host_ip] = pod.node
            if pod.host_network and pod.ip and pod.ip not in self.nodes:
                self.nodes[pod.ip] = pod.node
        for ns in {w.namespace for w in self.workloads} | {s.namespace for s in self.services}:
            self.namespaces.setdefault(ns, {NAMESPACE_NAME_LABEL: ns})

    # --- queries ---------------------------------------------------------------------------------

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        return self.namespaces.get(namespace) or {NAMESPACE_NAME_LABEL: namespace}

    def pods_of(self, workload: Workload) -> list[Pod]:
        return [p for p in self.pods if p.workload == workload]

    def backends(self, service: Service) -> list[Pod]:
        if service.selector is None or not service.selector:
            return []
        wanted = dict(service.selector)
        return [
            p
            for p in self.pods
            if p.namespace == service.namespace and all(dict(p.labels).get(k) == v for k, v in wanted.items())
        ]

    def backend_workloads(self, service: Service) -> list[WorkloadInfo]:
        """Workloads whose pod template the Service selects (works with manifests that have no pods)."""
        if not service.selector:
            return []
        wanted = dict(service.selector)
        return [
            info
            for w, info in sorted(self.workloads.items())
            if w.namespace == service.namespace and all(dict(info.labels).get(k) == v for k, v in wanted.items())
        ]

    def target(self, workload: Workload, ip: str | None = None) -> Target:
        """How policies see a pod of `workload` (its template labels and named ports)."""
        info = self.workloads[workload]
        if info.host_network:
            return Target(ip=ip)
        return Target(
            ip=ip,
            namespace=workload.namespace,
            labels=dict(info.labels),
            namespace_labels=self.namespace_labels(workload.namespace),
            named_ports=info.named_ports,
        )

    def listening(self) -> Callable[[str, int, str], bool]:
        """Whether (ip, port, protocol) is declared to listen: a pod's container port, a Service's port
        on its cluster IP. Orients captured packets that do not say which way they go."""
        declared = {(p.ip, c.port, c.protocol) for p in self.pods if p.ip for c in p.ports}
        for pod in self.pods:
            if pod.ip and not pod.ports and pod.workload in self.workloads:
                declared.update((pod.ip, c.port, c.protocol) for c in self.workloads[pod.workload].ports)
        declared.update((ip, sp.port, sp.protocol) for s in self.services for ip in s.cluster_ips for sp in s.ports)

        def listens(ip: str, port: int, protocol: str) -> bool:
            return (ip, port, protocol) in declared

        return listens

    def address(self, ip: str) -> Target:
        """How policies see an address that is no pod's: a node's carries its labels (ANP `nodes` peers)."""
        node = self.nodes.get(ip)
        return Target(ip=ip, node_labels=self.node_labels.get(node, {}) if node is not None else None)

    def with_workloads(self, extra: Iterable[WorkloadInfo]) -> Inventory:
        """A copy that also knows workloads learned elsewhere (e.g. from Hubble flows)."""
        workloads = dict(self.workloads)
        for info in extra:
            workloads.setdefault(info.workload, info)
        return replace(self, workloads=workloads, namespaces=dict(self.namespaces), nodes=dict(self.nodes))

    @classmethod
    def build(cls, objects: Iterable[tuple[str, Mapping[str, Any]]]) -> Inventory:
        """Resolve (source, object) pairs into an inventory."""
        return _Builder().build(objects)


# --- loading -------------------------------------------------------------------------------------


def load_inventory(paths: Iterable[str | Path]) -> Inventory:
    return Inventory.build(iter_objects(paths))


def load_policies(paths: Iterable[str | Path]) -> list[NetworkPolicy]:
    """NetworkPolicies from files or folders; other kinds are ignored, bad policies are errors."""
    policies = [
        parse_network_policy(obj, source=source) for source, obj in iter_objects(paths) if obj.get("kind") == "NetworkPolicy"
    ]
    seen: dict[str, str] = {}
    for p in policies:
        if p.ref in seen:
            raise InputError(f"NetworkPolicy {p.ref} is defined twice (also in {seen[p.ref]})", source=p.source)
        seen[p.ref] = p.source
    return policies


def load_admin_policies(paths: Iterable[str | Path]) -> list[AdminNetworkPolicy]:
    """AdminNetworkPolicies and the BaselineAdminNetworkPolicy from files or folders."""
    policies = [parse_admin_policy(obj, source=source) for source, obj in iter_objects(paths) if obj.get("kind") in ADMIN_KINDS]
    seen: dict[str, str] = {}
    for p in policies:
        key = f"{p.kind} {p.name}"
        if key in seen:
            raise InputError(f"{key} is defined twice (also in {seen[key]})", source=p.source)
        seen[key] = p.source
    return policies


def merge_admin(base: Iterable[AdminNetworkPolicy], extra: Iterable[AdminNetworkPolicy]) -> list[AdminNetworkPolicy]:
    """The cluster's admin policies with those of files laid over them (same kind and name: the file's)."""
    merged = {(p.kind, p.name): p for p in base}
    merged.update({(p.kind, p.name): p for p in extra})
    return list(merged.values())


def iter_objects(paths: Iterable[str | Path]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Yield (file, object) for every Kubernetes object in the files or directories given."""
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in _INVENTORY_SUFFIXES and p.is_file())
        elif path.is_file():
            files = [path]
        else:
            raise InputError("no such file or directory", source=str(path))
        for file in files:
            for doc in _read_documents(file):
                yield from _flatten(doc, str(file))


def _read_documents(file: Path) -> list[Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", source=str(file)) from None
    if file.suffix == ".json" or text.lstrip().startswith(("{", "[")):
        try:
            return [json.loads(text)]
        except json.JSONDecodeError as exc:
            if file.suffix == ".json":
                raise InputError(f"line {exc.lineno}: invalid JSON: {exc.msg}", source=str(file)) from None
    try:
        return [d for d in yaml.load_all(text, Loader=_YAML_LOADER) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{where}invalid YAML: {problem}", source=str(file)) from None


def _flatten(doc: Any, source: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if not isinstance(doc, dict):
        raise InputError(f"expected a Kubernetes object, got {type(doc).__name__}", source=source)
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            if isinstance(item, dict) and "kind" not in item and kind != "List":
                item = {**item, "kind": kind[: -len("List")]}
            yield from _flatten(item, source)
        return
    if not isinstance(kind, str):
        name = (doc.get("metadata") or {}).get("name", "?")
        raise InputError(f"object {name!r} has no kind", source=source)
    yield source, doc


def describe(obj: Mapping[str, Any]) -> str:
    """`Kind namespace/name` of an object, for error messages (whatever shape its metadata has)."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name, namespace = meta.get("name"), meta.get("namespace")
    name = name if isinstance(name, str) and name else "<unnamed>"
    where = f"{namespace}/{name}" if isinstance(namespace, str) and namespace else name
    return f"{obj.get('kind')} {where}"


class _Builder:
    """Two passes: collect owners and templates, then resolve pods and services against them."""

    def __init__(self) -> None:
        self.inv = Inventory()
        self.owners: dict[tuple[str, str, str], Mapping[str, Any]] = {}  # (ns, kind, name) -> object
        self.raw_pods: list[tuple[str, Mapping[str, Any]]] = []
        self.raw_endpoints: list[tuple[str, Mapping[str, Any]]] = []
        self.pod_labels: dict[Workload, list[Labels]] = {}  # workloads known only from their pods

    def build(self, objects: Iterable[tuple[str, Mapping[str, Any]]]) -> Inventory:
        for source, obj in objects:
            self._collect(source, obj)
        for key, obj in sorted(self.owners.items(), key=lambda kv: kv[0]):
            if key[1] in ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "ReplicationController") or (
                key[1] in ("Job", "ReplicaSet") and not _controller_ref(obj)
            ):
                self._add_template_workload(key, obj)
        for source, pod in self.raw_pods:
            self._add_pod(source, pod)
        for source, ep in self.raw_endpoints:
            self._add_endpoints(source, ep)
        self.inv.reindex()
        return self.inv

    def _collect(self, source: str, obj: Mapping[str, Any]) -> None:
        try:
            check_object(obj)
        except InputError as exc:
            raise InputError(exc.message, source=source, obj=describe(obj)) from None
        kind = obj["kind"]
        meta = obj.get("metadata") or {}
        name: str = meta.get("name") or ""
        if kind == "Namespace":
            labels = dict(meta.get("labels") or {})
            labels.setdefault(NAMESPACE_NAME_LABEL, name)
            self.inv.namespaces[name] = labels
            return
        if kind in ADMIN_KINDS:
            self.inv.admin_policies.append(parse_admin_policy(obj, source=source))
            return
        if kind == "Node":
            self.inv.node_labels[name] = dict(meta.get("labels") or {})
            for addr in (obj.get("status") or {}).get("addresses") or []:
                if addr.get("type") in ("InternalIP", "ExternalIP") and addr.get("address"):
                    self.inv.nodes[addr["address"]] = name
            return
        namespace = meta.get("namespace") or "default"
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"):
            if not name:
                raise InputError(f"{kind} without metadata.name", source=source)
            self.owners[(namespace, kind, name)] = {**obj, "_source": source}
        elif kind == "Pod":
            self.raw_pods.append((source, obj))
        elif kind == "Service":
            self.inv.services.append(_parse_service(obj, namespace, source))
        elif kind in ("Endpoints", "EndpointSlice"):
            self.raw_endpoints.append((source, obj))
        elif kind == "NetworkPolicy":
            self.inv.policies.append(parse_network_policy(obj, source=source, default_namespace=namespace))

    def _template(self, kind: str, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        spec = obj.get("spec") or {}
        if kind == "CronJob":
            spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
        return spec.get("template") or {}

    def _add_template_workload(self, key: tuple[str, str, str], obj: Mapping[str, Any]) -> None:
        namespace, kind, name = key
        source = obj.get("_source", "")
        template = self._template(kind, obj)
        labels = _stable(((template.get("metadata") or {}).get("labels")) or {})
        pod_spec = template.get("spec") or {}
        raw_selector = (obj.get("spec") or {}).get("selector")
        if kind in ("Job", "CronJob") or not raw_selector:
            selector = match_labels_selector(labels)  # Job selectors carry a per-run controller-uid
        elif kind == "ReplicationController":  # a plain label map, not a LabelSelector
            selector = match_labels_selector(_stable(raw_selector) if isinstance(raw_selector, dict) else labels)
        else:
            selector = parse_selector(raw_selector, source=source, obj=f"{kind} {namespace}/{name}", field="spec.selector")
            selector = Selector(tuple(kv for kv in selector.match_labels if kv[0] not in UNSTABLE_LABELS), selector.expressions)
        workload = Workload(namespace, kind, name)
        self.inv.workloads[workload] = WorkloadInfo(
            workload=workload,
            labels=freeze_labels(labels),
            selector=selector,
            ports=_container_ports(pod_spec),
            host_network=bool(pod_spec.get("hostNetwork")),
        )

    def _resolve_owner(self, namespace: str, pod_name: str, meta: Mapping[str, Any]) -> Workload:
        ref = _controller_ref({"metadata": meta})
        if ref is None:
            return Workload(namespace, "Pod", pod_name)
        kind, name = ref.get("kind", ""), ref.get("name", "")
        for _ in range(3):  # ReplicaSet -> Deployment, Job -> CronJob
            owner = self.owners.get((namespace, kind, name))
            up = _controller_ref(owner) if owner is not None else None
            if up is not None:
                kind, name = up.get("kind", ""), up.get("name", "")
                continue
            if owner is None and kind == "Job" and (m := _CRONJOB_RUN.fullmatch(name)):
                kind, name = "CronJob", m["name"]  # the Job is not in the inventory: `<cronjob>-<minute>`
            elif owner is None and kind == "ReplicaSet":
                # The ReplicaSet is not in the inventory: `<deployment>-<pod-template-hash>`.
                labels = meta.get("labels") or {}
                hash_ = labels.get("pod-template-hash")
                if hash_ and name.endswith("-" + hash_):
                    kind, name = "Deployment", name[: -len(hash_) - 1]
                elif (namespace, "Deployment", name.rsplit("-", 1)[0]) in self.owners:
                    kind, name = "Deployment", name.rsplit("-", 1)[0]
            break
        return Workload(namespace, kind, name)

    def _add_pod(self, source: str, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise InputError("Pod without metadata.name", source=source)
        namespace = meta.get("namespace") or "default"
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        workload = self._resolve_owner(namespace, name, meta)
        labels = dict(meta.get("labels") or {})
        ports = _container_ports(spec)
        host_network = bool(spec.get("hostNetwork"))
        ips = [status.get("podIP")] + [p.get("ip") for p in status.get("podIPs") or []]
        for ip in dict.fromkeys(i for i in ips if i) or [""]:  # dual-stack pods: one entry per address
            self.inv.pods.append(
                Pod(
                    namespace,
                    name,
                    ip,
                    workload,
                    freeze_labels(labels),
                    spec.get("nodeName", ""),
                    status.get("hostIP", ""),
                    host_network,
                    ports,
                )
            )
        if workload not in self.inv.workloads or workload in self.pod_labels:
            # No owner's template: the selector is what the workload's pods share.
            seen = self.pod_labels.setdefault(workload, [])
            seen.append(freeze_labels(labels))
            stable = dict(shared_labels(seen))
            earlier = self.inv.workloads.get(workload)
            self.inv.workloads[workload] = WorkloadInfo(
                workload,
                freeze_labels(stable),
                match_labels_selector(stable),
                earlier.ports if earlier is not None else ports,
                earlier.host_network if earlier is not None else host_network,
            )

    def _add_endpoints(self, source: str, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        if obj["kind"] == "Endpoints":
            service = meta.get("name", "")
            for subset in obj.get("subsets") or []:
                for addr in subset.get("addresses") or []:
                    for port in subset.get("ports") or [{}]:
                        self.inv.endpoints.setdefault(f"{namespace}/{service}", []).append(
                            (
                                addr.get("ip", ""),
                                int(port.get("port") or 0),
                                port.get("protocol") or "TCP",
                                port.get("name") or "",
                            )
                        )
        else:
            service = (meta.get("labels") or {}).get("kubernetes.io/service-name", "")
            if obj.get("addressType") == "FQDN":
                return  # addresses are DNS names, not where a flow goes
            for ep in obj.get("endpoints") or []:
                for address in ep.get("addresses") or []:
                    for port in obj.get("ports") or [{}]:
                        self.inv.endpoints.setdefault(f"{namespace}/{service}", []).append(
                            (address, int(port.get("port") or 0), port.get("protocol") or "TCP", port.get("name") or "")
                        )


def _dedupe_services(services: list[Service]) -> list[Service]:
    """One Service per namespace/name: a manifest and a cluster snapshot may both hold it. The later
    one wins, keeping the cluster IPs an earlier one knew when it has none (a manifest has none)."""
    by_ref: dict[str, Service] = {}
    for service in services:
        earlier = by_ref.get(service.ref)
        if earlier is not None and not service.cluster_ips:
            service = replace(service, cluster_ips=earlier.cluster_ips)
        by_ref[service.ref] = service
    return list(by_ref.values())


def _controller_ref(obj: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if not obj:
        return None
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    for ref in refs:
        if ref.get("controller"):
            return ref
    return refs[0] if refs else None


def _stable(labels: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k not in UNSTABLE_LABELS}


def shared_labels(pods: Iterable[Labels]) -> Labels:
    """The labels every pod of a workload carries, without the ones controllers stamp per pod or per
    revision: what a selector may use when no owner's spec.selector is known. Pods whose labels are
    unknown (an empty set) do not narrow it."""
    common: set[tuple[str, str]] | None = None
    for labels in pods:
        if labels:
            common = set(labels) if common is None else common & set(labels)
    return tuple(sorted(kv for kv in common or () if kv[0] not in UNSTABLE_LABELS))


def _container_ports(pod_spec: Mapping[str, Any]) -> tuple[ContainerPort, ...]:
    ports = []
    for container in (pod_spec.get("containers") or []) + (pod_spec.get("initContainers") or []):
        for p in container.get("ports") or []:
            if isinstance(p.get("containerPort"), int):
                ports.append(ContainerPort(p["containerPort"], p.get("protocol") or "TCP", p.get("name") or ""))
    return tuple(dict.fromkeys(ports))


def parse_service_ports(spec: Mapping[str, Any], *, source: str, obj: str) -> list[ServicePort]:
    """A Service's ports; targetPort defaults to the port and stays a name when it is one."""
    ports = []
    for p in spec.get("ports") or []:
        port = p.get("port")
        if not isinstance(port, int):
            raise InputError(f"spec.ports: invalid port {port!r}", source=source, obj=obj)
        target = p.get("targetPort", port)
        if isinstance(target, str) and target.isdigit():
            target = int(target)
        ports.append(ServicePort(port, p.get("protocol") or "TCP", target, p.get("name") or ""))
    return ports


def _parse_service(obj: Mapping[str, Any], namespace: str, source: str) -> Service:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    name = meta.get("name", "")
    ips = [spec.get("clusterIP")] + list(spec.get("clusterIPs") or [])
    ports = parse_service_ports(spec, source=source, obj=f"Service {namespace}/{name}")
    selector = spec.get("selector")
    lb = [i.get("ip") for i in ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [] if i.get("ip")]
    return Service(
        namespace=namespace,
        name=name,
        cluster_ips=tuple(dict.fromkeys(ip for ip in ips if ip and ip != "None")),
        selector=freeze_labels(selector) if selector else None,
        ports=tuple(ports),
        type=spec.get("type") or "ClusterIP",
        external_ips=tuple(list(spec.get("externalIPs") or []) + lb),
    )


@functools.lru_cache(maxsize=1 << 16)
def is_ip(value: str) -> bool:
    """Cached: a capture repeats the same few thousand addresses millions of times."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# Kubernetes' random name suffixes (generateName, pod-template-hash) use this alphabet: no vowels, no 0, 1, 3.
_SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
_RS_POD = re.compile(r"^(?P<name>.+)-(?P<hash>[a-z0-9]{6,10})-(?P<suffix>[a-z0-9]{5})$")
_CRONJOB_POD = re.compile(rf"^(?P<name>.+)-(?P<minute>\d{{8,10}})-(?P<suffix>{_SAFE}{{5}})$")
_STS_POD = re.compile(r"^(?P<name>.+)-(?P<ordinal>\d+)$")
_GENERATED_POD = re.compile(rf"^(?P<name>.+)-(?P<suffix>{_SAFE}{{5}})$")
_JOB_LABELS = ("batch.kubernetes.io/job-name", "job-name")


_CRONJOB_RUN = re.compile(r"(?P<name>.+)-\d{8,10}")
_RS_NAME = re.compile(r"(?P<name>.+)-[a-z0-9]{6,10}")


def top_owner(namespace: str, kind: str, name: str) -> Workload:
    """The top owner named by a capture's owner reference: a ReplicaSet `<deployment>-<hash>` is its
    Deployment, a Job `<cronjob>-<minute>` its CronJob (Cilium names the pod's direct owner)."""
    if kind == "ReplicaSet" and (m := _RS_NAME.fullmatch(name)):
        return Workload(namespace, "Deployment", m["name"])
    if kind == "Job" and (m := _CRONJOB_RUN.fullmatch(name)):
        return Workload(namespace, "CronJob", m["name"])
    return Workload(namespace, kind, name)


def guess_workload(namespace: str, pod_name: str, labels: Mapping[str, str] | None = None) -> Workload:
    """A workload for a pod known only by name and labels (a Hubble flow without `workloads`).

    The per-pod labels controllers stamp say the kind when a capture keeps them; else the name's
    shape: `<deployment>-<hash>-<xxxxx>`, `<cronjob>-<minute>-<xxxxx>`, `<statefulset>-<ordinal>`,
    `<daemonset or job>-<xxxxx>`; anything else is a bare pod."""
    labels = labels or {}
    job = next((labels[k] for k in _JOB_LABELS if labels.get(k)), "")
    if job:
        if m := _CRONJOB_RUN.fullmatch(job):
            return Workload(namespace, "CronJob", m["name"])
        return Workload(namespace, "Job", job)
    if m := _CRONJOB_POD.match(pod_name):
        return Workload(namespace, "CronJob", m["name"])
    if "statefulset.kubernetes.io/pod-name" in labels and (m := _STS_POD.match(pod_name)):
        return Workload(namespace, "StatefulSet", m["name"])
    if "pod-template-generation" in labels and (m := _GENERATED_POD.match(pod_name)):
        return Workload(namespace, "DaemonSet", m["name"])
    if m := _RS_POD.match(pod_name):
        return Workload(namespace, "Deployment", m["name"])
    if m := _STS_POD.match(pod_name):
        return Workload(namespace, "StatefulSet", m["name"])
    if m := _GENERATED_POD.match(pod_name):
        return Workload(namespace, "DaemonSet", m["name"])
    return Workload(namespace, "Pod", pod_name)
