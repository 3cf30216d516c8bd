"""The same store on a real PostgreSQL, started by the test in a temp dir on 127.0.0.1 (and stopped)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from policygen.controller.metrics import Metrics
from policygen.controller.service import Controller, FileInventory
from policygen.controller.settings import Settings
from policygen.controller.store import SCHEMA_VERSION, open_store
from tests.controller.conftest import CLUSTER, batch, bookinfo_records, free_port
from tests.controller.test_modes import LATERAL
from tests.tools import must_not_skip, require_tool


@pytest.fixture(scope="module")
def postgres():
    initdb, pg_ctl = require_tool("initdb", "pg_ctl", why="Debian package postgresql; scripts/system-deps.sh installs it as root")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            message = "running as root and there is no postgres user to run PostgreSQL as"
            if must_not_skip():
                pytest.fail(message)
            pytest.skip(message)
        as_user = ["runuser", "-u", "postgres", "--"]
    base = tempfile.mkdtemp(prefix="netguard-pg-")
    data, sock = os.path.join(base, "data"), os.path.join(base, "sock")
    os.makedirs(sock)
    if as_user:
        for path in (base, sock):
            os.chown(path, pw.pw_uid, pw.pw_gid)
    port = free_port()
    started = False
    try:
        subprocess.run([*as_user, initdb, "-D", data, "-U", "netguard", "--auth=trust", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True)
        opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=on"
        subprocess.run([*as_user, pg_ctl, "-D", data, "-o", opts, "-l", os.path.join(base, "log"), "-w", "-t", "60", "start"],
                       check=True, capture_output=True)
        started = True
        yield f"postgresql://netguard@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run([*as_user, pg_ctl, "-D", data, "-m", "fast", "-w", "-t", "60", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _controller(url: str, **kw) -> Controller:
    settings = Settings(db=url, no_auth=True, **kw).validate()
    return Controller(settings, open_store(url), FileInventory([str(CLUSTER)]), Metrics())


def _timeless(doc: dict) -> dict:
    """The policies without the time of their decision (two stores, two moments)."""
    return {**doc, "policies": [{**p, "decision": {**p["decision"], "at": 0}} if "decision" in p else p
                                for p in doc["policies"]]}


def test_postgres_store_keeps_batches_edges_approvals_and_alerts(postgres, make_controller):
    records = bookinfo_records()
    ctl = _controller(postgres)
    try:
        assert ctl.store.dialect == "postgres"
        for start in range(0, len(records), 50):
            assert ctl.ingest(json.dumps(batch(records[start:start + 50])).encode())["accepted"] == len(records[start:start + 50])
        ctl.approve("default/Deployment/ratings-v1", "approved")
        pg_policies = ctl.policies_json()
    finally:
        ctl.close()
    sqlite = make_controller()
    sqlite.ingest(json.dumps(batch(records)).encode())
    sqlite.approve("default/Deployment/ratings-v1", "approved")
    assert _timeless(pg_policies) == _timeless(sqlite.policies_json())  # the same queries, the same answers

    again = _controller(postgres, namespaces={"default": "monitor"})
    try:
        assert list(again.store.iter_records()) == records
        counts = again.store.counts()
        assert counts["records"] == len(records) and counts["batches"] == 4
        assert {w: str(a.decision) for w, a in again.approvals.items()} == {"default/Deployment/ratings-v1": "approved"}
        for _ in range(3):
            again.ingest(json.dumps(batch([LATERAL, LATERAL])).encode())
        alerts = again.store.alerts()
        assert len(alerts) == 1 and alerts[0]["count"] == 6 and alerts[0]["reasons"] == ["new-edge", "denied"]
        assert again.store.size_bytes() > 0
    finally:
        again.close()


def test_postgres_keeps_modes_set_through_the_api_and_migrates_a_version_1_store(postgres):
    ctl = _controller(postgres, namespaces={"default": "protect"})
    try:
        assert ctl.set_mode("default", "monitor") == {"namespace": "default", "mode": "monitor", "requested": "monitor",
                                                      "source": "api"}
        conn = ctl.store._reader  # back to version 1: no modes table
        with ctl.store._read_lock:
            cur = conn.cursor()
            cur.execute("DROP TABLE modes")
            cur.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
            conn.commit()
    finally:
        ctl.close()
    again = _controller(postgres, namespaces={"default": "protect"})
    try:
        assert again.store.schema_version() == SCHEMA_VERSION and again.store.modes() == {}
        again.set_mode("default", "monitor")
    finally:
        again.close()
    third = _controller(postgres, namespaces={"default": "protect"})
    try:
        assert [m for m in third.modes_json()["modes"] if m["namespace"] == "default"] == [
            {"namespace": "default", "mode": "monitor", "requested": "monitor", "source": "api"}]
        assert third.clear_mode("default")["mode"] == "protect"
        assert third.store.modes() == {}
    finally:
        third.close()
