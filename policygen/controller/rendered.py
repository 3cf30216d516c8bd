"""Generated policies rendered once, ahead of their reads, and pages assembled from the renderings.

Rendering a policy (its YAML with every rule's explanation, the canonical text approvals bind to, the
JSON item) costs far more than finding it, so it is done once per synthesized policy object and kept,
zlib'd: by a background thread as soon as the live review keeps a new synthesis (`submit`), or by the
first read that finds none (`get`). A page or one workload's answer is then the kept JSON items joined,
each followed by its review state (which moves with approvals, so it is never kept): no YAML emitted,
no JSON parsed or encoded again per read.
"""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import LRUCache

from netguard.model import Workload
from policygen.review import policy_parts
from policygen.synth import GeneratedPolicy

log = logging.getLogger("netguard.controller")


@dataclass(frozen=True)
class Rendered:
    """One synthesized policy object rendered: its JSON item (policy_json without the review state, as an
    object missing its closing brace) and its canonical text, both zlib'd."""

    policy: GeneratedPolicy
    item: bytes
    canonical: bytes

    @property
    def text(self) -> str:
        """The canonical text (approval.canonical_text of the policy)."""
        return zlib.decompress(self.canonical).decode()

    def json(self, state: dict) -> bytes:
        """The item with `state` (status, digest, decision...) added: one JSON object."""
        return zlib.decompress(self.item) + b"," + json.dumps(state, separators=(",", ":")).encode()[1:]


def render(g: GeneratedPolicy) -> Rendered:
    item, canonical = policy_parts(g)
    body = json.dumps(item, separators=(",", ":")).encode()
    return Rendered(g, zlib.compress(body[:-1], 1), zlib.compress(canonical.encode(), 1))


class Renderings:
    """workload -> the rendering of its latest policy object (LRU). `submit` queues a policy for the
    background thread (a newer one for the same workload replaces it in the queue); `get` answers the
    kept rendering of exactly that object, or renders it now."""

    def __init__(self, maxsize: int = 50_000, current: Callable[[Workload], GeneratedPolicy | None] | None = None) -> None:
        self._cache: LRUCache = LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()  # the cache and the queue only, never held while rendering
        self._queue: dict[Workload, GeneratedPolicy] = {}
        self._wake = threading.Condition(self._lock)
        self._stop = False
        self._busy = False
        self.current = current  # the policy kept for a workload, without synthesizing (None: render all submitted)
        self._thread = threading.Thread(target=self._run, name="netguard-render", daemon=True)
        self._thread.start()

    def get(self, g: GeneratedPolicy) -> Rendered:
        with self._lock:
            kept = self._cache.get(g.workload)
        if kept is not None and kept.policy is g:
            return kept
        return self._keep(render(g))

    def _keep(self, rendered: Rendered) -> Rendered:
        with self._lock:
            kept = self._cache.get(rendered.policy.workload)
            if kept is None or kept.policy is not rendered.policy:
                self._cache[rendered.policy.workload] = rendered
        return rendered

    def submit(self, g: GeneratedPolicy) -> None:
        """Render `g` in the background (cheap: called with the live review's lock held)."""
        with self._lock:
            self._queue[g.workload] = g
            self._wake.notify()

    def idle(self, timeout: float = 60.0) -> bool:
        """Wait until the queue is empty (tests, benches)."""
        with self._lock:
            return self._wake.wait_for(lambda: not self._queue and not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._busy = False
                self._wake.notify_all()
                self._wake.wait_for(lambda: self._queue or self._stop)
                if self._stop:
                    return
                workload = next(iter(self._queue))
                g = self._queue.pop(workload)
                kept = self._cache.get(workload)
                self._busy = True
            if kept is not None and kept.policy is g:
                continue
            if self.current is not None and self.current(workload) is not g:
                continue  # superseded before its turn: the newer one is (or will be) queued
            try:
                self._keep(render(g))
            except Exception:  # a bug in rendering must not stop the thread; the read renders and raises
                log.exception("rendering %s in the background failed", workload)

    def close(self) -> None:
        with self._lock:
            self._stop = True
            self._wake.notify_all()
        self._thread.join(timeout=10)


def page_body(items: list[bytes], warnings: list[str], metadata: dict | None = None) -> bytes:
    """{"policies": [...], "warnings": [...], "metadata": {...}} from items already encoded."""
    tail = {"warnings": warnings, **({"metadata": metadata} if metadata is not None else {})}
    return b'{"policies":[' + b",".join(items) + b"]," + json.dumps(tail, separators=(",", ":")).encode()[1:]
