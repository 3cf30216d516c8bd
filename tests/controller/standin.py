"""A small stateful stand-in for the Kubernetes API server, over HTTP on 127.0.0.1.

No API server can run on these machines, and kmock 0.8's KubernetesEmulator (evaluated) serves lists
with a placeholder resourceVersion, replays every object on each watch regardless of the
resourceVersion asked for, has no 410 Gone, no dry run and no server-side apply of a new object. This
stand-in does only what the controller needs, the way the API server does it:

- list `/api/v1/<plural>`, `/apis/<group>/<version>/<plural>` (all namespaces or one), with
  `metadata.resourceVersion` and `fieldSelector=metadata.name=`, `labelSelector=k=v`;
- watch (`?watch=1&resourceVersion=N`): the events after N from its history, then live ones, one JSON
  line each; an ERROR event with code 410 when N is older than the compacted history; a BOOKMARK when
  `bookmark(kind)` is called (the history compacted with `compact()`);
- `drop_watches()` cuts every open watch connection (a dropped connection); `set_frozen(True)` makes
  new watches silent with their connection left open (a half-open connection);
- server-side apply (`PATCH` with `application/apply-patch+yaml`, `fieldManager`, `force`, `dryRun=All`),
  and `DELETE`; every request is recorded for assertions; an optional bearer token is checked;
- create (`POST`) and replace (`PUT`) as leader election uses them on Leases: 409 AlreadyExists on a
  create of an existing object, 409 Conflict on a replace whose resourceVersion is not the current one.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PLURALS = {
    "Namespace": ("/api/v1", "namespaces", False), "Node": ("/api/v1", "nodes", False),
    "Pod": ("/api/v1", "pods", True), "Service": ("/api/v1", "services", True), "Endpoints": ("/api/v1", "endpoints", True),
    "ReplicaSet": ("/apis/apps/v1", "replicasets", True), "Deployment": ("/apis/apps/v1", "deployments", True),
    "StatefulSet": ("/apis/apps/v1", "statefulsets", True), "DaemonSet": ("/apis/apps/v1", "daemonsets", True),
    "Job": ("/apis/batch/v1", "jobs", True), "CronJob": ("/apis/batch/v1", "cronjobs", True),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies", True),
    "AdminNetworkPolicy": ("/apis/policy.networking.k8s.io/v1alpha1", "adminnetworkpolicies", False),
    "BaselineAdminNetworkPolicy": ("/apis/policy.networking.k8s.io/v1alpha1", "baselineadminnetworkpolicies", False),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases", True),
}
KIND_OF = {plural: kind for kind, (_, plural, _) in PLURALS.items()}
API_VERSION = {"/api/v1": "v1", "/apis/apps/v1": "apps/v1", "/apis/batch/v1": "batch/v1",
               "/apis/networking.k8s.io/v1": "networking.k8s.io/v1",
               "/apis/policy.networking.k8s.io/v1alpha1": "policy.networking.k8s.io/v1alpha1",
               "/apis/coordination.k8s.io/v1": "coordination.k8s.io/v1"}


class StandIn:
    def __init__(self, token: str = "") -> None:
        self.token = token
        self.rv = 100
        self.objects: dict[tuple[str, str, str], dict] = {}  # (kind, namespace, name)
        self.history: list[tuple[int, str, dict]] = []  # (rv, kind, event)
        self.compacted = 0  # events at or below this rv are gone
        self.requests: list[dict] = []
        self.reject: set[str] = set()  # policy names whose apply (dry run included) fails with 422
        self.cond = threading.Condition()
        self.drops = 0
        self.frozen = False  # new watches get their headers and then silence, the connection left open
        self._sockets: set[socket.socket] = set()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                standin._handle(self, "GET")

            def do_PATCH(self) -> None:  # noqa: N802
                standin._handle(self, "PATCH")

            def do_DELETE(self) -> None:  # noqa: N802
                standin._handle(self, "DELETE")

            def do_POST(self) -> None:  # noqa: N802
                standin._handle(self, "POST")

            def do_PUT(self) -> None:  # noqa: N802
                standin._handle(self, "PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.drop_watches()
        self.server.shutdown()
        self.server.server_close()

    # --- state changes (tests call these too) --------------------------------------------------------

    def put(self, obj: dict, *, quiet: bool = False) -> dict:
        """Create or replace an object; `quiet`: compact the history so watchers must relist (410)."""
        with self.cond:
            obj = copy.deepcopy(obj)
            kind = obj["kind"]
            meta = obj.setdefault("metadata", {})
            if PLURALS[kind][2]:
                meta.setdefault("namespace", "default")
            key = (kind, meta.get("namespace", "") if PLURALS[kind][2] else "", meta["name"])
            etype = "MODIFIED" if key in self.objects else "ADDED"
            self.rv += 1
            meta["resourceVersion"] = str(self.rv)
            obj.setdefault("apiVersion", API_VERSION[PLURALS[kind][0]])
            self.objects[key] = obj
            self._event(kind, etype, obj, quiet)
            return obj

    def delete(self, kind: str, namespace: str, name: str, *, quiet: bool = False) -> dict | None:
        with self.cond:
            obj = self.objects.pop((kind, namespace if PLURALS[kind][2] else "", name), None)
            if obj is not None:
                self.rv += 1
                obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.rv)}}
                self._event(kind, "DELETED", obj, quiet)
            return obj

    def _event(self, kind: str, etype: str, obj: dict, quiet: bool) -> None:
        if quiet:  # the change happens while watchers are away, and the history is compacted past it
            self._drop_locked()
            self.compacted = self.rv
        else:
            self.history.append((self.rv, kind, {"type": etype, "object": copy.deepcopy(obj)}))
        self.cond.notify_all()

    def bookmark(self, kind: str) -> int:
        """The resourceVersion moves on (other kinds changed, say) and the watchers of `kind` are told so by a
        BOOKMARK event (an object of the kind with only metadata.resourceVersion), as the API server does
        for watches with allowWatchBookmarks. Returns that resourceVersion."""
        with self.cond:
            self.rv += 1
            obj = {"kind": kind, "apiVersion": API_VERSION[PLURALS[kind][0]], "metadata": {"resourceVersion": str(self.rv)}}
            self.history.append((self.rv, kind, {"type": "BOOKMARK", "object": obj}))
            self.cond.notify_all()
            return self.rv

    def compact(self) -> None:
        """Forget the history up to now: a watch from an older resourceVersion gets 410 Gone."""
        with self.cond:
            self.compacted = self.rv

    def set_frozen(self, frozen: bool) -> None:
        with self.cond:
            self.frozen = frozen
            self.cond.notify_all()

    def drop_watches(self) -> None:
        with self.cond:
            self._drop_locked()

    def _drop_locked(self) -> None:
        self.drops += 1
        for sock in list(self._sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.cond.notify_all()

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        with self.cond:
            return copy.deepcopy(self.objects.get((kind, namespace if PLURALS[kind][2] else "", name)))

    def watching(self, kind: str) -> int:
        """Open watch requests of a kind (from the request log: started minus ended)."""
        with self.cond:
            return sum(1 for r in self.requests if r.get("watch") and r["kind"] == kind and not r.get("ended"))

    # --- HTTP ----------------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(h.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        record = {"method": method, "path": url.path, "query": query, "kind": "", "watch": False}
        body = b""
        if method in ("PATCH", "POST", "PUT"):
            body = h.rfile.read(int(h.headers.get("content-length") or 0))
            record["content_type"] = h.headers.get("content-type", "")
            record["body"] = json.loads(body) if body else None
        with self.cond:
            self.requests.append(record)
        if self.token and h.headers.get("authorization") != f"Bearer {self.token}":
            return self._send(h, 401, _status(401, "Unauthorized", "Unauthorized"))
        parsed = _parse_path(url.path)
        if parsed is None:
            return self._send(h, 404, _status(404, "NotFound", f"the server could not find {url.path}"))
        kind, namespace, name = parsed
        record["kind"] = kind
        if method == "GET" and name is None and query.get("watch") in ("1", "true"):
            record["watch"] = True
            return self._watch(h, record, kind, namespace, query)
        if method == "GET" and name is None:
            return self._list(h, record, kind, namespace, query)
        if method == "GET":
            obj = self.get(kind, namespace or "", name)
            return self._send(h, 200, obj) if obj else self._send(h, 404, _status(404, "NotFound", f"{name} not found"))
        if method == "PATCH":
            return self._apply(h, record, kind, namespace or "", name, query)
        if method == "POST" and name is None:
            return self._create(h, record, kind, namespace or "")
        if method == "PUT" and name is not None:
            return self._replace(h, record, kind, namespace or "", name)
        if method == "DELETE":
            obj = self.delete(kind, namespace or "", name)
            return self._send(h, 200, obj) if obj else self._send(h, 404, _status(404, "NotFound", f"{name} not found"))
        return self._send(h, 405, _status(405, "MethodNotAllowed", method))

    def _matches(self, obj: dict, namespace: str | None, query: dict) -> bool:
        meta = obj.get("metadata") or {}
        if namespace is not None and meta.get("namespace") != namespace:
            return False
        field = query.get("fieldSelector", "")
        if field.startswith("metadata.name=") and meta.get("name") != field.split("=", 1)[1]:
            return False
        label = query.get("labelSelector", "")
        if label:
            key, _, value = label.partition("=")
            if (meta.get("labels") or {}).get(key) != value:
                return False
        return True

    def _list(self, h, record: dict, kind: str, namespace: str | None, query: dict) -> None:
        with self.cond:
            items = [copy.deepcopy(o) for (k, _, _), o in sorted(self.objects.items()) if k == kind
                     and self._matches(o, namespace, query)]
            rv = record["rv"] = self.rv
        for item in items:  # a real list leaves kind and apiVersion out of its items
            item.pop("kind", None)
            item.pop("apiVersion", None)
        self._send(h, 200, {"kind": f"{kind}List", "apiVersion": API_VERSION[PLURALS[kind][0]],
                            "metadata": {"resourceVersion": str(rv)}, "items": items})

    def _watch(self, h, record: dict, kind: str, namespace: str | None, query: dict) -> None:
        since = int(query.get("resourceVersion") or 0)
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.end_headers()
        sock = h.connection
        with self.cond:
            self._sockets.add(sock)
            drops = self.drops
        try:
            with self.cond:
                for _ in range(600):  # bounded: a frozen (silent, never closed) watch
                    if not self.frozen or self.drops != drops:
                        break
                    self.cond.wait(0.1)
                if self.drops != drops:
                    return
                if since < self.compacted:
                    _write(h, {"type": "ERROR", "object": _status(410, "Expired", f"too old resource version: {since} "
                                                                                   f"({self.compacted})")})
                    return
            pos = since
            deadline_waits = int(query.get("timeoutSeconds") or 300) * 10
            for _ in range(deadline_waits):  # bounded: the server-side timeout
                with self.cond:
                    if self.drops != drops:
                        return
                    events = [(rv, e) for rv, k, e in self.history if rv > pos and k == kind
                              and (e["type"] == "BOOKMARK" or self._matches(e["object"], namespace, query))]
                    if not events:
                        self.cond.wait(0.1)
                        if self.drops != drops:
                            return
                        continue
                for rv, event in events:
                    _write(h, event)
                    pos = rv
        except OSError:
            return
        finally:
            with self.cond:
                self._sockets.discard(sock)
                record["ended"] = True

    def _apply(self, h, record: dict, kind: str, namespace: str, name: str, query: dict) -> None:
        if "apply-patch" not in record.get("content_type", ""):
            return self._send(h, 415, _status(415, "UnsupportedMediaType", "only server-side apply is served"))
        manager = query.get("fieldManager")
        if not manager:
            return self._send(h, 422, _status(422, "Invalid", "fieldManager is required for apply requests"))
        obj = record.get("body") or {}
        meta = obj.get("metadata") or {}
        if meta.get("name") != name or meta.get("namespace", namespace) != namespace or obj.get("kind") != kind:
            return self._send(h, 400, _status(400, "BadRequest", "the object does not match the path"))
        if name in self.reject:
            return self._send(h, 422, _status(422, "Invalid", f"NetworkPolicy.networking.k8s.io {name!r} is invalid"))
        current = self.get(kind, namespace, name)
        merged = copy.deepcopy(obj)
        merged["metadata"] = {**(current or {}).get("metadata", {}), **meta,
                              "managedFields": [{"manager": manager, "operation": "Apply"}]}
        if query.get("dryRun") == "All":
            merged["metadata"].setdefault("resourceVersion", str(self.rv))
            return self._send(h, 200 if current else 201, merged)
        stored = self.put(merged)
        return self._send(h, 200 if current else 201, stored)

    def _create(self, h, record: dict, kind: str, namespace: str) -> None:
        obj = {**(record.get("body") or {}), "kind": kind}
        meta = obj.setdefault("metadata", {})
        meta["namespace"] = namespace
        with self.cond:  # check and write under one lock: two creates race, one wins
            if self.get(kind, namespace, meta.get("name", "")) is not None:
                return self._send(h, 409, _status(409, "AlreadyExists", f"{kind} {meta.get('name')!r} already exists"))
            meta.pop("resourceVersion", None)
            stored = self.put(obj)
        return self._send(h, 201, stored)

    def _replace(self, h, record: dict, kind: str, namespace: str, name: str) -> None:
        obj = {**(record.get("body") or {}), "kind": kind}
        meta = obj.setdefault("metadata", {})
        with self.cond:  # the optimistic lock: the write carries the resourceVersion it read
            current = self.get(kind, namespace, name)
            if current is None:
                return self._send(h, 404, _status(404, "NotFound", f"{name} not found"))
            if meta.get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return self._send(h, 409, _status(409, "Conflict", f"the object has been modified: {name}"))
            meta.update(name=name, namespace=namespace)
            stored = self.put(obj)
        return self._send(h, 200, stored)

    def _send(self, h, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


def _write(h, event: dict) -> None:
    h.wfile.write(json.dumps(event).encode() + b"\n")
    h.wfile.flush()


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message}


def _parse_path(path: str) -> tuple[str, str | None, str | None] | None:
    """-> (kind, namespace or None, name or None)."""
    for prefix in sorted(API_VERSION, key=len, reverse=True):
        if path.startswith(prefix + "/"):
            parts = path[len(prefix) + 1:].split("/")
            break
    else:
        return None
    if parts[0] == "namespaces" and len(parts) >= 3:
        namespace, plural, name = parts[1], parts[2], (parts[3] if len(parts) > 3 else None)
    else:
        namespace, plural, name = None, parts[0], (parts[1] if len(parts) > 1 else None)
    kind = KIND_OF.get(plural)
    if kind is None:
        return None
    if not PLURALS[kind][2]:
        namespace = None
    return kind, namespace, name
