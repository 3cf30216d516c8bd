"""Fixtures for the UI tests: real `netguard ui` processes on free loopback ports, and headless
Debian Chromium driven by Playwright (skipped, with the reason, when either is missing)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "policygen" / "data"
INVENTORY = DATA / "bookinfo-cluster.yaml"
FLOWS = DATA / "bookinfo-flows.jsonl"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
BOOKINFO_WORKLOADS = ["details-v1", "productpage-v1", "ratings-v1", "reviews-v1", "reviews-v2", "reviews-v3"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(base: str, proc: subprocess.Popen | None = None, timeout: float = 120.0) -> None:
    """Bounded; long enough for a WAF sidecar that compiles its rule databases on a cold cache (~21 s of CPU)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(base + "/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{base} did not come up in {timeout}s")


@contextlib.contextmanager
def running_ui(*args: str) -> Iterator[str]:
    """`netguard ui ARGS` as a real process on a free port; yields its base URL; always stopped."""
    port = free_port()
    with running_netguard("ui", *args, "--listen", f"127.0.0.1:{port}", port=port) as base:
        yield base


@contextlib.contextmanager
def running_netguard(*args: str, port: int, env: dict[str, str] | None = None) -> Iterator[str]:
    """`netguard ARGS` (listening on `port`) as a real process, once healthy; yields its base URL; always stopped."""
    environ = {**os.environ, **env} if env else None
    proc = subprocess.Popen([sys.executable, "-m", "netguard", *args], cwd=ROOT, env=environ, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


@contextlib.contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """An ASGI app served by uvicorn in a thread on a free port (a stand-in controller)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def bookinfo_ui() -> Iterator[str]:
    with running_ui("--inventory", str(INVENTORY), "--flows", str(FLOWS)) as base:
        yield base


@pytest.fixture(scope="package")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (Debian: apt-get install chromium; scripts/system-deps.sh does it as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright for Python is not installed (it is in the dev extra: pip install -e '.[dev]')")
    # Playwright's launch() gives each run a fresh, temporary user data dir of its own
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Console:
    def __init__(self) -> None:
        self.errors: list[str] = []


@pytest.fixture
def page(browser):
    """A fresh page (its own context: cookies and storage) that records console errors and page errors."""
    context = browser.new_context(viewport={"width": 1500, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    console = Console()
    pg.on("console", lambda m: console.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: console.errors.append(str(e)))
    pg.console = console
    yield pg
    context.close()


def open_map(page, base: str) -> None:
    page.goto(base + "/")
    page.wait_for_function("window.netguard && window.netguard.ready && window.netguard.reviewReady", timeout=20_000)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path
