"""The Kubernetes client adapter, kept thin: list+watch into a dict of raw objects.

The `kubernetes` client supplies what is hard to get right (in-cluster config, kubeconfig with its
auth plugins, CA and client certificates, token refresh); the requests themselves are plain HTTP
(httpx) on the API paths, so objects stay the raw JSON dicts `Inventory.build` reads from files.

One reflector thread per kind: list (remember `metadata.resourceVersion`), then watch from it
(`allowWatchBookmarks`), applying ADDED/MODIFIED/DELETED to the cache and advancing the
resourceVersion. A dropped connection or a server-side timeout resumes the watch from the last
resourceVersion; `410 Gone` (an ERROR event with code 410, or an HTTP 410) relists, and so does
`relist` seconds after the last list (a safety net; 0: never). A builder thread rebuilds the
inventory from the cache at most every `rebuild_interval` seconds when something changed, and swaps it
in: its readers (the controller's ingest, the agent's enrichment) never wait for a rebuild. With
`max_share`, rebuilds are also spaced so that they take at most that share of a core: a rebuild is the
whole inventory (2 s of CPU at 20,000 pods), and a node agent must not spend a core on pod churn.

The controller (policygen/controller/kube.py) watches every kind it needs; the node agent only what
its pod cache resolves flows with.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from netguard.errors import InputError
from netguard.inventory import Inventory

log = logging.getLogger("netguard.kube")


@dataclass
class Cluster:
    """Where the API server is and how to talk to it."""

    host: str
    verify: Any = True
    cert: tuple[str, str] | None = None
    token: Any = None  # a callable returning "Bearer ..." (refreshed), or None
    extra_headers: dict[str, str] = field(default_factory=dict)
    configuration: Any = None  # the kubernetes client's Configuration, for the typed APIs (the Lease)

    def client(self, timeout: float | None = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.host, verify=self.verify, cert=self.cert,
                            timeout=httpx.Timeout(timeout, connect=10.0), headers=self.extra_headers)

    def headers(self) -> dict[str, str]:
        value = self.token() if callable(self.token) else self.token
        return {"Authorization": value} if value else {}


def load_cluster(mode: str = "auto", kubeconfig: str = "") -> Cluster | None:
    """In-cluster config, or a kubeconfig, through the kubernetes client. None when neither exists (auto)."""
    from kubernetes import client, config

    cfg = client.Configuration()
    tried = []
    if mode in ("auto", "in-cluster"):
        try:
            config.load_incluster_config(client_configuration=cfg)
            return _from_configuration(cfg)
        except config.ConfigException as exc:
            tried.append(f"in-cluster: {exc}")
            if mode == "in-cluster":
                raise InputError(f"no in-cluster configuration ({exc})") from None
    try:
        config.load_kube_config(config_file=kubeconfig or None, client_configuration=cfg)
        return _from_configuration(cfg)
    except (config.ConfigException, OSError, TypeError) as exc:
        tried.append(f"kubeconfig: {exc}")
        if mode == "kubeconfig" or kubeconfig:
            raise InputError(f"cannot load the kubeconfig ({exc})") from None
    log.info("no cluster: %s", "; ".join(tried))
    return None


def _from_configuration(cfg: Any) -> Cluster:
    verify: Any = (cfg.ssl_ca_cert or True) if cfg.verify_ssl else False
    cert = (cfg.cert_file, cfg.key_file) if cfg.cert_file and cfg.key_file else None

    def token() -> str | None:
        auth = cfg.auth_settings().get("BearerToken")
        value = auth["value"] if auth else None
        if value and not value.lower().startswith("bearer "):
            value = "Bearer " + value
        return value

    return Cluster(host=cfg.host.rstrip("/"), verify=verify, cert=cert, token=token, configuration=cfg)


class Gone(Exception):
    """410: the resourceVersion is too old; relist."""


class KubeInventory:
    """The inventory from the cluster, kept current by one list+watch reflector per kind."""

    def __init__(self, cluster: Cluster, kinds: dict[str, str], metrics: Any = None,
                 rebuild_interval: float = 1.0, watch_timeout: int = 300, backoff: float = 0.5,
                 silence: float = 60.0, relist: float = 0.0, max_share: float = 0.0,
                 cpu_clock: Callable[[], float] = time.thread_time) -> None:
        self.cluster = cluster
        self.kinds = dict(kinds)
        self.relist = relist  # seconds after a list when the next watch ends and the kind is listed again (0: never)
        self.metrics = metrics
        self.rebuild_interval = rebuild_interval
        self.max_share = max_share  # of a core, for the rebuilds (0: no limit but rebuild_interval)
        self.cpu_clock = cpu_clock
        self.rebuild_spacing = rebuild_interval  # seconds from one rebuild to the next (set after each)
        self.watch_timeout = watch_timeout
        self.backoff = backoff
        self.silence = silence  # a watch silent for timeoutSeconds + this is taken for dead
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.resource_versions: dict[str, str] = {}
        self.lists: dict[str, int] = dict.fromkeys(self.kinds, 0)  # how many times each kind was listed
        self.list_errors: dict[str, str] = {}  # kind -> why its list failed (until it succeeds; a 404 is no error)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._synced: set[str] = set()
        self._ready_at: int | None = None
        self._changes = 0
        self._built: tuple[int, float, Inventory] = (-1, 0.0, Inventory())
        self._build_lock = threading.Lock()
        self._changed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clients: dict[str, httpx.Client] = {}
        self._responses: dict[str, httpx.Response] = {}

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> KubeInventory:
        builder = threading.Thread(target=self._builder, name="netguard-inventory", daemon=True)
        builder.start()
        self._threads.append(builder)
        for kind in self.kinds:
            t = threading.Thread(target=self._run, args=(kind,), name=f"netguard-watch-{kind}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def close(self) -> None:
        self._stop.set()
        for response in list(self._responses.values()):
            _shutdown(response)  # interrupts a watch blocked reading its socket
        for client in list(self._clients.values()):
            try:
                client.close()
            except Exception:
                pass
        deadline = time.monotonic() + 5
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))

    @property
    def synced(self) -> bool:
        return self._synced >= set(self.kinds)

    @property
    def ready(self) -> bool:
        """Every kind was listed, and the inventory was built from all of them."""
        return self._ready_at is not None and self._built[0] >= self._ready_at

    def _mark_synced(self, kind: str) -> None:
        self._synced.add(kind)
        if self._ready_at is None and self.synced:
            with self._lock:
                self._ready_at = self._changes
            self._changed.set()

    def wait_synced(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.ready and time.monotonic() < deadline and not self._stop.is_set():
            if self.synced:
                self._rebuild()
            else:
                time.sleep(0.02)
        return self.ready

    # --- the inventory -----------------------------------------------------------------------------

    def snapshot(self) -> tuple[int, Inventory]:
        """The latest inventory; rebuilt by a background thread (never in the caller's path, which is
        ingest), at most every `rebuild_interval` seconds, when something changed."""
        if self._built[0] < 0:
            self._rebuild()
        return self._built[0], self._built[2]

    def _rebuild(self) -> None:
        with self._build_lock:
            started = self.cpu_clock()
            with self._lock:
                current = self._changes
                if current == self._built[0]:
                    return
                objects = [(f"cluster:{k[0]}", obj) for k, obj in sorted(self.objects.items(), key=lambda kv: kv[0])]
            try:
                inventory = Inventory.build(objects)
            except InputError as exc:  # one bad object must not take the inventory down: keep the last one
                log.error("inventory rebuild failed, keeping the previous one: %s", exc)
                if self._built[0] >= 0:
                    return
                inventory = Inventory()
            self._built = (current, time.monotonic(), inventory)
            if self.max_share > 0:
                self.rebuild_spacing = max(self.rebuild_interval, (self.cpu_clock() - started) / self.max_share)

    def _builder(self) -> None:
        while not self._stop.is_set():
            self._changed.wait(1.0)
            if self._stop.is_set():
                return
            if not self._changed.is_set():
                continue
            self._changed.clear()
            wait = self.rebuild_spacing - (time.monotonic() - self._built[1])
            if wait > 0:
                self._stop.wait(wait)
            try:
                self._rebuild()
            except Exception:
                log.exception("inventory rebuild failed")

    # --- reflectors --------------------------------------------------------------------------------

    def _run(self, kind: str) -> None:
        path = self.kinds[kind]
        client = self._clients[kind] = self.cluster.client(timeout=None)
        rv: str | None = None
        failures = 0
        listed_at = 0.0
        while not self._stop.is_set():
            try:
                if rv is None:
                    rv = self._list(client, kind, path)
                    listed_at = time.monotonic()
                    self._mark_synced(kind)
                timeout = self.watch_timeout
                if self.relist > 0:  # the watch ends when the next relist is due
                    due = self.relist - (time.monotonic() - listed_at)
                    if due <= 0:
                        self._restarted(kind, "relist")
                        rv = None
                        continue
                    timeout = max(1, min(timeout, math.ceil(due)))
                rv = self._watch(client, kind, path, rv, timeout)
                failures = 0
                self._restarted(kind, "closed")  # the server ended the watch (its timeout): resume from rv
            except Gone:
                self._restarted(kind, "gone")
                rv = None
            except (httpx.TransportError, httpx.StreamError, json.JSONDecodeError) as exc:
                if self._stop.is_set():
                    return
                if rv is None:
                    self.list_errors[kind] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                failures += 1
                self._restarted(kind, "dropped")
                log.info("watch %s: %s; resuming from resourceVersion %s", kind, type(exc).__name__, rv)
                self._stop.wait(min(self.backoff * failures, 10.0))
            except httpx.HTTPStatusError as exc:
                failures += 1
                self._restarted(kind, f"http-{exc.response.status_code}")
                log.warning("watch %s: HTTP %s", kind, exc.response.status_code)
                if rv is None and exc.response.status_code != 404:
                    self.list_errors[kind] = f"HTTP {exc.response.status_code} listing {path}"
                if exc.response.status_code in (403, 404) and rv is None:
                    self._mark_synced(kind)  # not allowed or not served: go on without this kind
                self._stop.wait(min(self.backoff * 2 ** min(failures, 5), 30.0))
            except Exception:  # never let a reflector die
                if self._stop.is_set():
                    return
                failures += 1
                log.exception("watch %s failed", kind)
                self._stop.wait(min(self.backoff * 2 ** min(failures, 5), 30.0))

    def _restarted(self, kind: str, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.watch_restarts.labels(kind=kind, reason=reason).inc()

    def _list(self, client: httpx.Client, kind: str, path: str) -> str:
        response = client.get(path, headers=self.cluster.headers(), timeout=60)
        if response.status_code == 410:
            raise Gone()
        response.raise_for_status()
        doc = response.json()
        items = {}
        for item in doc.get("items") or []:
            item.setdefault("kind", kind)
            items[_key(kind, item)] = item
        with self._lock:
            for key in [k for k in self.objects if k[0] == kind]:
                if key not in items:
                    del self.objects[key]
            self.objects.update(items)
            self._changes += 1
        self._changed.set()
        with self._lock:
            self.lists[kind] += 1
        self.list_errors.pop(kind, None)
        rv = str((doc.get("metadata") or {}).get("resourceVersion") or "")
        self.resource_versions[kind] = rv
        return rv

    def _watch(self, client: httpx.Client, kind: str, path: str, rv: str, seconds: int) -> str:
        sep = "&" if "?" in path else "?"
        url = f"{path}{sep}watch=1&allowWatchBookmarks=true&timeoutSeconds={seconds}&resourceVersion={rv}"
        # The server ends a watch after timeoutSeconds; a connection silent for longer than that is dead
        # (a half-open TCP connection): the read timeout turns it into a resume.
        timeout = httpx.Timeout(10.0, read=seconds + self.silence)
        with client.stream("GET", url, headers=self.cluster.headers(), timeout=timeout) as response:
            self._responses[kind] = response
            if self._stop.is_set():
                return rv
            if response.status_code == 410:
                raise Gone()
            response.raise_for_status()
            for event in _events(response.iter_lines()):
                etype = event.get("type")
                obj = event.get("object") or {}
                if etype == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise httpx.StreamError(f"watch error: {obj.get('message', obj)}")
                new_rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                if etype in ("ADDED", "MODIFIED", "DELETED"):
                    obj.setdefault("kind", kind)
                    with self._lock:
                        if etype == "DELETED":
                            self.objects.pop(_key(kind, obj), None)
                        else:
                            self.objects[_key(kind, obj)] = obj
                        self._changes += 1
                    self._changed.set()
                if new_rv:
                    rv = new_rv
                    self.resource_versions[kind] = rv
                if self._stop.is_set():
                    break
        return rv


def _shutdown(response: httpx.Response) -> None:
    import socket

    try:
        sock = response.extensions["network_stream"].get_extra_info("socket")
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except Exception:
        pass


def _events(lines: Iterator[str]) -> Iterator[dict]:
    for line in lines:
        if line.strip():
            yield json.loads(line)


def _key(kind: str, obj: dict) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return kind, meta.get("namespace") or "", meta.get("name") or ""
