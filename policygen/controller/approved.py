"""The approved policy set that monitor and protect judge batches by, built off the event loop.

Judging an edge ("would the approved policies deny it?") needs the cluster's policies plus the approved
generated ones, evaluated against the inventory's targets. Making that set can take from milliseconds
to a minute: the first one after a start builds the whole live review from the store (10,000 workloads),
and later ones synthesize the approved workloads again and index a new inventory. The event loop must
never do that: while it does, the API answers nothing, health checks fail and the pod is restarted.

So one worker thread builds the sets, always for the latest key asked (approvals, inventory, baseline),
and swaps each in whole, with its own verdict cache. The loop only asks (`want`) and reads `current`: a
batch waits (awaiting the future, the loop free) only when there is no set yet or the approvals changed
since the current one; otherwise it is judged by the current set while the next is built.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field

from netguard.evaluate import Decision, PolicySet, Targets
from netguard.model import EdgeKey

log = logging.getLogger("netguard.controller")


@dataclass
class ApprovedSet:
    """The policies an edge is judged by, made for `key`; each edge's verdict cached with the set (a new
    set starts with none, so no verdict outlives the policies it was made with)."""

    key: Hashable
    policies: PolicySet
    targets: Targets
    verdicts: dict[EdgeKey, bool] = field(default_factory=dict)

    def denied(self, key: EdgeKey) -> bool:
        cached = self.verdicts.get(key)
        if cached is None:
            verdict = self.policies.evaluate(self.targets.of(key.src), self.targets.of(key.dst), key.port, key.protocol)
            cached = self.verdicts[key] = verdict.decision is Decision.DENIED
        return cached


class ApprovedSets:
    """The current ApprovedSet and the worker thread that builds the next. `build(key)` is the seam: the
    controller's builds the live review's approved policies; a test injects one it holds back."""

    def __init__(self, build: Callable[[Hashable], ApprovedSet]) -> None:
        self.build = build
        self.current: ApprovedSet | None = None
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._wanted: Hashable | None = None  # the key of the next build, once the running one ends
        self._next: Future[ApprovedSet] | None = None  # completes when the next build is installed
        self._running: tuple[Hashable, Future[ApprovedSet]] | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="netguard-approved", daemon=True)
        self._thread.start()

    def want(self, key: Hashable) -> Future[ApprovedSet] | None:
        """Ask for the set of `key` (cheap, on the event loop). None when the current set is it; else the
        future of the build that will install it (one already running for that key, or the next)."""
        with self._lock:
            if self.current is not None and self.current.key == key:
                return None
            if self._running is not None and self._running[0] == key:
                return self._running[1]
            self._wanted = key
            if self._next is None:
                self._next = Future()
                self._wake.notify()
            return self._next

    @property
    def building(self) -> bool:
        with self._lock:
            return self._running is not None or self._next is not None

    def _run(self) -> None:
        while True:
            with self._lock:
                self._wake.wait_for(lambda: self._next is not None or self._stop)
                if self._stop:
                    return
                key, future = self._wanted, self._next
                assert future is not None
                self._wanted, self._next = None, None
                self._running = (key, future)
            try:
                made = self.build(key)
            except Exception as exc:  # the store away for a moment: the waiting batches fail (503), the next asks again
                log.exception("building the approved policy set failed")
                with self._lock:
                    self._running = None
                future.set_exception(exc)
                continue
            with self._lock:
                self.current = made
                self._running = None
            future.set_result(made)

    def close(self) -> None:
        with self._lock:
            self._stop = True
            pending, self._next = self._next, None
            self._wake.notify_all()
        if pending is not None:
            pending.set_exception(RuntimeError("the controller is stopping"))
        self._thread.join(timeout=30)
