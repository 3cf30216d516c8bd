"""Leader election over a Lease in the stand-in API server, through the kubernetes client."""

from __future__ import annotations

import pytest
from kubernetes import client

from policygen.controller.lease import LeaderElector, LeaseLock
from tests.controller.standin import StandIn


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def standin():
    s = StandIn(token="cluster-token")
    yield s
    s.close()


def _elector(standin: StandIn, identity: str, clock: Clock) -> LeaderElector:
    cfg = client.Configuration(host=standin.url, api_key={"authorization": "Bearer cluster-token"})
    return LeaderElector(LeaseLock(cfg, "netguard-system", "netguard-controller"), identity, duration=8, clock=clock)


def test_one_replica_leads_and_another_takes_over_only_after_the_lease_expires(standin):
    clock = Clock()
    a, b = _elector(standin, "a", clock), _elector(standin, "b", clock)
    assert a.step() and not b.step()
    lease = standin.get("Lease", "netguard-system", "netguard-controller")
    assert lease["spec"]["holderIdentity"] == "a" and lease["spec"]["leaseDurationSeconds"] == 8
    clock.now += 4
    assert a.step() and not b.step()  # renewed: b saw the record change
    clock.now += 5  # a is gone (no more renewals); b has seen the same record for 5 s < 6 s (3/4 of 8 s)
    assert not b.step() and a.is_leader  # a would still renew in time (its deadline: 2/3 of 8 s)
    clock.now += 1.5
    assert not a.is_leader  # past a's renew deadline: it stopped acting before b takes over
    assert b.step()  # within the lease duration of a's last renewal
    lease = standin.get("Lease", "netguard-system", "netguard-controller")
    assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1
    assert not a.step()  # a comes back: b holds a fresh lease


def test_a_stale_write_loses_on_the_resource_version_and_a_release_hands_over_at_once(standin):
    clock = Clock()
    a, b = _elector(standin, "a", clock), _elector(standin, "b", clock)
    assert a.step()
    stale = a.lock.get()
    assert a.step()  # renewed: the resourceVersion moved on
    assert stale is not None and not b.lock.replace(stale)  # 409 Conflict
    assert [r for r in standin.requests if r["method"] == "PUT"][-1]["kind"] == "Lease"
    a.release()
    assert not a.is_leader and b.step()  # no waiting for the lease to expire
