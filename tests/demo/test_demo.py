"""`netguard demo`: the whole mission on the lab (`--quick`, as root), and the replay of the recorded
capture where the lab cannot run. Both assert on the report the demo writes (report.json)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.conftest import REASON, leftovers

NETGUARD = [sys.executable, "-m", "netguard"]


def _checks(report: dict) -> dict[str, bool]:
    return {c["check"]: c["ok"] for c in report["checks"]}


@pytest.mark.skipif(REASON is not None, reason=f"the demo's lab path: {REASON}")
def test_quick_demo_on_the_lab_allows_bookinfo_drops_and_alerts_lateral_moves_and_blocks_attacks(tmp_path):
    name = f"d{os.getpid() % 100000}"[:7]
    proc = subprocess.run([*NETGUARD, "demo", "--quick", "-o", str(tmp_path), "--lab-name", name],
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    report = json.loads((tmp_path / "report.json").read_text())
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert report["mode"] == "lab" and report["ok"], _checks(report)
    assert "[14/14]" in proc.stdout and "result: PASS" in proc.stdout  # progress and the text report
    assert report["seconds"] < 120  # about 30 s on the 2-core machine; margin for a loaded one

    # every bookinfo call allowed: while learning, and under the enforced policies
    assert report["traffic"]["calls"] > 50 and report["traffic"]["failed"] == 0
    assert report["enforced"]["calls"] > 0 and report["enforced"]["failed"] == 0
    assert report["policies"]["count"] == 7 and report["policies"]["verify"]["sound"]
    assert report["policies"]["controller_equal"]

    # every lateral move dropped (a timed-out TCP connection) and alerted exactly once, in monitor mode
    moves = report["lateral"]
    assert len(moves) == 4
    for move in moves:
        assert move["dropped"] and not move["connected"], move
        assert move["alerts"] == 1 and "denied" in move["reasons"], move
    assert not report["unexpected_alerts"]
    assert {a["mode"] for a in report["alerts"]} == {"monitor"}

    # every attack blocked by the sidecar with a request id it also logged; the normal request passed
    web = report["web"]["requests"]
    attacks = [r for r in web if r["expect"] == "block"]
    assert {r["name"] for r in attacks} == {"SQL injection", "cross-site scripting", "path traversal"}
    for r in attacks:
        assert r["status"] == 403 and r["blocked"] and r["request_id"] and r["in_audit_log"], r
    assert all(r["status"] == 200 for r in web if r["expect"] == "pass")

    # the lab is gone, and so is every process the demo started
    assert report["cleanup"]["lab_gone"] and not report["cleanup"]["leftovers"]
    assert not leftovers(name)
    for entry in report["cleanup"]["stopped"]:
        pid = int(entry.rsplit("pid ", 1)[1].rstrip(")"))
        assert not Path(f"/proc/{pid}").exists(), entry
    html = (tmp_path / "report.html").read_text()
    assert "PASS" in html and (("<svg" in html) == bool(report["topology"]["svg"]))
    assert (tmp_path / "policies" / "default" / "ratings-v1.yaml").is_file()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.skipif(REASON is not None, reason=f"the demo's lab path: {REASON}")
def test_ctrl_c_stops_everything_and_takes_the_lab_down(tmp_path):
    name = f"i{os.getpid() % 100000}"[:7]
    # Ctrl-C as a terminal delivers it: a shell starts background jobs with SIGINT ignored, and a
    # suite run as one (`make test &`) would hand that on, so the demo gets the default disposition.
    proc = subprocess.Popen([*NETGUARD, "demo", "--quick", "--duration", "30", "-o", str(tmp_path), "--lab-name", name],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
                            preexec_fn=_default_sigint)
    seen = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # bounded: the demo ends by itself within its own time limits
            seen.append(line)
            if line.startswith("[4/14]"):  # the traffic runs: the controller and the agent are up
                proc.send_signal(signal.SIGINT)
                break
        rest, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = "".join(seen) + rest
    assert proc.returncode == 130, output[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["error"] == "interrupted" and not report["ok"]
    assert report["cleanup"]["lab_gone"] and not leftovers(name), output[-3000:]
    stopped = report["cleanup"]["stopped"]
    assert {s.split()[0] for s in stopped} == {"controller", "agent"}
    for entry in stopped:
        pid = int(entry.rsplit("pid ", 1)[1].rstrip(")"))
        assert not Path(f"/proc/{pid}").exists(), entry


@pytest.mark.skipif(REASON is not None, reason=f"the demo's lab path: {REASON}")
def test_a_lab_in_use_under_the_same_name_is_left_alone(tmp_path):
    from netguard.lab import lab
    from tests.lab.conftest import BOOKINFO

    name = f"u{os.getpid() % 100000}"[:7]
    lab.down(name)
    try:
        lab.up([str(BOOKINFO)], name)
        proc = subprocess.run([*NETGUARD, "demo", "--quick", "-o", str(tmp_path), "--lab-name", name],
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert proc.returncode == 1 and "is up and running" in proc.stderr, proc.stdout[-2000:] + proc.stderr
        assert lab.load(name)[0].name == name and leftovers(name)  # still up: not the demo's to take down
    finally:
        lab.down(name)
    assert not leftovers(name)


def test_replay_runs_the_recorded_capture_through_the_same_pipeline(tmp_path):
    proc = subprocess.run([*NETGUARD, "demo", "--replay", "-o", str(tmp_path)], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "REPLAY of a recorded capture" in proc.stdout and "--replay was given" in proc.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["mode"] == "replay" and report["ok"], _checks(report)
    assert report["policies"]["count"] == 6 and report["policies"]["verify"]["sound"]
    assert all(m["dropped"] for m in report["lateral"]) and len(report["lateral"]) == 4
    assert all(r["as_expected"] for r in report["web"]["requests"])
    assert sum(r["blocked"] for r in report["web"]["requests"]) == 3
    html = (tmp_path / "report.html").read_text()
    assert "replay of a recorded capture" in html
    if shutil.which("dot"):
        assert report["topology"]["svg"] and "<svg" in html


def test_without_root_the_demo_says_it_replays(tmp_path, monkeypatch, capsys):
    from netguard import demo

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert demo.lab_unavailable().startswith("not root")
    assert demo.main(["-o", str(tmp_path), "--quick"]) == 0
    out = capsys.readouterr().out
    assert "REPLAY of a recorded capture, not live traffic: not root" in out
    assert json.loads((tmp_path / "report.json").read_text())["reason"].startswith("not root")


def test_report_page_escapes_and_says_fail():
    from netguard.demo import _report

    report = {"mode": "lab", "ok": False, "error": "<boom>", "lateral": [{"to": "x<y>:1", "dropped": False, "alerts": 0}],
              "web": {"requests": [{"name": "SQL injection", "method": "GET", "path": "/?q=<script>", "expect": "block",
                                    "status": 200, "blocked": False, "as_expected": False}]}}
    page = _report.html_page(report)
    assert "<boom>" not in page and "&lt;boom&gt;" in page and "&lt;script&gt;" in page
    text = _report.text(report)
    assert "FAILED: <boom>" in text and "[FAIL] lateral moves dropped" in text and "result: FAIL" in text


def test_bad_duration_is_a_usage_error(tmp_path, capsys):
    from netguard import demo

    assert demo.main(["--duration", "0", "-o", str(tmp_path)]) == 2
    assert "--duration" in capsys.readouterr().err
