"""Run the sidecar: the proxy port and the metrics port on one uvloop event loop, SIGHUP reload."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
from collections.abc import Iterator

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

    def __init__(self, settings: Settings, overrides: dict[str, object] | None = None) -> None:
        self.settings = settings
        self.overrides = overrides or {}
        self.proxy = WafProxy(settings)
        self.server = uvicorn.Server(_uvicorn_config(self.proxy, settings.listen, settings, proxy=True))
        self.metrics_server: uvicorn.Server | None = None
        if settings.metrics_listen:
            app = MetricsApp(self.proxy.metrics)
            self.metrics_server = _QuietServer(
                _uvicorn_config(app, settings.metrics_listen, settings, proxy=False)
            )
        self.started = threading.Event()

    def reload(self) -> bool:
        """Re-read the config file (if any) and swap settings and engine; keep the old ones on error.
        Listening addresses are not changed by a reload."""
        try:
            new = load_settings(self.settings.config_file, **self.overrides)
            self.proxy.apply(new)
        except (ConfigError, ValueError) as exc:
            log.error("config reload failed, keeping the running config: %s", exc)
            self.proxy.metrics.reloads.labels("error").inc()
            return False
        self.settings = new
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
        main = asyncio.create_task(self.server.serve())
        while not self.server.started and not main.done():
            await asyncio.sleep(0.01)
        if self.metrics_server is not None:
            while not self.metrics_server.started and not tasks[0].done():
                await asyncio.sleep(0.01)
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


def run(settings: Settings, overrides: dict[str, object] | None = None) -> int:
    """Blocking entry point used by the CLI (uvloop when available)."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency through uvicorn[standard]
        runner = asyncio.run  # type: ignore[assignment]
    sidecar = Sidecar(settings, overrides)
    runner(sidecar.serve())
    return 0
