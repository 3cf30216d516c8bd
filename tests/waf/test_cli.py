"""`netguard waf` as a real process: config errors, SIGHUP reload, --inspect."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.waf.conftest import free_port


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """A bound, not a timing: a cold cache compiles the rule databases (~21 s of CPU) in the child."""
    return subprocess.run([sys.executable, "-m", "netguard", "waf", *args], capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_help_shows_an_example():
    out = run_cli("--help")
    assert out.returncode == 0 and "netguard waf --listen" in out.stdout


def test_bad_config_is_one_line_naming_file_and_key(tmp_path):
    cfg = tmp_path / "waf.yaml"
    cfg.write_text("inspection:\n  body_limit: -5\n")
    out = run_cli("--listen", "127.0.0.1:1", "--upstream", "http://127.0.0.1:2", "--config", str(cfg))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and str(cfg) in lines[0] and "inspection.body_limit" in lines[0]


@pytest.mark.parametrize(
    ("text", "key"),
    [("mode: maybe\n", "mode"), ("exclusions:\n  - {}\n", "exclusions[0]"), ("bogus: 1\n", "bogus"),
     ("timeouts:\n  upstream: fast\n", "timeouts.upstream"), ("paranoia: 7\n", "paranoia"),
     ("[1, 2\n", "YAML")],
)  # fmt: skip
def test_check_config_names_the_key(tmp_path, text, key):
    cfg = tmp_path / "waf.yaml"
    cfg.write_text(text)
    out = run_cli("--check-config", str(cfg))
    assert out.returncode == 2 and key in out.stderr and str(cfg) in out.stderr


def test_bad_rules_file_is_reported_with_rule_and_key(tmp_path):
    (tmp_path / "extra.yaml").write_text("rules:\n  - {id: 900001, category: sqli, pattern: '(unclosed'}\n")
    cfg = tmp_path / "waf.yaml"
    cfg.write_text("rules_files: [extra.yaml]\n")
    out = run_cli("--check-config", str(cfg))
    assert out.returncode == 2 and "900001" in out.stderr and "pattern" in out.stderr


def test_inspect_prints_a_verdict():
    out = run_cli("--inspect", "GET /?q=%3Cscript%3Ealert(1)%3C/script%3E")
    assert out.returncode == 1 and '"blocked": true' in out.stdout


def _wait_ok(url: str, deadline: float = 120) -> None:  # a cold cache compiles ~21 s of CPU first
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never came up")


def test_sighup_reloads_config_without_dropping_connections(tmp_path, upstream):
    cfg = tmp_path / "waf.yaml"
    cfg.write_text("mode: block\naudit_log: null\n")
    port, mport = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "netguard", "waf", "--listen", f"127.0.0.1:{port}", "--upstream", upstream,
         "--metrics-listen", f"127.0.0.1:{mport}", "--config", str(cfg)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ok(f"{base}/healthz")
        attack = f"{base}/?q=%3Cscript%3Ealert(1)%3C/script%3E"
        with httpx.Client(timeout=5) as keepalive:
            assert keepalive.get(attack).status_code == 403
            cfg.write_text("mode: detect\naudit_log: null\n")
            os.kill(proc.pid, signal.SIGHUP)
            for _ in range(100):
                if keepalive.get(attack).status_code == 200:
                    break
                time.sleep(0.05)
            assert keepalive.get(attack).status_code == 200  # same keep-alive connection, new config
            cfg.write_text("mode: [broken\n")
            os.kill(proc.pid, signal.SIGHUP)
            time.sleep(0.5)
            assert keepalive.get(attack).status_code == 200  # a bad file keeps the running config
        metrics = httpx.get(f"http://127.0.0.1:{mport}/metrics").text
        assert 'netguard_waf_config_reloads_total{result="ok"} 1.0' in metrics
        assert 'netguard_waf_config_reloads_total{result="error"} 1.0' in metrics
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def test_body_limit_comes_from_the_env_the_injected_sidecar_gets(upstream, tmp_path):
    """The injection sets NETGUARD_WAF_BODY_LIMIT from the pod's annotation; the sidecar honours it."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "NETGUARD_WAF_BODY_LIMIT": "1024"}
    proc = subprocess.Popen([sys.executable, "-m", "netguard", "waf", "--listen", f"127.0.0.1:{port}", "--upstream", upstream,
                             "--metrics-listen", "127.0.0.1:0"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(1200):  # bounded: up to 120 s for start-up (a cold cache compiles first)
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert httpx.post(f"{base}/upload", content=b"a" * 5000, timeout=5).status_code == 413
        assert httpx.post(f"{base}/upload", content=b"a" * 1000, timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_precompile_fills_the_cache_a_later_engine_loads(tmp_path, monkeypatch, capsys):
    """The image's build step: the databases land in $NETGUARD_WAF_CACHE, and an engine started
    later (a sidecar on a read-only file system) loads them rather than compiling."""
    from waf import _engine
    from waf.cli import main

    monkeypatch.setenv("NETGUARD_WAF_CACHE", str(tmp_path))
    assert main(["--precompile", "--paranoia", "1"]) == 0
    files = sorted(tmp_path.glob("hs-*.db"))
    out = capsys.readouterr().out  # the count is of the databases it scans with; probes built on the way are cached too
    assert files and f"databases for paranoia 1 in {tmp_path}" in out and int(out.split()[0]) <= len(files)
    engine = _engine.Engine(_engine.EngineConfig(paranoia=1))
    for vdb in engine._all_dbs:
        for group in vdb.groups:  # every database the engine scans with: exact, batch twin, solo
            for key, _db in group.compiled():
                assert _engine._load_cached(key) is not None


def test_precompile_refuses_a_disabled_cache_at_once():
    out = subprocess.run([sys.executable, "-m", "netguard", "waf", "--precompile"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "NETGUARD_WAF_CACHE": "off"})  # fmt: skip
    assert out.returncode == 2 and "NETGUARD_WAF_CACHE is off" in out.stderr
