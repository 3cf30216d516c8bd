from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from policygen.controller.app import create_app
from policygen.controller.metrics import Metrics
from policygen.controller.service import Controller, FileInventory
from policygen.controller.settings import Settings
from policygen.controller.store import open_store

DATA = Path(__file__).resolve().parents[1] / "policygen" / "data"
CLUSTER = DATA / "bookinfo-cluster.yaml"
FLOWS = DATA / "bookinfo-flows.jsonl"
TOKEN = "agent-token-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def bookinfo_records() -> list[dict]:
    return [json.loads(line) for line in FLOWS.read_text().splitlines() if line.strip()]


def batch(records: list[dict], agent: str = "node-1") -> dict:
    return {"agent": agent, "flows": records}


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"# agents\n{TOKEN}\nreviewer-token\n")
    return path


@pytest.fixture
def make_controller(tmp_path: Path, token_file: Path):
    made: list[Controller] = []

    def make(inventory: list[str] | None = None, applier=None, source=None, **kw) -> Controller:
        kw.setdefault("db", str(tmp_path / f"ctl{len(made)}.db"))
        kw.setdefault("review_max_age", 0.0)  # the tests read what they just wrote
        settings = Settings(tokens=("agent-token-1", "reviewer-token"), token_file=str(token_file), **kw).validate()
        store = open_store(settings.db)
        source = source or FileInventory([str(p) for p in (inventory if inventory is not None else [CLUSTER])])
        controller = Controller(settings, store, source, Metrics(), applier=applier)
        made.append(controller)
        return controller

    yield make
    for controller in made:
        controller.close()


@pytest.fixture
def client(make_controller):
    controller = make_controller()
    with TestClient(create_app(controller)) as c:
        c.controller = controller
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ControllerProcess:
    """A real `netguard controller` process on 127.0.0.1; stopped (by its pid) when the test ends."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [sys.executable, "-m", "netguard", "controller", "--listen", f"127.0.0.1:{self.port}", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log.open("ab"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"controller exited {self.proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"controller did not become ready: {log.read_text()[-2000:]}")

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@pytest.fixture
def controller_process(tmp_path: Path):
    started: list[ControllerProcess] = []

    def start(*args: str) -> ControllerProcess:
        p = ControllerProcess(list(args), tmp_path / f"controller{len(started)}.log")
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def count_synthesis(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, the key of every workload whose policy is synthesized, in order: how tests check
    that a batch re-synthesizes only the workloads it touched."""
    from policygen.synth import Synthesizer

    calls: list[str] = []
    real = Synthesizer.policy_for

    def counting(self, workload, ins, outs):  # type: ignore[no-untyped-def]
        calls.append(workload.key)
        return real(self, workload, ins, outs)

    monkeypatch.setattr(Synthesizer, "policy_for", counting)
    return calls
