"""`kill -9` of a real controller process: every acknowledged flow is still there after a restart."""

from __future__ import annotations

import threading

import httpx

from tests.controller.conftest import AUTH, CLUSTER, batch, bookinfo_records


def _post(url: str, records: list[dict], agent: str) -> httpx.Response:
    return httpx.post(url + "/api/v1/flows", json=batch(records, agent), headers=AUTH, timeout=30)


def test_kill_9_between_batches_keeps_every_acknowledged_flow(controller_process, tmp_path, token_file):
    db = tmp_path / "kill.db"
    args = ["--db", str(db), "--token-file", str(token_file), "--inventory", str(CLUSTER)]
    records = bookinfo_records()
    acknowledged: list[dict] = []
    for round_ in range(3):
        ctl = controller_process(*args)
        for start in range(0, len(records), 31):
            chunk = records[start:start + 31]
            response = _post(ctl.url, chunk, f"node-{round_}")
            assert response.status_code == 200, response.text
            assert response.json()["accepted"] == len(chunk)
            acknowledged.extend(chunk)
        ctl.kill9()
    ctl = controller_process(*args)
    from policygen.controller.store import open_store

    store = open_store(str(db))
    try:
        assert list(store.iter_records()) == acknowledged
        assert store.counts()["records"] == len(acknowledged) == 3 * len(records)
        # the baseline counts every acknowledged connection once
        assert sum(e.connections for e in store.edges()) == 3 * len(records)
    finally:
        store.close()
    policies = httpx.get(ctl.url + "/api/v1/policies", timeout=30).json()["policies"]
    assert len(policies) == 6


def test_kill_9_during_concurrent_ingest_loses_no_acknowledged_batch(controller_process, tmp_path, token_file):
    db = tmp_path / "concurrent.db"
    args = ["--db", str(db), "--token-file", str(token_file), "--inventory", str(CLUSTER)]
    ctl = controller_process(*args)
    records = bookinfo_records()
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def agent(name: str) -> None:
        for i in range(200):  # bounded
            if stop.is_set():
                return
            tagged = [{**r, "node": f"{name}-{i}"} for r in records[:20]]
            try:
                response = _post(ctl.url, tagged, name)
            except httpx.HTTPError:
                return
            if response.status_code == 200:
                with lock:
                    acked.append(f"{name}-{i}")

    threads = [threading.Thread(target=agent, args=(f"agent{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    while True:  # kill once some batches were acknowledged
        with lock:
            if len(acked) >= 20:
                break
        if not any(t.is_alive() for t in threads):
            break
        threading.Event().wait(0.01)
    ctl.kill9()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acked) >= 20
    from policygen.controller.store import open_store

    store = open_store(str(db))
    try:
        stored = {r["node"] for r in store.iter_records()}
        assert set(acked) <= stored
    finally:
        store.close()
