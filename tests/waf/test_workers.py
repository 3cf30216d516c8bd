"""`netguard waf --workers N`: worker processes sharing the port, supervised by a parent; and how many
`auto` means (the CPU quota and affinity, pure functions)."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.waf.conftest import free_port
from waf._workers import cgroup_cpu_limits, parse_cfs, parse_cpu_max, workers_for
from waf.config import ConfigError, load_settings

# --- auto: the quota and the affinity -------------------------------------------------------------


@pytest.mark.parametrize(
    "text,cpus", [("max 100000", None), ("max", None), ("100000 100000", 1.0), ("150000 100000", 1.5),
                  ("50000 100000", 0.5), ("200000", 2.0), ("", None), ("junk 100000", None)],
)  # fmt: skip
def test_cpu_max_lines(text, cpus):
    assert parse_cpu_max(text) == cpus


def test_cfs_quota_minus_one_is_no_limit():
    assert parse_cfs("-1", "100000") is None
    assert parse_cfs("250000", "100000") == 2.5


@given(
    limits=st.lists(st.one_of(st.none(), st.floats(min_value=0.01, max_value=256)), max_size=4),
    affinity=st.integers(min_value=1, max_value=512),
)
def test_workers_never_exceed_the_affinity_nor_the_tightest_quota(limits, affinity):
    n = workers_for(limits, affinity)
    assert 1 <= n <= affinity
    quotas = [q for q in limits if q is not None]
    if quotas:
        assert n <= max(1, math.ceil(min(quotas)))
        assert n == min(affinity, max(1, math.ceil(min(quotas) - 1e-9)))
    else:
        assert n == affinity


def test_a_sidecar_limited_to_one_cpu_runs_one_worker():
    assert workers_for([1.0], 8) == 1
    assert workers_for([0.25], 8) == 1
    assert workers_for([1.5], 8) == 2
    assert workers_for([None, 4.0, 2.0], 8) == 2  # a parent cgroup's tighter quota wins
    assert workers_for([], 3) == 3


def test_cgroup_quotas_are_read_from_the_own_cgroup_and_its_parents_v2(tmp_path):
    (tmp_path / "fs/kubepods/pod1/ctr").mkdir(parents=True)
    (tmp_path / "fs/kubepods/pod1/ctr/cpu.max").write_text("max 100000\n")
    (tmp_path / "fs/kubepods/pod1/cpu.max").write_text("200000 100000\n")
    (tmp_path / "fs/cpu.max").write_text("max 100000\n")
    proc = tmp_path / "cgroup"
    proc.write_text("0::/kubepods/pod1/ctr\n")
    assert cgroup_cpu_limits(tmp_path / "fs", proc) == [2.0]


def test_cgroup_quotas_v1_and_a_namespaced_root(tmp_path):
    cpu = tmp_path / "fs/cpu,cpuacct"
    cpu.mkdir(parents=True)
    (cpu / "cpu.cfs_quota_us").write_text("50000\n")
    (cpu / "cpu.cfs_period_us").write_text("100000\n")
    proc = tmp_path / "cgroup"
    proc.write_text("4:memory:/x\n3:cpu,cpuacct:/\n")
    assert cgroup_cpu_limits(tmp_path / "fs", proc) == [0.5]
    (tmp_path / "fs/cpu.max").write_text("300000 100000\n")
    proc.write_text("0::/\n")  # cgroup v2 with its own namespace: the root is the container's cgroup
    assert cgroup_cpu_limits(tmp_path / "fs", proc) == [3.0]
    assert cgroup_cpu_limits(tmp_path / "nothing", tmp_path / "missing") == []


@pytest.mark.parametrize("value,want", [("auto", None), (3, 3), ("2", 2)])
def test_workers_setting(tmp_path, value, want):
    cfg = tmp_path / "waf.yaml"
    cfg.write_text(f"workers: {value}\n")
    assert load_settings(str(cfg)).workers == want
    assert load_settings(None, workers=str(value)).workers == want


@pytest.mark.parametrize("value", [0, -1, "many", True, 1.5])
def test_bad_workers_setting_names_the_key(tmp_path, value):
    cfg = tmp_path / "waf.yaml"
    cfg.write_text(f"workers: {value}\n")
    with pytest.raises(ConfigError, match=r"waf.yaml: workers: must be auto or a positive integer"):
        load_settings(str(cfg))


# --- real processes on 127.0.0.1 ------------------------------------------------------------------


def _children(parent: int) -> set[int]:
    """Live (not zombie) processes whose parent is `parent`."""
    out = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == parent:
            out.add(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _until(predicate, timeout: float = 120.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _listeners(port: int) -> int:
    """Listening TCP sockets on 127.0.0.1:port (each SO_REUSEPORT worker has its own)."""
    n = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A" and local == f"0100007F:{port:04X}":
            n += 1
    return n


def _metric(text: str, sample: str) -> float:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


@pytest.fixture
def workers(upstream, tmp_path):
    """`netguard waf --workers 2` (its metrics folder under tmp_path); torn down by pid even on failure."""
    port, mport = free_port(), free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    (tmp_path / "waf.yaml").write_text(f"mode: block\naudit_log: {tmp_path / 'audit.jsonl'}\nworkers: 2\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "netguard", "waf", "--listen", f"127.0.0.1:{port}", "--upstream", upstream,
         "--metrics-listen", f"127.0.0.1:{mport}", "--config", str(tmp_path / "waf.yaml")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    seen: set[int] = set()
    try:
        _until(lambda: len(_children(proc.pid)) == 2 and _listeners(port) == 2, what="two listening workers")
        seen |= _children(proc.pid)
        yield proc, port, mport, seen, tmp_path
    finally:
        seen |= _children(proc.pid)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for pid in seen:  # the workers die with their parent (PDEATHSIG); make sure of it
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        for d in tmp_path.glob("netguard-waf-metrics-*"):
            shutil.rmtree(d, ignore_errors=True)


def test_workers_share_the_port_and_the_metrics_count_them_all(workers):
    proc, port, mport, seen, tmp = workers
    pids = _children(proc.pid)
    for i in range(40):  # a new connection each: the kernel spreads them over both workers
        with httpx.Client(timeout=10) as c:
            assert c.get(f"http://127.0.0.1:{port}/page?i={i}").status_code == 200
    with httpx.Client(timeout=10) as c:
        blocked = c.get(f"http://127.0.0.1:{port}/?q=%3Cscript%3Ealert(1)%3C/script%3E")
    assert blocked.status_code == 403
    records = [json.loads(line) for line in (tmp / "audit.jsonl").read_text().splitlines()]
    assert [r["request_id"] for r in records] == [blocked.json()["request_id"]]  # one file, all workers append
    metrics = httpx.get(f"http://127.0.0.1:{mport}/metrics", timeout=10).text
    assert _metric(metrics, 'netguard_waf_requests_total{action="pass"}') == 40
    assert _metric(metrics, 'netguard_waf_requests_total{action="blocked"}') == 1
    assert _metric(metrics, "netguard_waf_workers") == 2
    # each worker served some of them (its own file in the multiprocess folder holds its share)
    folder = next(tmp.glob("netguard-waf-metrics-*"))
    shares = []
    for pid in pids:
        one = tmp / f"one-{pid}"
        one.mkdir()
        for f in folder.glob(f"*_{pid}.db"):
            shutil.copy(f, one / f.name)
        reg = CollectorRegistry()
        MultiProcessCollector(reg, path=str(one))
        shares.append(_metric(generate_latest(reg).decode(), 'netguard_waf_requests_total{action="pass"}'))
    assert sum(shares) == 40 and all(s > 0 for s in shares)
    assert httpx.get(f"http://127.0.0.1:{mport}/healthz", timeout=5).status_code == 200


def test_a_killed_worker_is_replaced_and_its_counts_are_kept(workers):
    proc, port, mport, seen, _ = workers
    for i in range(10):
        with httpx.Client(timeout=10) as c:
            assert c.get(f"http://127.0.0.1:{port}/before?i={i}").status_code == 200
    victim = min(_children(proc.pid))
    os.kill(victim, signal.SIGKILL)
    _until(lambda: victim not in _children(proc.pid) and len(_children(proc.pid)) == 2 and _listeners(port) == 2,
           what="a new worker in place of the killed one")  # fmt: skip
    seen |= _children(proc.pid)
    with httpx.Client(timeout=10) as c:
        assert c.get(f"http://127.0.0.1:{port}/after").status_code == 200
    metrics = httpx.get(f"http://127.0.0.1:{mport}/metrics", timeout=10).text
    assert _metric(metrics, "netguard_waf_worker_restarts_total") == 1
    assert _metric(metrics, 'netguard_waf_requests_total{action="pass"}') == 11


def test_sigterm_stops_every_process(workers):
    proc, port, _, seen, tmp = workers
    pids = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    _until(lambda: not any(_alive(p) for p in pids), timeout=15, what="the workers to exit")
    assert _listeners(port) == 0
    assert not list(tmp.glob("netguard-waf-metrics-*"))  # the parent removed its metrics folder


def test_a_killed_parent_takes_its_workers_along(workers):
    proc, port, _, seen, _ = workers
    pids = _children(proc.pid)
    proc.kill()
    proc.wait(timeout=10)
    _until(lambda: not any(_alive(p) for p in pids), timeout=15, what="the orphaned workers to exit")


def test_sighup_reaches_every_worker(workers):
    """Reload through the parent: every worker (whichever serves a new connection) gets the new mode."""
    proc, port, mport, _, tmp = workers
    attack = f"http://127.0.0.1:{port}/?q=%3Cscript%3Ealert(1)%3C/script%3E"
    assert httpx.get(attack, timeout=10).status_code == 403
    (tmp / "waf.yaml").write_text("mode: detect\naudit_log: null\nworkers: 2\n")
    os.kill(proc.pid, signal.SIGHUP)

    def all_detect() -> bool:  # ten new connections in a row pass: both workers reloaded
        return all(httpx.get(attack, timeout=10).status_code == 200 for _ in range(10))

    _until(all_detect, timeout=60, what="every worker in detect mode")
    metrics = httpx.get(f"http://127.0.0.1:{mport}/metrics", timeout=10).text
    assert _metric(metrics, 'netguard_waf_config_reloads_total{result="ok"}') == 1
    assert len(_children(proc.pid)) == 2
