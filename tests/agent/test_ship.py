"""Shipping to a real HTTP controller on 127.0.0.1: batches, auth, retries, bounded buffer."""

from __future__ import annotations

import time

from prometheus_client import generate_latest

from netguard.agent.metrics import Metrics
from netguard.agent.ship import Shipper
from tests.agent.controller import FakeController, free_port


def record(i: int) -> dict:
    return {"time": 1.0 + i, "src_ip": "10.244.1.10", "src_port": 40000 + i, "dst_ip": "10.244.1.11", "dst_port": 9080,
            "protocol": "TCP"}


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_batches_carry_agent_name_and_bearer_token():
    metrics = Metrics()
    with FakeController() as controller:
        shipper = Shipper(controller.url, "s3cret", "node-a", metrics, batch_size=10, interval=0.05)
        for i in range(25):
            shipper.put(record(i))
        assert shipper.close(timeout=10) == 0
        assert controller.unauthorized == 0
        assert [f["src_port"] for f in controller.flows] == [40000 + i for i in range(25)]
        assert {b["agent"] for b in controller.batches} == {"node-a"}
        assert max(len(b["flows"]) for b in controller.batches) <= 10
    assert shipper.shipped == 25 and shipper.dropped == 0


def test_down_controller_buffers_then_drops_oldest_and_counts_them():
    metrics = Metrics()
    port = free_port()  # nothing listens: connection refused
    shipper = Shipper(f"http://127.0.0.1:{port}", "s3cret", "node-a", metrics, batch_size=50, interval=0.05,
                      buffer_size=100, backoff=(0.05, 0.2))
    for i in range(150):
        shipper.put(record(i))
    assert shipper.dropped == 50
    assert shipper.pending == 100
    text = generate_latest(metrics.registry).decode()
    assert 'netguard_agent_dropped_flows_total{reason="buffer_full"} 50.0' in text
    assert wait_for(lambda: metrics.batches.labels("retry")._value.get() >= 2)
    with FakeController(port=port) as controller:  # the controller comes back: the buffer drains
        assert wait_for(lambda: len(controller.flows) == 100)
        assert shipper.close(timeout=10) == 0
        ports = sorted(f["src_port"] for f in controller.flows)
    # The newest 100 survive unless the shipper took a batch before the buffer filled: a batch in
    # flight is kept (it is being sent), and the oldest of the buffer behind it go instead. Either
    # way the newest 50 are always delivered and exactly 50 are dropped.
    assert len(ports) == 100 and ports[-50:] == [40000 + i for i in range(100, 150)]
    assert shipper.dropped == 50


def test_server_errors_are_retried_and_client_errors_rejected():
    metrics = Metrics()
    with FakeController(statuses=[503, 500]) as controller:
        shipper = Shipper(controller.url, "s3cret", "n", metrics, batch_size=5, interval=0.05, backoff=(0.02, 0.1))
        for i in range(5):
            shipper.put(record(i))
        assert wait_for(lambda: len(controller.flows) == 5)
        assert controller.requests == 3
        assert shipper.close(timeout=5) == 0
    with FakeController() as controller:
        shipper = Shipper(controller.url, "wrong-token", "n", metrics, batch_size=5, interval=0.05)
        for i in range(5):
            shipper.put(record(i))
        shipper.close(timeout=5)
        assert controller.unauthorized >= 1 and controller.flows == []
    assert shipper.rejected == 5
    assert metrics.dropped.labels("rejected")._value.get() == 5


def test_close_counts_what_could_not_be_shipped():
    metrics = Metrics()
    shipper = Shipper(f"http://127.0.0.1:{free_port()}", "", "n", metrics, batch_size=10, interval=0.05,
                      backoff=(0.05, 0.1))
    for i in range(30):
        shipper.put(record(i))
    assert shipper.close(timeout=0.5) == 30
    assert metrics.dropped.labels("shutdown")._value.get() == 30


def test_a_batch_too_large_is_halved_not_dropped():
    metrics = Metrics()
    with FakeController(statuses=[413, 413]) as controller:
        shipper = Shipper(controller.url, "s3cret", "n", metrics, batch_size=40, interval=0.05)
        for i in range(40):
            shipper.put(record(i))
        assert shipper.close(timeout=10) == 0
        assert sorted(f["src_port"] for f in controller.flows) == [40000 + i for i in range(40)]
        assert max(len(b["flows"]) for b in controller.batches) == 10
    assert shipper.rejected == 0 and shipper.dropped == 0
