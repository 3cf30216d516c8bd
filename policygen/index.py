"""Which workloads a selector picks, answered from a label index instead of a scan."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from netguard.inventory import Inventory, WorkloadInfo
from netguard.model import Workload
from netguard.netpol import PolicyPeer
from netguard.selectors import Selector


class WorkloadIndex:
    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.by_namespace: dict[str, set[Workload]] = defaultdict(set)
        self.by_label: dict[tuple[str, str, str], set[Workload]] = defaultdict(set)
        self.labels: dict[Workload, dict[str, str]] = {}
        for workload, info in inventory.workloads.items():
            self._add(workload, info)
        self._ns_by_label: dict[tuple[str, str], set[str]] = defaultdict(set)
        for ns in set(self.by_namespace) | set(inventory.namespaces):
            for kv in inventory.namespace_labels(ns).items():
                self._ns_by_label[kv].add(ns)
        self.ips: dict[Workload, list[str]] = defaultdict(list)
        for pod in inventory.pods:
            if pod.ip and not pod.host_network:
                self.ips[pod.workload].append(pod.ip)

    def _add(self, workload: Workload, info: WorkloadInfo) -> None:
        labels = dict(info.labels)
        self.labels[workload] = labels
        self.by_namespace[workload.namespace].add(workload)
        for key, value in labels.items():
            self.by_label[(workload.namespace, key, value)].add(workload)

    def select(self, namespace: str, selector: Selector) -> set[Workload]:
        """Workloads of `namespace` whose pod labels the selector matches (hostNetwork ones never)."""
        if selector.match_labels:
            sets = [self.by_label.get((namespace, k, v), set()) for k, v in selector.match_labels]
            found = set.intersection(*sorted(sets, key=len)) if sets else set()
        else:
            found = set(self.by_namespace.get(namespace, ()))
        if selector.expressions:
            found = {w for w in found if selector.matches(self.labels[w])}
        return {w for w in found if not self.inventory.workloads[w].host_network}

    def namespaces(self, selector: Selector | None, policy_namespace: str) -> list[str]:
        if selector is None:
            return [policy_namespace]
        if selector.match_labels:
            sets = [self._ns_by_label.get(kv, set()) for kv in selector.match_labels]
            names = set.intersection(*sets)
        else:
            names = set(self.by_namespace) | set(self.inventory.namespaces)
        return sorted(ns for ns in names if selector.matches(self.inventory.namespace_labels(ns)))

    def peer_workloads(self, peer: PolicyPeer, policy_namespace: str) -> set[Workload]:
        if peer.ip_block is not None:
            return {w for w, ips in self.ips.items() if any(peer.ip_block.contains(ip) for ip in ips)}
        selector = peer.pod_selector or Selector()
        out: set[Workload] = set()
        for ns in self.namespaces(peer.namespace_selector, policy_namespace):
            out |= self.select(ns, selector)
        return out

    def rule_workloads(self, peers: Iterable[PolicyPeer], policy_namespace: str) -> set[Workload] | None:
        """Workloads a rule's peers match; None means every peer (an empty from/to)."""
        peers = list(peers)
        if not peers:
            return None
        out: set[Workload] = set()
        for peer in peers:
            out |= self.peer_workloads(peer, policy_namespace)
        return out
