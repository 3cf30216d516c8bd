"""Shipping to the controller: `POST {controller}/api/v1/flows`, JSON `{"agent": NODE, "flows": [native
records]}`, or, for an agent that aggregates, `POST {controller}/api/v1/edges` with `{"agent": NODE,
"edges": [edge records]}` (`kind="edges"`); header `Authorization: Bearer TOKEN`.

A 2xx answer means the batch is durable. Connection errors, timeouts, 408, 429 and 5xx are retried
with exponential backoff (with jitter, capped); any other 4xx rejects the batch (counted, logged).
While the controller is away, flows wait in a bounded buffer: when it is full the oldest are
dropped and counted (`netguard_agent_dropped_flows{reason="buffer_full"}`), never silently.
A 413 (batch too large) halves the batch size and sends the same flows again.
`close()` flushes what it can before a deadline and counts the rest as dropped at shutdown.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections import deque
from typing import Any, Protocol

import httpx

from netguard.agent.metrics import Metrics

RETRY_STATUS = {408, 429}


def log(event: str, **fields: Any) -> None:
    """Structured logs: one JSON object a line on stderr."""
    print(json.dumps({"time": round(time.time(), 3), "event": event, **fields}), file=sys.stderr, flush=True)


class Records(Protocol):
    """Where an agent's records go (EdgeBatcher's intervals): the Shipper, or Kept."""

    def put(self, record: dict[str, Any]) -> None: ...

    def wake(self) -> None: ...


class Kept:
    """Records kept in memory, in order: what an agent would ship, for benches and tests of the aggregation
    (the Shipper itself is tested against a controller)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def put(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def wake(self) -> None:
        pass


class Shipper:
    def __init__(self, controller: str, token: str, node: str, metrics: Metrics, *, batch_size: int = 1000,
                 interval: float = 1.0, buffer_size: int = 100_000, timeout: float = 5.0,
                 backoff: tuple[float, float] = (0.2, 30.0), transport: httpx.BaseTransport | None = None,
                 kind: str = "flows") -> None:
        self.kind = kind  # "flows" or "edges": the endpoint and the body's list
        self.url = controller.rstrip("/") + f"/api/v1/{kind}"
        self.node = node
        self.metrics = metrics
        self.batch_size = batch_size
        self.interval = interval
        self.buffer_size = buffer_size
        self.backoff_min, self.backoff_max = backoff
        self.buffer: deque[dict[str, Any]] = deque()
        self.inflight: list[dict[str, Any]] = []
        self.dropped = 0
        self.shipped = 0
        self.rejected = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._deadline = float("inf")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(headers=headers, timeout=timeout, transport=transport)
        self._thread = threading.Thread(target=self._run, name="netguard-shipper", daemon=True)
        self._thread.start()

    def put(self, record: dict[str, Any]) -> None:
        with self._lock:
            if len(self.buffer) + len(self.inflight) >= self.buffer_size:
                if self.buffer:
                    self.buffer.popleft()
                self.dropped += 1
                self.metrics.dropped.labels("buffer_full").inc()
            self.buffer.append(record)
            size = len(self.buffer)
        self.metrics.buffered.set(size + len(self.inflight))
        if size >= self.batch_size:
            self._wake.set()

    def wake(self) -> None:
        """Send what is buffered now (an interval's edges are complete), not at the next interval."""
        self._wake.set()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self.buffer) + len(self.inflight)

    def _take(self) -> list[dict[str, Any]]:
        with self._lock:
            if not self.inflight:
                n = min(self.batch_size, len(self.buffer))
                self.inflight = [self.buffer.popleft() for _ in range(n)]
            return self.inflight

    def _send(self, batch: list[dict[str, Any]]) -> str:
        try:
            response = self._client.post(self.url, json={"agent": self.node, self.kind: batch})
        except httpx.HTTPError as exc:
            return f"retry:{type(exc).__name__}"
        if 200 <= response.status_code < 300:
            return "ok"
        if response.status_code >= 500 or response.status_code in RETRY_STATUS:
            return f"retry:{response.status_code}"
        return f"rejected:{response.status_code}"

    def _run(self) -> None:
        delay = self.backoff_min
        while True:
            closing = self._closing.is_set()
            if not closing:
                self._wake.wait(self.interval)
                self._wake.clear()
            batch = self._take()
            if not batch:
                if closing:
                    return
                continue
            result = self._send(batch)
            if result == "rejected:413" and len(batch) > 1:  # too large for the controller: halve, send again
                half = len(batch) // 2
                with self._lock:
                    self.inflight = batch[:half]
                    self.buffer.extendleft(reversed(batch[half:]))
                self.batch_size = max(1, min(self.batch_size, half))
                log("batch_too_large", flows=len(batch), batch_size=self.batch_size)
                continue
            if result == "ok" or result.startswith("rejected"):
                with self._lock:
                    self.inflight = []
                if result == "ok":
                    self.shipped += len(batch)
                    self.metrics.shipped.inc(len(batch))
                    self.metrics.batches.labels("ok").inc()
                else:
                    self.rejected += len(batch)
                    self.metrics.batches.labels("rejected").inc()
                    self.metrics.dropped.labels("rejected").inc(len(batch))
                    log("batch_rejected", status=result.partition(":")[2], flows=len(batch))
                self.metrics.buffered.set(self.pending)
                delay = self.backoff_min
                continue
            self.metrics.batches.labels("retry").inc()
            if closing and time.monotonic() >= self._deadline:
                return
            pause = min(delay, self.backoff_max) * random.uniform(0.5, 1.0)
            if closing:
                pause = min(pause, max(0.0, self._deadline - time.monotonic()))
            self._closing.wait(pause) if not closing else time.sleep(pause)
            delay = min(delay * 2, self.backoff_max)

    def close(self, timeout: float = 10.0) -> int:
        """Flush before `timeout` seconds; returns the flows that could not be shipped (counted as dropped)."""
        self._deadline = time.monotonic() + timeout
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout + 1.0)
        left = self.pending
        if left:
            self.dropped += left
            self.metrics.dropped.labels("shutdown").inc(left)
            log("flows_not_shipped", flows=left, controller=self.url)
        self._client.close()
        return left
