"""The opt-in switch and the per-pod sidecar settings, read from a pod's labels and annotations.

Every key netguard reads or writes on a pod is named here, once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

OPT_IN = "netguard.io/waf"  # label or annotation: "enabled" | "disabled"
STATUS = "netguard.io/waf-status"  # written by the injection: what it did (JSON)
NAMESPACE_OPT_IN = "netguard.io/waf-injection"  # namespace label: the webhook also sees annotated pods

ANNOTATION_PREFIX = "netguard.io/waf-"
MODE = ANNOTATION_PREFIX + "mode"  # block | detect
PARANOIA = ANNOTATION_PREFIX + "paranoia"  # 1..4
BODY_LIMIT = ANNOTATION_PREFIX + "body-limit"  # bytes, or 512Ki / 8Mi
PORT = ANNOTATION_PREFIX + "port"  # the app port to guard: a containerPort name or number
REDIRECT = ANNOTATION_PREFIX + "redirect"  # takeover | iptables
APP_PORT = ANNOTATION_PREFIX + "app-port"  # takeover: where the app moves
APP_PORT_ENV = ANNOTATION_PREFIX + "app-port-env"  # takeover: env var that tells the app its port
LISTEN_PORT = ANNOTATION_PREFIX + "listen-port"  # iptables: where the sidecar listens
PROBE_PORT = ANNOTATION_PREFIX + "probe-port"  # iptables: port redirected straight to the app, for probes
METRICS_PORT = ANNOTATION_PREFIX + "metrics-port"
NATIVE_SIDECAR = ANNOTATION_PREFIX + "native-sidecar"  # auto | always | never
IMAGE = ANNOTATION_PREFIX + "image"
CONFIG = ANNOTATION_PREFIX + "config"  # name of a ConfigMap with key waf.yaml
CPU_REQUEST = ANNOTATION_PREFIX + "cpu-request"
CPU_LIMIT = ANNOTATION_PREFIX + "cpu-limit"
MEMORY_REQUEST = ANNOTATION_PREFIX + "memory-request"
MEMORY_LIMIT = ANNOTATION_PREFIX + "memory-limit"

DEFAULT_IMAGE = "ghcr.io/netguard/netguard:0.1.0"


class NativeSidecar(StrEnum):
    """Whether the WAF runs as a native sidecar (an init container with restartPolicy Always)."""

    AUTO = "auto"  # when the API server's version has them (and, for a named port, resolves it: see below)
    ALWAYS = "always"
    NEVER = "never"


NATIVE_SIDECARS_SINCE = (1, 29)  # SidecarContainers on by default (beta)
# A Service's targetPort *name* resolves to a restartable init container's port only from here on
# (kubernetes/kubernetes#127958, fixed by #127976 and #128850): before, a named port taken by a native
# sidecar would leave the Service with no endpoint port.
NAMED_PORTS_OF_SIDECARS_SINCE = (1, 33)


def wants_native(choice: NativeSidecar, version: tuple[int, int] | None, named_port: bool) -> bool:
    """Whether to inject a native sidecar: `auto` only on an API server known to run them safely."""
    if choice is NativeSidecar.AUTO:
        if version is None:
            return False
        return version >= (NAMED_PORTS_OF_SIDECARS_SINCE if named_port else NATIVE_SIDECARS_SINCE)
    return choice is NativeSidecar.ALWAYS


class SettingsError(ValueError):
    """An annotation netguard cannot use; the pod is left alone and the message says which."""


@dataclass(frozen=True)
class Settings:
    """What one injected sidecar looks like. Defaults come from the webhook's or CLI's flags."""

    image: str = DEFAULT_IMAGE
    mode: str = "block"
    paranoia: int | None = None  # None: the WAF's own default (1) or its --config file's
    body_limit: int | None = None  # bytes; None: the WAF's own default (1 MiB) or its --config file's
    port: str | None = None  # name or number as text; None: find it (Service, port named http, only port)
    redirect: str = "takeover"
    app_port: int = 15081
    app_port_env: str | None = None  # None: the variable already set to the port's number, else PORT (named)
    listen_port: int = 15080
    probe_port: int = 15021
    metrics_port: int = 9102
    config_map: str | None = None
    cpu_request: str = "50m"
    cpu_limit: str | None = None
    memory_request: str = "64Mi"
    memory_limit: str = "256Mi"
    native_sidecar: NativeSidecar = NativeSidecar.NEVER
    cluster_version: tuple[int, int] | None = None  # the API server's (major, minor), when asked


DEFAULTS = Settings()


def opt_in(labels: dict[str, Any], annotations: dict[str, Any]) -> str | None:
    """'enabled', 'disabled', None (not asked) or the odd value; the annotation wins over the label."""
    value = annotations.get(OPT_IN, labels.get(OPT_IN))
    return None if value is None else str(value)


_QUANTITY = re.compile(r"^(\d+)(Ki|Mi|Gi|k|M|G)?$")
_FACTORS = {None: 1, "k": 1000, "M": 1000**2, "G": 1000**3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CPU = re.compile(r"^\d+(\.\d+)?m?$")
_MEMORY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _port_number(key: str, text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise SettingsError(f"annotation {key}={text!r}: want a port number 1-65535")
    return int(text)


def _quantity(key: str, text: str, pattern: re.Pattern[str]) -> str:
    if not pattern.match(text):
        raise SettingsError(f"annotation {key}={text!r}: not a Kubernetes quantity")
    return text


def read_settings(annotations: dict[str, Any], defaults: Settings) -> Settings:
    """The defaults overridden by the pod's `netguard.io/waf-*` annotations; SettingsError on a bad value."""
    a = {k: str(v).strip() for k, v in annotations.items() if k.startswith(ANNOTATION_PREFIX)}
    changes: dict[str, Any] = {}
    if MODE in a:
        if a[MODE] not in ("block", "detect"):
            raise SettingsError(f"annotation {MODE}={a[MODE]!r}: want block or detect")
        changes["mode"] = a[MODE]
    if PARANOIA in a:
        if a[PARANOIA] not in ("1", "2", "3", "4"):
            raise SettingsError(f"annotation {PARANOIA}={a[PARANOIA]!r}: want 1, 2, 3 or 4")
        changes["paranoia"] = int(a[PARANOIA])
    if BODY_LIMIT in a:
        match = _QUANTITY.match(a[BODY_LIMIT])
        if not match:
            raise SettingsError(f"annotation {BODY_LIMIT}={a[BODY_LIMIT]!r}: want bytes, e.g. 1048576 or 1Mi")
        changes["body_limit"] = int(match.group(1)) * _FACTORS[match.group(2)]
    if PORT in a:
        if not a[PORT]:
            raise SettingsError(f"annotation {PORT} is empty: want a containerPort name or number")
        changes["port"] = a[PORT]
    if REDIRECT in a:
        if a[REDIRECT] not in ("takeover", "iptables"):
            raise SettingsError(f"annotation {REDIRECT}={a[REDIRECT]!r}: want takeover or iptables")
        changes["redirect"] = a[REDIRECT]
    for key, field in (
        (APP_PORT, "app_port"),
        (LISTEN_PORT, "listen_port"),
        (PROBE_PORT, "probe_port"),
        (METRICS_PORT, "metrics_port"),
    ):
        if key in a:
            changes[field] = _port_number(key, a[key])
    if APP_PORT_ENV in a:
        if not _ENV_NAME.match(a[APP_PORT_ENV]):
            raise SettingsError(f"annotation {APP_PORT_ENV}={a[APP_PORT_ENV]!r}: not an env var name")
        changes["app_port_env"] = a[APP_PORT_ENV]
    if NATIVE_SIDECAR in a:
        if a[NATIVE_SIDECAR] not in tuple(NativeSidecar):
            raise SettingsError(f"annotation {NATIVE_SIDECAR}={a[NATIVE_SIDECAR]!r}: want auto, always or never")
        changes["native_sidecar"] = NativeSidecar(a[NATIVE_SIDECAR])
    if IMAGE in a:
        if not a[IMAGE] or any(c.isspace() for c in a[IMAGE]):
            raise SettingsError(f"annotation {IMAGE}={a[IMAGE]!r}: not an image reference")
        changes["image"] = a[IMAGE]
    if CONFIG in a:
        if not _DNS_LABEL.match(a[CONFIG]):
            raise SettingsError(f"annotation {CONFIG}={a[CONFIG]!r}: not a ConfigMap name")
        changes["config_map"] = a[CONFIG]
    for key, field, pattern in (
        (CPU_REQUEST, "cpu_request", _CPU),
        (CPU_LIMIT, "cpu_limit", _CPU),
        (MEMORY_REQUEST, "memory_request", _MEMORY),
        (MEMORY_LIMIT, "memory_limit", _MEMORY),
    ):
        if key in a:
            changes[field] = _quantity(key, a[key], pattern)
    return replace(defaults, **changes)
