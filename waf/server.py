"""Run the sidecar: the proxy port and the metrics port on one uvloop event loop, SIGHUP reload.

With more than one worker (`--workers`), waf/_workers.py's parent runs the metrics port and each worker
process runs a `Sidecar` without one on the shared port (`run_worker`)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator

import uvicorn

from waf.config import ConfigError, Settings, load_settings, parse_hostport
from waf.proxy import MetricsApp, WafProxy, header_timeout_protocol

log = logging.getLogger("netguard.waf")


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals alone (the main server owns them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _uvicorn_config(app: object, listen: str, settings: Settings, *, proxy: bool) -> uvicorn.Config:
    host, port = parse_hostport(listen, "listen")
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        loop="none",
        http=header_timeout_protocol(settings.client_header_timeout) if proxy else "httptools",
        lifespan="on" if proxy else "off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=max(1, int(settings.client_header_timeout)),
        timeout_graceful_shutdown=5,
        server_header=False,
        proxy_headers=False,
        date_header=False,
    )


class Sidecar:
    """The proxy server plus the metrics server; `reload()` re-reads the config file."""

    def __init__(
        self, settings: Settings, overrides: dict[str, object] | None = None, sock: socket.socket | None = None
    ) -> None:
        self.settings = settings
        self.overrides = overrides or {}
        self.sock = sock  # a worker's SO_REUSEPORT socket; None: bind settings.listen
        self.count_reloads = sock is None  # a worker's parent counts the reloads, once for all workers
        self.proxy = WafProxy(settings)
        self.server = uvicorn.Server(_uvicorn_config(self.proxy, settings.listen, settings, proxy=True))
        self.metrics_server: uvicorn.Server | None = None
        if settings.metrics_listen:
            self.metrics_server = metrics_server(self.proxy.metrics.registry, lambda: True, settings)
        self.started = threading.Event()

    def reload(self) -> bool:
        """Re-read the config file (if any) and swap settings and engine; keep the old ones on error.
        Listening addresses are not changed by a reload."""
        try:
            new = load_settings(self.settings.config_file, **self.overrides)
            self.proxy.apply(new)
        except (ConfigError, ValueError) as exc:
            log.error("config reload failed, keeping the running config: %s", exc)
            if self.count_reloads:
                self.proxy.metrics.reloads.labels("error").inc()
            return False
        self.settings = new
        if self.count_reloads:
            self.proxy.metrics.reloads.labels("ok").inc()
        log.info("config reloaded", extra={"settings": json.loads(new.describe())})
        return True

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():
            loop.add_signal_handler(signal.SIGHUP, self.reload)
        tasks = []
        if self.metrics_server is not None:
            tasks.append(asyncio.create_task(self.metrics_server.serve()))
        main = asyncio.create_task(self.server.serve(sockets=[self.sock] if self.sock is not None else None))
        while not self.server.started and not main.done():
            await asyncio.sleep(0.01)
        if self.metrics_server is not None:
            while not self.metrics_server.started and not tasks[0].done():
                await asyncio.sleep(0.01)
        # the engine's compiled rules and tables live as long as the process: out of the collector's sight,
        # the full collections that the request path's garbage triggers do not walk them again each time
        gc.collect()
        gc.freeze()
        self.started.set()
        try:
            await main
        finally:
            if self.metrics_server is not None:
                self.metrics_server.should_exit = True
                await asyncio.gather(*tasks, return_exceptions=True)
            await self.proxy.aclose()

    def stop(self) -> None:
        self.server.should_exit = True


def metrics_server(registry: object, healthy: Callable[[], bool], settings: Settings) -> uvicorn.Server:
    """The metrics port (/metrics of `registry`, /healthz) as a server that leaves signals alone."""
    assert settings.metrics_listen
    app = MetricsApp(registry, healthy)  # type: ignore[arg-type]
    return _QuietServer(_uvicorn_config(app, settings.metrics_listen, settings, proxy=False))


def _loop_runner() -> Callable[..., object]:
    try:
        import uvloop

        return uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency through uvicorn[standard]
        return asyncio.run


def run(settings: Settings, overrides: dict[str, object] | None = None) -> int:
    """Blocking entry point used by the CLI: one process, or a parent and its workers."""
    from waf._workers import Supervisor, resolve_workers

    count = resolve_workers(settings.workers)
    if count > 1:
        return Supervisor(settings, overrides or {}, count).run()
    _loop_runner()(Sidecar(settings, overrides).serve())
    return 0


def run_worker(settings: Settings, overrides: dict[str, object], sock: socket.socket) -> int:
    """One worker process of several (waf/_workers.py): the proxy on its shared socket, no metrics port."""
    _loop_runner()(Sidecar(settings, overrides, sock).serve())
    return 0
