"""What the demo's steps share: visible progress, `netguard` commands run as subprocesses, the
processes the demo starts (stopped by their pids, never by name), and a small HTTP client."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

NETGUARD = [sys.executable, "-m", "netguard"]


class DemoFailed(RuntimeError):
    """A step of the demo did not do what it must; the message says which and why."""


class Progress:
    """Numbered steps with the time since the start, printed as they begin."""

    def __init__(self, total: int, out: IO[str] = sys.stdout) -> None:
        self.total, self.out, self.n = total, out, 0
        self.start = time.monotonic()

    def step(self, title: str) -> None:
        self.n += 1
        self.say(f"\n[{self.n}/{self.total}] {title}  ({self.elapsed():.0f}s)")

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def netguard(progress: Progress, *args: str, ok: tuple[int, ...] = (0,), show: bool = True,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `netguard ARGS` (printed first, as a user would type it); its output is shown indented."""
    progress.say("$ netguard " + " ".join(shlex.quote(a) for a in args))
    proc = subprocess.run([*NETGUARD, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if show:
        for line in (proc.stdout + proc.stderr).rstrip().splitlines():
            progress.say(f"  {line}")
    if proc.returncode not in ok:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or [""]
        raise DemoFailed(f"`netguard {' '.join(args[:3])}` exited {proc.returncode}: {tail[0]}")
    return proc


class Supervisor:
    """The long-running processes the demo starts; each is stopped by its own pid (SIGTERM, then SIGKILL)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen([*NETGUARD, *args], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # Ctrl-C reaches the demo only: it stops them in order
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_log(self, name: str, text: str, timeout: float = 30.0) -> None:
        proc = self.procs[name]
        deadline = time.monotonic() + timeout
        while text not in self.log(name):
            if proc.poll() is not None:
                raise DemoFailed(f"{name} exited {proc.returncode}: {self._tail(name)}")
            if time.monotonic() > deadline:
                raise DemoFailed(f"{name} did not say {text!r} within {timeout:.0f}s: {self._tail(name)}")
            time.sleep(0.1)

    def _tail(self, name: str) -> str:
        lines = self.log(name).strip().splitlines()
        return lines[-1] if lines else "(no output)"

    def stop(self, name: str, timeout: float = 20.0) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                return proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                return proc.wait(10)
        return proc.returncode

    def stop_all(self) -> list[str]:
        stopped = []
        for name in reversed(list(self.procs)):
            pid = self.procs[name].pid
            self.stop(name)
            stopped.append(f"{name} (pid {pid})")
        return stopped


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Api:
    """The controller's HTTP API on 127.0.0.1, with the demo's token."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def request(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 (a loopback URL of our own)
            return json.loads(response.read() or b"null")

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def ready(self) -> bool:
        try:
            self.get("/readyz")
            return True
        except (OSError, urllib.error.URLError, ValueError):
            return False


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Poll `predicate` until it returns something true, at most `timeout` seconds; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
