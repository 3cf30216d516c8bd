"""Leader election over a coordination.k8s.io/v1 Lease, so that N controller replicas run the singletons
(alert dispatch, the automatic apply, pruning) on exactly one of them.

The algorithm is client-go's leaderelection, the one every Kubernetes controller uses, kept small:
- the Lease names its holder and the renew time; the holder renews it every `duration / 4` seconds;
- a candidate takes the Lease over only when its record has not changed for 3/4 of `duration` seconds
  by the candidate's own clock (no comparison of clocks between machines; it looks every duration / 4,
  so a dead leader is replaced within the lease duration), or when it is free (no holder: handed over
  by a replica that stopped);
- every write is a create or a replace carrying the resourceVersion read: a 409 Conflict means another
  replica wrote first, and this one is not the leader (the API server is the lock);
- a leader that cannot renew within `2/3 * duration` stops acting as leader before anyone can take
  over (3/4), so two replicas never both act (up to clock rate, as in client-go).

`LeaseLock` is the thin adapter over the `kubernetes` client (CoordinationV1Api); `LeaderElector`
holds the decision and runs it in a thread. Without a Lease configured the controller is its own
leader (`Always`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

log = logging.getLogger("netguard.controller.lease")


@dataclass(frozen=True)
class LeaseRecord:
    """What a Lease says (its spec), with the resourceVersion it was read at."""

    holder: str
    duration: int  # seconds
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0
    resource_version: str = ""


class Lock(Protocol):
    def get(self) -> LeaseRecord | None: ...

    def create(self, record: LeaseRecord) -> bool: ...

    def replace(self, record: LeaseRecord) -> bool: ...


class LeaseLock:
    """One Lease through the kubernetes client: read, create (409: someone else did), replace with the
    resourceVersion read (409: someone else wrote since). Other API errors propagate."""

    def __init__(self, configuration: Any, namespace: str, name: str, timeout: float = 5.0) -> None:
        from kubernetes import client

        self._client = client
        self.api = client.CoordinationV1Api(client.ApiClient(configuration))
        self.namespace, self.name, self.timeout = namespace, name, timeout

    def get(self) -> LeaseRecord | None:
        from kubernetes.client.exceptions import ApiException

        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        spec = lease.spec or self._client.V1LeaseSpec()
        rv = lease.metadata.resource_version if lease.metadata is not None else ""
        return LeaseRecord(spec.holder_identity or "", int(spec.lease_duration_seconds or 0), spec.acquire_time,
                           spec.renew_time, int(spec.lease_transitions or 0), rv or "")

    def _body(self, record: LeaseRecord) -> Any:
        c = self._client
        meta = c.V1ObjectMeta(name=self.name, namespace=self.namespace, resource_version=record.resource_version or None)
        spec = c.V1LeaseSpec(holder_identity=record.holder, lease_duration_seconds=record.duration,
                             acquire_time=record.acquire_time, renew_time=record.renew_time,
                             lease_transitions=record.transitions)
        return c.V1Lease(api_version="coordination.k8s.io/v1", kind="Lease", metadata=meta, spec=spec)

    def _conflict(self, call: Callable[[], Any]) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            call()
            return True
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise

    def create(self, record: LeaseRecord) -> bool:
        return self._conflict(lambda: self.api.create_namespaced_lease(self.namespace, self._body(record),
                                                                       _request_timeout=self.timeout))

    def replace(self, record: LeaseRecord) -> bool:
        return self._conflict(lambda: self.api.replace_namespaced_lease(self.name, self.namespace, self._body(record),
                                                                        _request_timeout=self.timeout))


class Always:
    """No Lease: a single controller is its own leader."""

    identity = "single"
    is_leader = True

    def holder(self) -> str:
        return self.identity

    def start(self) -> Always:
        return self

    def stop(self) -> None:
        pass


class LeaderElector:
    def __init__(self, lock: Lock, identity: str, duration: int = 15,
                 on_change: Callable[[bool], None] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.lock, self.identity, self.duration = lock, identity, max(1, int(duration))
        self.retry = self.duration / 4
        self.renew_deadline = self.duration * 2 / 3
        self.on_change = on_change or (lambda leading: None)
        self.clock = clock
        self._observed: tuple = ()
        self._observed_at = 0.0
        self._observed_holder = ""
        self._renewed: float | None = None  # when this replica last wrote the Lease as its holder
        self._was_leader = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self._renewed is not None and self.clock() - self._renewed < self.renew_deadline

    def holder(self) -> str:
        return self.identity if self.is_leader else self._observed_holder

    def step(self) -> bool:
        """One try to acquire or renew; whether this replica leads now."""
        try:
            self._try()
        except Exception as exc:  # the API server is away: keep leading only until the renew deadline
            log.warning("lease: %s: %s", type(exc).__name__, exc)
        leading = self.is_leader
        if leading != self._was_leader:
            self._was_leader = leading
            log.warning("lease: %s %s leader", self.identity, "became" if leading else "is no longer")
            self.on_change(leading)
        return leading

    def _try(self) -> None:
        now, mono = datetime.now(UTC), self.clock()
        current = self.lock.get()
        mine = LeaseRecord(self.identity, self.duration, now, now, 0)
        if current is None:
            if self.lock.create(mine):
                self._renewed = mono
            return
        seen = (current.holder, current.renew_time, current.resource_version)
        if seen != self._observed:
            self._observed, self._observed_at, self._observed_holder = seen, mono, current.holder
        if current.holder not in ("", self.identity) and mono - self._observed_at < self._expiry(current):
            self._renewed = None  # held by another, and alive
            return
        if current.holder == self.identity:
            mine = replace(mine, acquire_time=current.acquire_time or now, transitions=current.transitions)
        else:
            mine = replace(mine, transitions=current.transitions + 1)
        if self.lock.replace(replace(mine, resource_version=current.resource_version)):
            self._renewed = mono
        else:
            self._renewed = None  # another replica wrote first

    def _expiry(self, current: LeaseRecord) -> float:
        """Seconds a record must stay unchanged before it is taken over: its duration less one retry, so a
        dead leader is replaced within the lease duration of its last renewal (this replica saw it at most
        one retry late). Still after the holder stops acting: its renew deadline is 2/3 of the duration."""
        duration = current.duration or self.duration
        return duration - duration / 4

    def release(self) -> None:
        """Hand the Lease over (no holder) so another replica takes it at once, not after `duration`."""
        if not self.is_leader:
            return
        self._renewed = None
        try:
            current = self.lock.get()
            if current is not None and current.holder == self.identity:
                self.lock.replace(replace(current, holder="", duration=1, renew_time=datetime.now(UTC)))
        except Exception as exc:
            log.warning("lease: release failed (%s); the others take over after %ss", exc, self.duration)
        self.on_change(False)

    def start(self) -> LeaderElector:
        self._thread = threading.Thread(target=self._run, name="netguard-lease", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step()
            self._stop.wait(self.retry)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.duration)
        self.release()
