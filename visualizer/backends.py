"""Where the UI's data comes from: a local Review built from files, or the controller's API.

Both answer the same paths with the same JSON shapes (the controller's review API):

    GET  /api/v1/graph             Review.graph_json()
    GET  /api/v1/policies          Review.policies_json(approvals); ?limit=N&continue=TOKEN for pages
    GET  /api/v1/namespaces        every namespace with its counts, and the traffic between namespaces
    GET  /api/v1/namespaces/{ns}/graph|policies|diff|impact   one namespace's part (policies paginated)
    GET  /api/v1/workloads/{ns}/{kind}/{name}/policy           one workload's policy
    GET  /api/v1/policies/diff     Review.diff_json()
    GET  /api/v1/policies/impact   Review.impact_json(approvals)
    POST /api/v1/policies/approve  {"workload": "ns/Kind/name", "decision": "approved"|"rejected"|"pending", "digest"}
    GET  /api/v1/alerts            {"alerts": [...]}: the controller's lateral-movement alerts (none locally)
    GET  /api/v1/audit             {"audit": [...]}: decisions, applies and deletes, newest first
    POST/DELETE /api/v1/policies/apply   the controller only (a cluster to apply to)
    events()                       Server-Sent Events: the controller's, or the local decisions

Writes may carry the browser's own `Authorization` (a write token typed into the page): it is sent to
the controller instead of the UI's token, which the shipped manifests make read-only.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from netguard.errors import InputError
from policygen.controller.events import EventHub, EventKind
from policygen.review import DECISIONS, Review

API_GETS = ("graph", "policies", "policies/diff", "policies/impact", "alerts", "namespaces", "audit")
# The per-namespace and per-workload reads: the UI opens a large cluster's namespaces one at a time and
# pages through their policies (both backends answer them; a workload's graph, diff and impact: the controller).
_NS = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
API_GET_PATTERN = re.compile(rf"namespaces/{_NS}/(graph|policies|diff|impact)"
                             rf"|workloads/{_NS}/[A-Za-z]+/[^/]+/(policy|graph|diff|impact)")


class BackendError(Exception):
    """An answer the page should see as an HTTP error (status and one-line message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Backend(Protocol):
    """get() answers JSON data, or JSON already encoded as bytes (passed on as it is)."""

    mode: str

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any: ...

    async def post(self, path: str, body: Any, auth: str | None = None) -> Any: ...

    async def delete(self, path: str, auth: str | None = None) -> Any: ...

    def events(self) -> AsyncIterator[bytes]: ...

    async def close(self) -> None: ...


class LocalBackend:
    """A Review built once from inventory and flow files; approvals kept in memory (and in a JSON file
    when one is given, so a restart keeps them).

    The answers are computed once, off the event loop, and kept: the graph as ready-made JSON bytes,
    the policies without their statuses (each answer sets the current statuses), the diff, and the
    impact per set of decisions. `warm()` computes them all in the background at start-up, so the
    review view of a big cluster does not wait for them when the map is already shown."""

    mode = "local"

    def __init__(self, review: Review, approvals_file: str | Path | None = None) -> None:
        self.review = review
        self.approvals_file = Path(approvals_file) if approvals_file else None
        self.approvals: dict[str, str] = {}
        self._lock = threading.Lock()
        self._compute = threading.Lock()
        self._workloads = {g.workload.key for g in review.generated}
        if self.approvals_file and self.approvals_file.exists():
            try:
                data = json.loads(self.approvals_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InputError(f"not a JSON approvals file ({exc})", source=str(self.approvals_file)) from exc
            if not isinstance(data, dict):
                raise InputError("expected a JSON object of workload -> decision", source=str(self.approvals_file))
            self.approvals = {str(k): str(v) for k, v in data.items() if v in DECISIONS}
        self.graph = review.graph_json()
        self._graph_bytes = json.dumps(self.graph, separators=(",", ":")).encode("utf-8")
        self._policies: dict | None = None
        self._diff: bytes | None = None
        self._impact: dict[frozenset, bytes] = {}
        self.audit: list[dict] = []
        self.hub = EventHub()

    def warm(self) -> threading.Thread:
        thread = threading.Thread(target=self._warm, name="netguard-ui-warm", daemon=True)
        thread.start()
        return thread

    def _warm(self) -> None:
        self._policies_base()
        self._diff_bytes()
        self._impact_bytes(self._snapshot())

    def _snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self.approvals)

    def _policies_base(self) -> dict:
        with self._compute:
            if self._policies is None:
                self._policies = self.review.policies_json({})
            return self._policies

    def _diff_bytes(self) -> bytes:
        with self._compute:
            if self._diff is None:
                self._diff = json.dumps(self.review.diff_json(), separators=(",", ":")).encode("utf-8")
            return self._diff

    def _impact_bytes(self, approvals: dict[str, str]) -> bytes:
        key = frozenset(approvals.items())
        with self._compute:
            if key not in self._impact:
                if len(self._impact) > 64:
                    self._impact.clear()
                self._impact[key] = json.dumps(self.review.impact_json(approvals), separators=(",", ":")).encode("utf-8")
            return self._impact[key]

    def _policies_bytes(self, approvals: dict[str, str]) -> bytes:
        base = self._policies_base()
        items = [dict(p, status=approvals.get(p["workload"], "pending")) for p in base["policies"]]
        return json.dumps({"policies": items, "warnings": base["warnings"]}, separators=(",", ":")).encode("utf-8")

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        from starlette.concurrency import run_in_threadpool

        params = params or {}
        approvals = self._snapshot()
        if path == "graph":
            return self._graph_bytes
        if path == "policies":
            if params.get("limit") or params.get("continue"):
                return await run_in_threadpool(self._policies_page, None, approvals, params)
            return await run_in_threadpool(self._policies_bytes, approvals)
        if path == "policies/diff":
            return await run_in_threadpool(self._diff_bytes)
        if path == "policies/impact":
            return await run_in_threadpool(self._impact_bytes, approvals)
        if path == "alerts":
            return {"alerts": []}
        if path == "audit":
            return {"audit": list(reversed(self.audit))}
        if path == "namespaces":
            return namespaces_overview(self.graph, Counter(g.workload.namespace for g in self.review.generated))
        if API_GET_PATTERN.fullmatch(path):
            parts = path.split("/")
            if parts[0] == "namespaces":
                return await run_in_threadpool(self._namespace_part, parts[1], parts[2], approvals, params)
            if parts[-1] == "policy":
                key = "/".join(parts[1:4])
                item = next((p for p in self._policies_base()["policies"] if p["workload"] == key), None)
                if item is None:
                    raise BackendError(404, f"no generated policy for workload {key!r}")
                return dict(item, status=approvals.get(key, "pending"))
            raise BackendError(404, f"/api/v1/{path}: served by the controller only (netguard ui --controller URL)")
        raise BackendError(404, f"no such path: /api/v1/{path}")

    def _policies_page(self, namespace: str | None, approvals: dict[str, str], params: Mapping[str, str]) -> dict:
        base = self._policies_base()
        items = [p for p in base["policies"] if namespace is None or p["namespace"] == namespace]
        page, metadata = paginate(items, params)
        return {"policies": [dict(p, status=approvals.get(p["workload"], "pending")) for p in page],
                "warnings": base["warnings"], **({"metadata": metadata} if metadata is not None else {})}

    def _namespace_part(self, namespace: str, part: str, approvals: dict[str, str], params: Mapping[str, str]) -> dict:
        """What the controller answers under /api/v1/namespaces/{ns}/: its graph, policies, diff, impact."""
        if part == "graph":
            return namespace_graph(self.graph, namespace)
        if part == "policies":
            return self._policies_page(namespace, approvals, params)
        if part == "diff":
            changes = json.loads(self._diff_bytes())["changes"]
            return {"changes": [c for c in changes if c["ref"].split("/", 1)[0] == namespace]}
        impact = json.loads(self._impact_bytes(approvals))
        inside = namespace_graph(self.graph, namespace)["stats"]["edges"]

        def touches(d: dict) -> bool:
            return any(end.split("/", 1)[0] == namespace and "/" in end for end in (d["source"], d["target"]))

        return {label: {"denied": [d for d in v["denied"] if touches(d)], "edges": inside} for label, v in impact.items()}

    def events(self) -> AsyncIterator[bytes]:
        return self.hub.stream()

    async def delete(self, path: str, auth: str | None = None) -> Any:
        raise BackendError(501, "apply and remove need a cluster: run netguard ui --controller URL")

    async def post(self, path: str, body: Any, auth: str | None = None) -> Any:
        if path == "policies/apply":
            raise BackendError(501, "apply and remove need a cluster: run netguard ui --controller URL")
        if path != "policies/approve":
            raise BackendError(404, f"no such path: /api/v1/{path}")
        if not isinstance(body, dict):
            raise BackendError(400, "expected a JSON object with workload and decision")
        workload, decision = body.get("workload"), body.get("decision")
        if decision not in DECISIONS:
            raise BackendError(400, f"decision must be one of {', '.join(DECISIONS)}")
        if workload not in self._workloads:
            raise BackendError(404, f"no generated policy for workload {workload!r}")
        with self._lock:
            self.approvals[workload] = decision
            snapshot = dict(self.approvals)
        if self.approvals_file:
            _write_atomic(self.approvals_file, json.dumps(snapshot, indent=2, sort_keys=True) + "\n")
        import time

        action = {"approved": "approve", "rejected": "reject"}.get(decision, "reset")
        self.audit.append({"id": len(self.audit) + 1, "at": time.time(), "action": action, "workload": workload,
                           "ref": "", "digest": "", "by": "local", "detail": ""})
        self.hub.publish(EventKind.REVIEW, workload=workload, decision=decision)
        return {"workload": workload, "decision": decision}

    async def close(self) -> None:
        pass


_WORST = {"allowed": 1, "not-covered": 2, "denied": 3}


def namespaces_overview(graph: dict, policies: Counter[str]) -> dict:
    """The controller's /api/v1/namespaces from a whole graph document (files: everything is at hand)."""
    ns_of = {n["id"]: n["namespace"] for n in graph["nodes"] if n.get("kind") == "workload"}
    counts: dict[str, dict] = {ns: {"name": ns, "workloads": 0, "edges": 0} for ns in graph["namespaces"]}
    for node_ns in ns_of.values():
        counts[node_ns]["workloads"] += 1
    links: dict[tuple[str, str], dict] = {}
    for e in graph["edges"]:
        a, b = ns_of.get(e["source"]), ns_of.get(e["target"])
        for ns in {a, b} - {None}:
            counts[str(ns)]["edges"] += 1
        if a is None or b is None:
            continue
        link = links.setdefault((a, b), {"source": a, "target": b, "edges": 0, "connections": 0, "ports": set(),
                                         "verdict": "allowed", "candidate_verdict": "allowed"})
        link["edges"] += 1
        link["connections"] += e.get("connections", 0)
        link["ports"].add(e["key"])
        for field in ("verdict", "candidate_verdict"):
            verdict = e.get(field) or "not-covered"
            if _WORST.get(verdict, 2) > _WORST[link[field]]:
                link[field] = verdict
    for link in links.values():
        link["ports"] = sorted(link["ports"])
    items = [{**c, "policies": policies[ns]} for ns, c in sorted(counts.items())]
    return {"namespaces": items, "links": [links[k] for k in sorted(links)]}


def namespace_graph(graph: dict, namespace: str) -> dict:
    """The part of a graph document around one namespace: every edge touching it and their ends."""
    inside = {n["id"] for n in graph["nodes"] if n.get("namespace") == namespace}
    edges = [e for e in graph["edges"] if e["source"] in inside or e["target"] in inside]
    ids = {i for e in edges for i in (e["source"], e["target"])}
    nodes = [n for n in graph["nodes"] if n["id"] in ids]
    return {**graph, "nodes": nodes, "edges": edges, "namespaces": sorted({n["namespace"] for n in nodes if n["namespace"]}),
            "stats": {"workloads": sum(1 for n in nodes if n.get("kind") == "workload"), "nodes": len(nodes),
                      "edges": len(edges), "connections": sum(e.get("connections", 0) for e in edges)}}


def paginate(items: list[dict], params: Mapping[str, str]) -> tuple[list[dict], dict | None]:
    """A page of policies in workload order, as the controller's API gives them: `limit` items after the
    workload a `continue` token names (the token is the workload's key, base64url, as the controller's).
    Without limit and continue: everything, and no metadata."""
    limit_text, token = params.get("limit", ""), params.get("continue", "")
    if not limit_text and not token:
        return items, None
    try:
        limit = int(limit_text or 0)
        after = base64.urlsafe_b64decode(token.encode()).decode() if token else ""
        if token and after.count("/") != 2:  # a workload key, namespace/Kind/name
            raise ValueError(after)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BackendError(400, f"limit or continue: not a page this API gave out ({limit_text!r}, {token[:80]!r})") from None
    if limit < 0:
        raise BackendError(400, "limit: expected 0 (everything) or more")
    rest = [p for p in items if p["workload"] > after] if after else items
    page = rest[:limit] if limit else rest
    more = len(rest) > len(page)
    nxt = base64.urlsafe_b64encode(page[-1]["workload"].encode()).decode() if more and page else ""
    return page, {"continue": nxt, "remainingItemCount": len(rest) - len(page)}


def _write_atomic(path: Path, text: str) -> None:
    from netguard.files import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)


class ControllerBackend:
    """Forwards the review API to a running `netguard controller` (with its bearer token)."""

    mode = "controller"

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    async def _send(self, method: str, path: str, body: Any = None, auth: str | None = None,
                    params: Mapping[str, str] | None = None) -> Any:
        import httpx

        headers = {"Authorization": auth} if auth else None
        try:
            response = await self._client.request(method, f"/api/v1/{path}", json=body, headers=headers,
                                                  params=dict(params) if params else None)
        except httpx.HTTPError as exc:
            raise BackendError(502, f"controller {self.url} unreachable: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise BackendError(response.status_code, f"controller answered {response.status_code}: {detail}")
        if method == "GET":
            return response.content  # passed on as it came (the page parses it)
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError(502, f"controller {self.url} answered with something that is not JSON") from exc

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return await self._send("GET", path, params=params)

    async def post(self, path: str, body: Any, auth: str | None = None) -> Any:
        return await self._send("POST", path, body, auth)

    async def delete(self, path: str, auth: str | None = None) -> Any:
        return await self._send("DELETE", path, None, auth)

    async def events(self) -> AsyncIterator[bytes]:
        """The controller's event stream, passed on as it comes; an `error` event when it cannot be had
        (the page's EventSource then retries)."""
        import httpx

        try:
            async with self._client.stream("GET", "/api/v1/events", timeout=httpx.Timeout(30.0, read=None)) as response:
                if response.status_code != 200:
                    yield f"event: error\ndata: {json.dumps({'status': response.status_code})}\n\n".encode()
                    return
                async for chunk in response.aiter_raw():
                    yield chunk
        except httpx.HTTPError as exc:
            yield f"event: error\ndata: {json.dumps({'error': str(exc)})}\n\n".encode()

    async def close(self) -> None:
        await self._client.aclose()


def load_json(data: Any) -> Any:
    """What get() answered, as data."""
    if isinstance(data, bytes | bytearray):
        try:
            return json.loads(data)
        except ValueError as exc:
            raise BackendError(502, "the data source answered with something that is not JSON") from exc
    return data
