"""Where the UI's data comes from: a local Review built from files, or the controller's API.

Both answer the same paths with the same JSON shapes (the controller's review API):

    GET  /api/v1/graph             Review.graph_json()
    GET  /api/v1/policies          Review.policies_json(approvals)
    GET  /api/v1/policies/diff     Review.diff_json()
    GET  /api/v1/policies/impact   Review.impact_json(approvals)
    POST /api/v1/policies/approve  {"workload": "ns/Kind/name", "decision": "approved"|"rejected"|"pending"}
    GET  /api/v1/alerts            list of alerts (may be empty)
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Protocol

from netguard.errors import InputError
from policygen.review import DECISIONS, Review

API_GETS = ("graph", "policies", "policies/diff", "policies/impact", "alerts")


class BackendError(Exception):
    """An answer the page should see as an HTTP error (status and one-line message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Backend(Protocol):
    mode: str

    async def get(self, path: str) -> Any: ...

    async def post(self, path: str, body: Any) -> Any: ...

    async def close(self) -> None: ...


def enrich_graph(graph: dict, review: Review) -> dict:
    """Add what the page shows on click and filters by, when the inventory is at hand: each workload
    node's pod labels and its pods. Additive: the page works without these fields (controller mode)."""
    infos = {f"{w.namespace}/{w.name}": (w, info) for w, info in review.inventory.workloads.items()}
    for node in graph["nodes"]:
        found = infos.get(node["id"]) if node.get("kind") == "workload" else None
        if found is None:
            continue
        workload, info = found
        node["labels"] = dict(info.labels)
        node["pods"] = [{"name": p.name, "ip": p.ip, "node": p.node} for p in review.inventory.pods_of(workload)]
        node["ports"] = [f"{p.port}/{p.protocol}" + (f" ({p.name})" if p.name else "") for p in info.ports]
    return graph


class LocalBackend:
    """A Review built once from inventory and flow files; approvals kept in memory (and in a JSON file
    when one is given, so a restart keeps them)."""

    mode = "local"

    def __init__(self, review: Review, approvals_file: str | Path | None = None) -> None:
        self.review = review
        self.approvals_file = Path(approvals_file) if approvals_file else None
        self.approvals: dict[str, str] = {}
        self._lock = threading.Lock()
        self._workloads = {g.workload.key for g in review.generated}
        if self.approvals_file and self.approvals_file.exists():
            try:
                data = json.loads(self.approvals_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InputError(f"not a JSON approvals file ({exc})", source=str(self.approvals_file)) from exc
            if not isinstance(data, dict):
                raise InputError("expected a JSON object of workload -> decision", source=str(self.approvals_file))
            self.approvals = {str(k): str(v) for k, v in data.items() if v in DECISIONS}
        self._graph = enrich_graph(review.graph_json(), review)

    async def get(self, path: str) -> Any:
        with self._lock:
            approvals = dict(self.approvals)
        if path == "graph":
            return self._graph
        if path == "policies":
            return self.review.policies_json(approvals)
        if path == "policies/diff":
            return self.review.diff_json()
        if path == "policies/impact":
            return self.review.impact_json(approvals)
        if path == "alerts":
            return []
        raise BackendError(404, f"no such path: /api/v1/{path}")

    async def post(self, path: str, body: Any) -> Any:
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
        return {"workload": workload, "status": decision}

    async def close(self) -> None:
        pass


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".netguard-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


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

    async def _send(self, method: str, path: str, body: Any = None) -> Any:
        import httpx

        try:
            response = await self._client.request(method, f"/api/v1/{path}", json=body)
        except httpx.HTTPError as exc:
            raise BackendError(502, f"controller {self.url} unreachable: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise BackendError(response.status_code, f"controller answered {response.status_code}: {detail}")
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError(502, f"controller {self.url} answered with something that is not JSON") from exc

    async def get(self, path: str) -> Any:
        return await self._send("GET", path)

    async def post(self, path: str, body: Any) -> Any:
        return await self._send("POST", path, body)

    async def close(self) -> None:
        await self._client.aclose()
