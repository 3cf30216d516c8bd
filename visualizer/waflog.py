"""WAF blocks for the map: the sidecar's JSON-lines audit log, summed per targeted graph node.

Each line has at least `time`, `request_id`, `blocked`, `categories`, `path`, `client`, and the
`workload` ("ns/name" or "ns/Kind/name") or `host` (a Service host name, with or without a port) it
protected when known. Lines that are not blocks are counted but not listed.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from netguard.errors import InputError

RECENT = 20


def read_waf_log(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read the WAF audit log ({exc.strerror})", source=str(path)) from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not a JSON line ({exc.msg})", source=f"{path}:{n}") from exc
        if not isinstance(record, dict):
            raise InputError("expected a JSON object", source=f"{path}:{n}")
        records.append(record)
    return records


def _target(
    record: dict[str, Any], by_id: dict[str, dict], by_name: dict[str, list[str]], by_service: dict[str, set[str]]
) -> str | None:
    workload = str(record.get("workload") or "")
    if workload:
        parts = workload.split("/")
        if len(parts) == 3:
            workload = f"{parts[0]}/{parts[2]}"
        if workload in by_id:
            return workload
        candidates = by_name.get(parts[-1], [])
        if len(candidates) == 1:
            return candidates[0]
    host = str(record.get("host") or "").strip().lower()
    if host:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        labels = host.split(".")
        name = labels[0]
        namespace = labels[1] if len(labels) > 1 else ""
        # a Service name: the workloads its traffic reached (the edges' via_service), else a workload name
        services = [f"{namespace}/{name}"] if namespace else [s for s in by_service if s.split("/", 1)[1] == name]
        backends = sorted({t for s in services for t in by_service.get(s, ())})
        if len(backends) == 1:
            return backends[0]
        candidates = by_name.get(name, [])
        if namespace:
            narrowed = [c for c in candidates if by_id[c].get("namespace") == namespace]
            candidates = narrowed or candidates
        if len(candidates) == 1:
            return candidates[0]
    return None


def summarize_blocks(records: list[dict[str, Any]], graph: dict) -> dict[str, Any]:
    """{"targets": {node id: {blocked, categories, last, recent}}, "unmatched": n, "blocked": n, "requests": n}."""
    by_id = {n["id"]: n for n in graph.get("nodes", [])}
    by_name: dict[str, list[str]] = {}
    for node in by_id.values():
        if node.get("kind") == "workload":
            by_name.setdefault(str(node.get("name")), []).append(node["id"])
    by_service: dict[str, set[str]] = {}
    for edge in graph.get("edges", []):
        if edge.get("via_service"):
            by_service.setdefault(edge["via_service"], set()).add(edge["target"])
    targets: dict[str, dict[str, Any]] = {}
    unmatched = 0
    blocked_total = 0
    for record in records:
        if not record.get("blocked"):
            continue
        blocked_total += 1
        target = _target(record, by_id, by_name, by_service)
        if target is None:
            unmatched += 1
            continue
        entry = targets.setdefault(target, {"blocked": 0, "categories": Counter(), "last": 0.0, "recent": []})
        entry["blocked"] += 1
        categories = record.get("categories") or []
        if isinstance(categories, str):
            categories = [categories]
        entry["categories"].update(str(c) for c in categories)
        entry["last"] = max(entry["last"], _as_time(record.get("time")))
        entry["recent"].append({k: record.get(k) for k in ("time", "request_id", "client", "path", "categories")})
    for entry in targets.values():
        entry["categories"] = dict(entry["categories"].most_common())
        entry["recent"] = entry["recent"][-RECENT:][::-1]
    return {"targets": targets, "unmatched": unmatched, "blocked": blocked_total, "requests": len(records)}


def _as_time(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            from datetime import datetime

            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                return 0.0
    return 0.0
