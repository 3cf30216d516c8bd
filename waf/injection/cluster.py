"""The one thing the injection asks the Kubernetes API server: its version (GET /version).

`--native-sidecar auto` injects a native sidecar only where the API server runs them (>= 1.29, and >= 1.33
for a named port: see settings.wants_native). This module is the thin adapter: the kubernetes client loads
the configuration (in-cluster, else a kubeconfig) and makes the call; everything else is pure.
`VersionWatch` keeps the webhook's answer fresh: it asks at start, asks again until it gets an answer
when the API server could not be reached (a reconnect), and then every `refresh` seconds, so a control
plane upgraded under a running webhook is noticed.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any

log = logging.getLogger("netguard.webhook")


class ClusterError(Exception):
    """The API server could not be asked (no configuration, unreachable, an answer without a version)."""


def parse_version(major: Any, minor: Any) -> tuple[int, int]:
    """(1, 30) from the API server's `major: "1"`, `minor: "30+"` (providers append `+`)."""
    digits = [re.match(r"\d+", str(v or "")) for v in (major, minor)]
    if digits[0] is None or digits[1] is None:
        raise ClusterError(f"the API server's /version says major {major!r}, minor {minor!r}")
    return int(digits[0].group()), int(digits[1].group())


def server_version(kubeconfig: str | None = None, timeout: float = 5.0) -> tuple[int, int]:
    """The API server's (major, minor): in-cluster configuration first, else the kubeconfig."""
    from kubernetes import client, config  # the client only when asked: `netguard inject` stays light

    cfg = client.Configuration()
    try:
        if kubeconfig:
            config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        else:
            try:
                config.load_incluster_config(client_configuration=cfg)
            except config.ConfigException:
                config.load_kube_config(client_configuration=cfg)
    except (config.ConfigException, OSError, TypeError, ValueError) as exc:
        raise ClusterError(f"no cluster configuration ({exc})") from None
    try:
        with client.ApiClient(cfg) as api:  # the raw answer: only major and minor matter here
            raw: Any = client.VersionApi(api).get_code(_preload_content=False, _request_timeout=timeout)
            status, body = raw.status, json.loads(raw.data)
    except Exception as exc:  # urllib3, ApiException, not JSON: all mean "not known"
        first = (str(exc).strip().splitlines() or [""])[0]  # ApiException: status line, then headers and body
        raise ClusterError(f"GET {cfg.host}/version failed ({type(exc).__name__}: {first})") from None
    if status != 200 or not isinstance(body, dict):
        raise ClusterError(f"GET {cfg.host}/version answered HTTP {status}")
    return parse_version(body.get("major"), body.get("minor"))


class VersionWatch:
    """The API server's version for the webhook, None until known; asked again in the background."""

    def __init__(self, kubeconfig: str | None = None, *, retry: float = 10.0, refresh: float = 600.0) -> None:
        self.kubeconfig = kubeconfig
        self.retry = retry
        self.refresh = refresh
        self.version: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ask(self) -> bool:
        """Ask once; log what changed. True when the API server answered."""
        try:
            version = server_version(self.kubeconfig)
        except ClusterError as exc:
            log.warning(json.dumps({"event": "kubernetes-version-unknown", "error": str(exc)}))
            return False
        if version != self.version:
            log.info(json.dumps({"event": "kubernetes-version", "version": f"{version[0]}.{version[1]}"}))
        self.version = version
        return True

    def start(self) -> VersionWatch:
        """Ask now (at start), then keep asking in a daemon thread."""
        answered = self.ask()
        self._thread = threading.Thread(target=self._run, args=(answered,), name="k8s-version", daemon=True)
        self._thread.start()
        return self

    def _run(self, answered: bool) -> None:
        while not self._stop.wait(self.refresh if answered else self.retry):
            answered = self.ask()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
