"""Several sidecar processes on one port: how many, and the parent that keeps them running.

One Python process serves at most one core. `--workers N` runs N worker processes, each a whole
sidecar (its own event loop, engine and upstream pool) listening on the same port with SO_REUSEPORT:
the kernel spreads new connections over them, no process hands sockets to another. The compiled rule
databases come from the shared cache (the parent compiles them once before starting the workers, so
they load rather than compile).

The parent does no proxying. It holds the port (bound, not listening: nothing else can take it while a
worker restarts), restarts a worker that dies (with a back-off when it keeps dying young), forwards
SIGHUP to every worker (each re-reads the config file), and on SIGTERM or SIGINT stops every worker
(each drains its connections) and exits. Each worker dies with the parent (PR_SET_PDEATHSIG), so a
killed parent leaves no orphans.

Metrics: the workers write theirs through prometheus-client's multiprocess mode into a folder the parent
made; the parent serves the metrics port and sums every worker's counters and histograms there (those of
a worker that died stay counted), plus its own `netguard_waf_workers` and
`netguard_waf_worker_restarts_total`.

`auto` workers = the CPUs this process may use: its CPU affinity, capped by the cgroup CPU quota
(rounded up) of its cgroup and every parent cgroup (v2 `cpu.max`, v1 `cpu.cfs_quota_us`): a container
limited to 1 CPU runs 1 worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("netguard.waf")

WORKER_ENV = "NETGUARD_WAF_WORKER"  # the worker's spec (JSON), set by the parent only
STOP_GRACE = 10.0  # seconds a worker gets to drain after SIGTERM before SIGKILL
_PR_SET_PDEATHSIG = 1


# --- how many workers --------------------------------------------------------------------------------
def parse_cpu_max(text: str) -> float | None:
    """CPUs allowed by one cgroup v2 `cpu.max` line (`"150000 100000"` → 1.5; `"max 100000"` → None)."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1]) if len(parts) > 1 else 100_000
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def parse_cfs(quota_text: str, period_text: str) -> float | None:
    """CPUs allowed by cgroup v1's `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1: no limit)."""
    try:
        quota, period = int(quota_text), int(period_text)
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def workers_for(limits: Iterable[float | None], affinity: int) -> int:
    """Workers for `auto`: the CPUs of the affinity mask, capped by the tightest quota (rounded up, so a
    1.5-CPU limit runs 2 workers rather than leaving half a CPU idle); at least 1."""
    n = max(1, affinity)
    for cpus in limits:
        if cpus is not None:
            n = min(n, max(1, math.ceil(cpus - 1e-9)))
    return n


def _cgroup_dirs(root: Path, cgroup: str) -> Iterator[Path]:
    """The cgroup's folder and each parent up to `root` (only those that exist)."""
    rel = Path(cgroup.strip("/")) if cgroup.strip("/") else None
    seen = set()
    while rel is not None and str(rel) not in ("", "."):
        if (root / rel).is_dir():
            seen.add(root / rel)
            yield root / rel
        rel = rel.parent if rel.parent != rel else None
    if root not in seen and root.is_dir():
        yield root


def cgroup_cpu_limits(fs: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")) -> list[float]:
    """The CPU quotas (in CPUs) on this process's cgroup and its parents, v2 and v1; [] when none or
    unreadable."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    limits: list[float | None] = []
    for line in lines:
        _, controllers, path = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        if controllers == "" and path:  # v2 unified hierarchy
            for base in (fs, fs / "unified"):
                for d in _cgroup_dirs(base, path):
                    limits.append(_read(d / "cpu.max", parse_cpu_max))
        elif "cpu" in controllers.split(","):
            for name in (controllers, "cpu"):
                for d in _cgroup_dirs(fs / name, path):
                    q, p = _text(d / "cpu.cfs_quota_us"), _text(d / "cpu.cfs_period_us")
                    limits.append(parse_cfs(q, p) if q is not None and p is not None else None)
    if not lines:  # no /proc: the namespaced root is all there is
        limits.append(_read(fs / "cpu.max", parse_cpu_max))
    return [x for x in limits if x is not None]


def _text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _read(path: Path, parse) -> float | None:  # type: ignore[no-untyped-def]
    text = _text(path)
    return parse(text) if text is not None else None


def available_cpus() -> int:
    """The CPUs this process may use (affinity capped by the cgroup quota): what `auto` means."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        affinity = os.cpu_count() or 1
    return workers_for(cgroup_cpu_limits(), affinity)


def resolve_workers(workers: int | None) -> int:
    """The number of worker processes for a setting (None: auto)."""
    return workers if workers is not None else available_cpus()


# --- the shared port ---------------------------------------------------------------------------------
def reuseport_socket(host: str, port: int, *, listen: bool) -> socket.socket:
    """A TCP socket bound with SO_REUSEPORT (and listening when asked): every worker makes its own."""
    family, kind, proto, _, addr = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(addr)
        if listen:
            sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


# --- the worker side ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs from its parent (passed as JSON in the environment)."""

    config_file: str | None
    overrides: dict[str, object]
    parent: int
    index: int

    def to_json(self) -> str:
        return json.dumps(
            {"config_file": self.config_file, "overrides": self.overrides, "parent": self.parent, "index": self.index}
        )

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        d = json.loads(text)
        return cls(d["config_file"], d["overrides"], int(d["parent"]), int(d["index"]))


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGTERM this worker when its parent dies (and exit if it already did)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        sys.exit(0)


def worker_main() -> int:
    """Entry point of a worker process (`python -m waf._worker`): one sidecar on the shared port, without
    a metrics port of its own."""
    import dataclasses

    from waf.config import load_settings, parse_hostport
    from waf.server import run_worker

    spec = WorkerSpec.from_json(os.environ[WORKER_ENV])
    _die_with_parent(spec.parent)
    _json_logging()
    settings = load_settings(spec.config_file, **spec.overrides)
    settings = dataclasses.replace(settings, metrics_listen=None, workers=1)
    host, port = parse_hostport(settings.listen, "listen")
    sock = reuseport_socket(host, port, listen=True)
    return run_worker(settings, spec.overrides, sock)


def _json_logging() -> None:
    from waf.cli import JsonLogFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("netguard.waf").setLevel(logging.INFO)


# --- the parent --------------------------------------------------------------------------------------
@dataclass
class _Slot:
    index: int
    proc: subprocess.Popen | None = None
    started: float = 0.0
    quick_deaths: int = 0
    watcher: asyncio.Task | None = field(default=None, repr=False)


class Supervisor:
    """Starts `count` workers, keeps them running, serves the summed metrics; see the module docstring."""

    def __init__(self, settings, overrides: dict[str, object], count: int) -> None:  # type: ignore[no-untyped-def]
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.settings = settings
        self.overrides = overrides
        self.count = count
        self.slots = [_Slot(i) for i in range(count)]
        self.stopping = False
        self.metrics_dir = Path(tempfile.mkdtemp(prefix="netguard-waf-metrics-"))
        self.registry = CollectorRegistry()
        self._collector_registered = False
        self.alive = Gauge("netguard_waf_workers", "Worker processes running", registry=self.registry)
        self.restarts = Counter(
            "netguard_waf_worker_restarts_total", "Worker processes restarted after they died", registry=self.registry
        )
        # counted here, once per SIGHUP (the workers do not count theirs): the same series as one process
        self.reloads = Counter(
            "netguard_waf_config_reloads_total", "Config reloads by result", ["result"], registry=self.registry
        )
        self._stop = asyncio.Event()

    # workers --------------------------------------------------------------------------------------
    def _env(self, index: int) -> dict[str, str]:
        env = dict(os.environ)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics_dir)
        env.pop("prometheus_multiproc_dir", None)
        spec = WorkerSpec(self.settings.config_file, self.overrides, os.getpid(), index)
        env[WORKER_ENV] = spec.to_json()
        # the worker imports waf the way this process did (a source checkout as well as an install)
        paths = [p for p in sys.path if p and Path(p).is_dir()]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        return env

    def _spawn(self, slot: _Slot) -> None:
        slot.proc = subprocess.Popen([sys.executable, "-m", "waf._worker"], env=self._env(slot.index))
        slot.started = time.monotonic()
        slot.watcher = asyncio.get_running_loop().create_task(self._watch(slot, slot.proc))
        self.alive.set(sum(1 for s in self.slots if s.proc is not None and s.proc.poll() is None))

    async def _watch(self, slot: _Slot, proc: subprocess.Popen) -> None:
        """Wait for the worker to exit (without blocking the loop); restart it unless stopping."""
        while proc.poll() is None:
            await asyncio.sleep(0.1)
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(proc.pid, str(self.metrics_dir))
        self.alive.set(sum(1 for s in self.slots if s.proc is not None and s.proc.poll() is None))
        if self.stopping:
            return
        lived = time.monotonic() - slot.started
        slot.quick_deaths = slot.quick_deaths + 1 if lived < 10 else 0
        delay = min(10.0, 0.25 * 2 ** slot.quick_deaths) if slot.quick_deaths else 0.1
        log.warning("worker %d (pid %d) exited with status %s after %.1fs; restarting in %.1fs",
                    slot.index, proc.pid, proc.returncode, lived, delay)  # fmt: skip
        await asyncio.sleep(delay)
        if not self.stopping:
            self.restarts.inc()
            self._spawn(slot)

    def pids(self) -> list[int]:
        return [s.proc.pid for s in self.slots if s.proc is not None and s.proc.poll() is None]

    def _signal_all(self, sig: int) -> None:
        for s in self.slots:
            if s.proc is not None and s.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    s.proc.send_signal(sig)

    async def _stop_all(self) -> None:
        self.stopping = True
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while self.pids() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self._signal_all(signal.SIGKILL)
        for s in self.slots:
            if s.proc is not None:
                await asyncio.get_running_loop().run_in_executor(None, s.proc.wait)
            if s.watcher is not None:
                s.watcher.cancel()
        self.alive.set(0)

    # signals --------------------------------------------------------------------------------------
    async def _reload(self) -> None:
        """SIGHUP: check the config file here first (a broken file reaches no worker), then pass it on."""
        from waf._engine import Engine
        from waf.config import ConfigError, load_settings

        def check() -> None:
            Engine(load_settings(self.settings.config_file, **self.overrides).engine_config())

        try:
            await asyncio.get_running_loop().run_in_executor(None, check)
        except (ConfigError, ValueError) as exc:
            log.error("config reload failed, the workers keep the running config: %s", exc)
            self.reloads.labels("error").inc()
            return
        self.reloads.labels("ok").inc()
        self._signal_all(signal.SIGHUP)

    # metrics --------------------------------------------------------------------------------------
    def metrics_registry(self):  # type: ignore[no-untyped-def]
        """The parent's own metrics plus every worker's, summed."""
        if not self._collector_registered:
            from prometheus_client.multiprocess import MultiProcessCollector

            MultiProcessCollector(self.registry, path=str(self.metrics_dir))
            self._collector_registered = True
        return self.registry

    def healthy(self) -> bool:
        return bool(self.pids())

    # run ------------------------------------------------------------------------------------------
    async def serve(self) -> None:
        from waf.server import metrics_server

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self._reload()))
        server = metrics_server(self.metrics_registry(), self.healthy, self.settings) if self.settings.metrics_listen else None
        metrics_task = asyncio.create_task(server.serve()) if server is not None else None
        while server is not None and metrics_task is not None and not server.started:
            if metrics_task.done():  # it could not bind: no workers, the error goes up
                raise ValueError(f"metrics_listen: cannot serve on {self.settings.metrics_listen}")
            await asyncio.sleep(0.01)
        for slot in self.slots:
            self._spawn(slot)
        log.info("started %d workers", self.count, extra={"settings": {"workers": self.count, "pids": self.pids()}})
        try:
            await self._stop.wait()
        finally:
            await self._stop_all()
            if server is not None and metrics_task is not None:
                server.should_exit = True
                await asyncio.gather(metrics_task, return_exceptions=True)

    def run(self) -> int:
        """Blocking: hold the port, warm the rule cache, run the workers until SIGTERM."""
        from waf._engine import Engine
        from waf.config import parse_hostport

        host, port = parse_hostport(self.settings.listen, "listen")
        try:
            holder = reuseport_socket(host, port, listen=False)
        except OSError as exc:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            raise ValueError(f"listen: cannot bind {self.settings.listen}: {exc.strerror}") from exc
        if port == 0:  # every worker must bind the port the parent holds, not a random one of its own
            self.overrides = {**self.overrides, "listen": f"{host}:{holder.getsockname()[1]}"}
        try:
            Engine(self.settings.engine_config())  # compiles once into the cache the workers load from
            try:
                import uvloop

                uvloop.run(self.serve())
            except ImportError:  # pragma: no cover
                asyncio.run(self.serve())
        finally:
            holder.close()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return 0
