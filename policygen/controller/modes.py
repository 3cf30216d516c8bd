"""Modes per namespace (learn -> monitor -> protect) and the alerts monitoring raises.

- learn: every edge is recorded into the baseline.
- monitor: an edge outside the baseline, or one the approved policies deny, raises an alert. The edge
  is recorded (so the graph shows it) but not into the baseline.
- protect: as monitor, and the approved policies of the namespace may be applied to the cluster.

A namespace's mode: its `netguard.io/mode` label, else a mode set through the API
(`PUT /api/v1/modes/{namespace}`, stored), else the controller's config (`namespaces:`, `--mode`), else
`default_mode`. A flow is judged by the mode in force when it is ingested. An edge takes the strictest
mode of the namespaces of its workload ends.
Alerts are deduplicated per edge (source, destination, port, protocol); a new one is counted in
Prometheus and, when a webhook URL is set, POSTed in Alertmanager's v2 format (a JSON list of alerts
with labels, annotations, startsAt) by a background sender that never blocks ingest.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from datetime import UTC, datetime

import httpx

from netguard.model import EdgeKey
from policygen.controller.settings import MODE_LABEL, MODES
from policygen.controller.store import AlertRow

log = logging.getLogger("netguard.controller")
_RANK = {m: i for i, m in enumerate(MODES)}


class ModeResolver:
    def __init__(self, default: str, configured: Mapping[str, str], namespace_labels: Mapping[str, Mapping[str, str]],
                 api: Mapping[str, str] | None = None):
        self.default = default
        self.configured = dict(configured)
        self.labels = namespace_labels
        self.api = dict(api or {})
        self._edges: dict[tuple[str | None, str | None], tuple[str, str]] = {}  # of_edge per namespaces of its ends

    def source_of(self, namespace: str) -> tuple[str, str]:
        """(mode, where it comes from: label, api, config or default)."""
        label = (self.labels.get(namespace) or {}).get(MODE_LABEL)
        if label in _RANK:
            return label, "label"
        if namespace in self.api:
            return self.api[namespace], "api"
        if namespace in self.configured:
            return self.configured[namespace], "config"
        return self.default, "default"

    def of_namespace(self, namespace: str) -> str:
        return self.source_of(namespace)[0]

    def monitors_any(self) -> bool:
        """Whether some namespace may be in monitor or protect mode (by default, config, API or label)."""
        labelled = ((labels or {}).get(MODE_LABEL) for labels in self.labels.values())
        return any(m in _RANK and m != "learn" for m in (self.default, *self.configured.values(), *self.api.values(),
                                                          *labelled))

    def of_edge(self, key: EdgeKey) -> tuple[str, str]:
        """(mode, the namespace that decided it). Remembered per pair of namespaces: every edge of a batch asks,
        and a resolver is made again whenever a mode can change (inventory, API)."""
        dst, src = key.dst.workload, key.src.workload
        ends = (dst.namespace if dst is not None else None, src.namespace if src is not None else None)
        found = self._edges.get(ends)
        if found is None:
            best, where = "", ""
            for namespace in ends:
                if namespace is not None:
                    mode = self.of_namespace(namespace)
                    if not best or _RANK[mode] > _RANK[best]:
                        best, where = mode, namespace
            found = self._edges[ends] = ((best or self.default), where)
        return found

    def all(self, namespaces: list[str]) -> dict[str, str]:
        return {ns: self.of_namespace(ns) for ns in sorted(set(namespaces) | set(self.configured) | set(self.api))}


def alertmanager_payload(alert: AlertRow, generator_url: str = "") -> dict:
    k = alert.key
    labels = {
        "alertname": "NetguardLateralMovement",
        "severity": "warning",
        "namespace": alert.namespace,
        "source": str(k.src),
        "destination": str(k.dst),
        "port": f"{k.port}/{k.protocol}",
        "mode": alert.mode,
        "reason": ",".join(alert.reasons),
    }
    text = {"new-edge": "a connection outside the learned baseline", "denied": "a connection the approved policies deny"}
    description = " and ".join(text.get(r, r) for r in alert.reasons)
    out = {
        "labels": labels,
        "annotations": {
            "summary": f"{k.src} -> {k.dst} on {k.port}/{k.protocol}: {description}",
            "description": f"netguard saw {description} in namespace {alert.namespace or '-'} ({alert.mode} mode).",
        },
        "startsAt": datetime.fromtimestamp(alert.time or 0, UTC).isoformat().replace("+00:00", "Z"),
    }
    if generator_url:
        out["generatorURL"] = generator_url
    return out


class WebhookSender:
    """POSTs new alerts to an Alertmanager-compatible URL from a thread, with a bounded queue."""

    def __init__(self, url: str, on_failure=None, maxsize: int = 10_000, timeout: float = 5.0, retries: int = 3) -> None:
        self.url = url
        self.on_failure = on_failure or (lambda: None)
        self.timeout = timeout
        self.retries = retries
        self.dropped = 0
        self._queue: queue.Queue[list[dict] | None] = queue.Queue(maxsize=maxsize)
        self._thread = threading.Thread(target=self._run, name="netguard-webhook", daemon=True)
        self._thread.start()

    def send(self, alerts: list[dict]) -> None:
        try:
            self._queue.put_nowait(alerts)
        except queue.Full:
            self.dropped += len(alerts)
            self.on_failure()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=self.timeout * (self.retries + 1))

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                for attempt in range(self.retries):
                    try:
                        response = client.post(self.url, json=item)
                        if response.status_code < 300:
                            break
                        log.warning("webhook %s answered %s", self.url, response.status_code)
                    except httpx.HTTPError as exc:
                        log.warning("webhook %s: %s", self.url, exc)
                    if attempt == self.retries - 1:
                        self.on_failure()
                    else:
                        threading.Event().wait(0.2 * (attempt + 1))
