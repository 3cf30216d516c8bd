"""WAF blocks for the map: the sidecar's audit log (read with `waf.audit`, the one schema), summed per
graph node it protected.

Which node: the record's namespace and workload (the sidecar's environment, set by injection), else its
pod's workload (the graph nodes list their pods), else the Host it was called by (a Service name: the
workload its traffic reached). Records that are not blocks are counted but not listed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from netguard.errors import InputError
from waf.audit import AuditLogError, AuditRecord, read_audit_log

RECENT = 20
TOP_RULES = 10


def read_waf_log(path: str | Path) -> list[AuditRecord]:
    try:
        return read_audit_log(path)
    except AuditLogError as exc:
        raise InputError(exc.message, source=exc.source) from exc
    except OSError as exc:
        raise InputError(f"cannot read the WAF audit log ({exc.strerror})", source=str(path)) from exc


class _Index:
    """The graph's workloads by id, by name, by pod, and by the Services whose traffic reached them."""

    def __init__(self, graph: dict) -> None:
        self.by_id = {n["id"]: n for n in graph.get("nodes", []) if n.get("kind") == "workload"}
        self.by_name: dict[str, list[str]] = {}
        self.by_pod: dict[tuple[str, str], str] = {}
        for node in self.by_id.values():
            self.by_name.setdefault(str(node.get("name")), []).append(node["id"])
            for pod in node.get("pods") or []:
                self.by_pod[(str(node.get("namespace")), str(pod.get("name")))] = node["id"]
        self.by_service: dict[str, set[str]] = {}
        for edge in graph.get("edges", []):
            if edge.get("via_service"):
                self.by_service.setdefault(edge["via_service"], set()).add(edge["target"])

    def target(self, r: AuditRecord) -> str | None:
        return self._by_workload(r) or self.by_pod.get((r.namespace, r.pod)) or self._by_host(r)

    def _by_workload(self, r: AuditRecord) -> str | None:
        name = r.workload_name
        if not name:
            return None
        if r.namespace and f"{r.namespace}/{name}" in self.by_id:
            return f"{r.namespace}/{name}"
        return self._one(name, r.namespace)

    def _one(self, name: str, namespace: str) -> str | None:
        candidates = self.by_name.get(name, [])
        if namespace:
            candidates = [c for c in candidates if self.by_id[c].get("namespace") == namespace] or candidates
        return candidates[0] if len(candidates) == 1 else None

    def _by_host(self, r: AuditRecord) -> str | None:
        host = r.host.strip().lower()
        if not host:
            return None
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        labels = host.split(".")
        name = labels[0]
        namespace = labels[1] if len(labels) > 1 else r.namespace
        services = (
            [f"{namespace}/{name}"] if namespace else [s for s in self.by_service if s.split("/", 1)[1] == name]
        )
        backends = sorted({t for s in services for t in self.by_service.get(s, ())})
        if len(backends) == 1:
            return backends[0]
        return self._one(name, namespace)


def summarize_blocks(records: list[AuditRecord], graph: dict) -> dict[str, Any]:
    """{"targets": {node id: {blocked, categories, rules, last, recent}}, "top_rules": [[rule, n]...],
    "unmatched": n, "blocked": n, "requests": n}."""
    index = _Index(graph)
    targets: dict[str, dict[str, Any]] = {}
    top_rules: Counter[int] = Counter()
    unmatched = 0
    blocked = [r for r in records if r.blocked]
    for record in blocked:
        top_rules.update(record.rule_ids)
        target = index.target(record)
        if target is None:
            unmatched += 1
            continue
        entry = targets.setdefault(
            target, {"blocked": 0, "categories": Counter(), "rules": Counter(), "last": 0.0, "recent": []}
        )
        entry["blocked"] += 1
        entry["categories"].update(record.categories)
        entry["rules"].update(record.rule_ids)
        entry["last"] = max(entry["last"], record.time)
        entry["recent"].append(
            {"time": record.time, "request_id": record.request_id, "client": record.client,
             "path": record.uri, "categories": list(record.categories), "rule_ids": list(record.rule_ids),
             "pod": record.pod}
        )  # fmt: skip
    for entry in targets.values():
        entry["categories"] = dict(entry["categories"].most_common())
        entry["rules"] = [[rule, n] for rule, n in entry["rules"].most_common(TOP_RULES)]
        entry["recent"] = entry["recent"][-RECENT:][::-1]
    return {
        "targets": targets,
        "top_rules": [[rule, n] for rule, n in top_rules.most_common(TOP_RULES)],
        "unmatched": unmatched,
        "blocked": len(blocked),
        "requests": len(records),
    }
