"""The sidecar's settings: one dataclass, filled from a YAML file and the command line.

Example file (every key optional):

    mode: block                 # block | detect
    paranoia: 1                 # 1..4
    threshold: 5                # anomaly score that blocks
    inspection:
      body_limit: 1048576       # bytes of a body inspected (the inspection window)
      over_limit: block         # block (413) | pass (forward uninspected): a body over the window, and
                                # any other inspection budget (values, decompressed size, time)
    timeouts:                   # seconds
      connect: 5                # upstream connect
      upstream: 30              # upstream read / write / pool wait
      client_header: 10         # a client must send its request head within this
      client_body: 15           # ... and each body chunk within this
    upstream_connections: 100   # pooled connections to the upstream (per worker)
    workers: auto               # worker processes sharing the port: auto (the CPUs the container may
                                # use: affinity capped by the cgroup CPU quota) or a number
    audit_log: "-"              # JSON lines: a file path, "-" for stdout, or null
    metrics_listen: 127.0.0.1:9901
    exclusions:
      - path: /cms/             # prefix, or a glob with * ? [
        params: [content]       # parameter names (or locations like json:body.html)
        rule_ids: [220100]      # empty or absent: every rule
    disabled_rules: [210115]
    rules_files: [extra-rules.yaml]

Errors name the file and the key: `waf.yaml: inspection.body_limit: must be a positive integer`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from waf._engine import EngineConfig, Exclusion, OverBudget
from waf._rules import Rule, RuleError, load_file


class ConfigError(ValueError):
    """A setting that cannot be used; str() is one line naming the file and the key."""


@dataclass(frozen=True, slots=True)
class Settings:
    listen: str = "127.0.0.1:8080"
    upstream: str = "http://127.0.0.1:8000"
    mode: str = "block"
    paranoia: int = 1
    threshold: int = 5
    body_limit: int = 1024 * 1024
    over_limit: str = "block"
    connect_timeout: float = 5.0
    upstream_timeout: float = 30.0
    client_header_timeout: float = 10.0
    client_body_timeout: float = 15.0
    upstream_connections: int = 100
    workers: int | None = None  # None: auto (waf/_workers.py)
    audit_log: str | None = "-"
    metrics_listen: str | None = "127.0.0.1:9901"
    exclusions: tuple[Exclusion, ...] = ()
    disabled_rules: frozenset[int] = frozenset()
    rules_files: tuple[str, ...] = ()
    config_file: str | None = None
    extra_rules: tuple[Rule, ...] = field(default=(), compare=False, repr=False)

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            paranoia=self.paranoia,
            threshold=self.threshold,
            exclusions=self.exclusions,
            disabled_rules=self.disabled_rules,
            extra_rules=self.extra_rules,
            over_budget=OverBudget(self.over_limit),
        )

    def describe(self) -> str:
        """One JSON line for the start-up log (no secrets are held here)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra_rules"}
        d["exclusions"] = [
            {"path": e.path, "params": sorted(e.params), "rule_ids": sorted(e.rule_ids)}
            for e in self.exclusions
        ]
        d["disabled_rules"] = sorted(self.disabled_rules)
        d["extra_rules"] = len(self.extra_rules)
        d["workers"] = "auto" if self.workers is None else self.workers
        return json.dumps(d, default=str)


def parse_hostport(value: str, what: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{what}: expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _num(src: str, key: str, value: object, *, integer: bool = False, minimum: float = 0.0) -> float:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or value <= minimum:  # type: ignore[operator]
        kind = "integer" if integer else "number"
        raise ConfigError(f"{src}: {key}: must be a positive {kind}, got {value!r}")
    return value  # type: ignore[return-value]


def parse_workers(src: str, value: object) -> int | None:
    """`auto` (None) or a positive number of worker processes."""
    if value is None or value == "auto":
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{src}: workers: must be auto or a positive integer, got {value!r}")
    return value


def _check_upstream(src: str, url: str) -> None:
    if (
        not isinstance(url, str)
        or not url.startswith(("http://", "https://"))
        or len(url.split("//", 1)[1]) == 0
    ):
        raise ConfigError(f"{src}: upstream: expected an http:// or https:// URL, got {url!r}")


_TOP = {
    "mode", "paranoia", "threshold", "inspection", "timeouts", "upstream_connections", "audit_log",
    "metrics_listen", "exclusions", "disabled_rules", "rules_files", "listen", "upstream", "workers",
}  # fmt: skip


def load_settings(path: str | None, **overrides: object) -> Settings:
    """Settings from a YAML file (if any), then command-line overrides (None means not given)."""
    values: dict[str, object] = {}
    src = path or "command line"
    if path:
        try:
            doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ConfigError(f"{path}: not valid YAML{where}") from exc
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: (top level): expected a mapping")
        unknown = sorted(set(doc) - _TOP)
        if unknown:
            raise ConfigError(f"{path}: {unknown[0]}: unknown key")
        values = _from_doc(path, doc)
        values["config_file"] = path
    for k, v in overrides.items():
        if v is not None:
            values[k] = v
    mode = values.get("mode", "block")
    if mode not in ("block", "detect"):
        raise ConfigError(f"{src}: mode: must be block or detect, got {mode!r}")
    if "upstream" in values:
        _check_upstream(src, values["upstream"])  # type: ignore[arg-type]
    if "listen" in values:
        parse_hostport(str(values["listen"]), f"{src}: listen")
    if values.get("metrics_listen"):
        parse_hostport(str(values["metrics_listen"]), f"{src}: metrics_listen")
    if "workers" in values:
        values["workers"] = parse_workers(src, values["workers"])
    paranoia = values.get("paranoia", 1)
    if paranoia not in (1, 2, 3, 4):
        raise ConfigError(f"{src}: paranoia: must be 1, 2, 3 or 4, got {paranoia!r}")
    return Settings(**values)  # type: ignore[arg-type]


def _from_doc(src: str, doc: dict) -> dict[str, object]:
    out: dict[str, object] = {}
    for key in ("mode", "listen", "upstream"):
        if key in doc:
            out[key] = doc[key]
    if "paranoia" in doc:
        out["paranoia"] = doc["paranoia"]
    if "threshold" in doc:
        out["threshold"] = int(_num(src, "threshold", doc["threshold"], integer=True))
    if "workers" in doc:
        out["workers"] = parse_workers(src, doc["workers"])
    if "upstream_connections" in doc:
        out["upstream_connections"] = int(
            _num(src, "upstream_connections", doc["upstream_connections"], integer=True)
        )
    insp = doc.get("inspection") or {}
    if not isinstance(insp, dict):
        raise ConfigError(f"{src}: inspection: expected a mapping")
    for k in insp:
        if k not in ("body_limit", "over_limit"):
            raise ConfigError(f"{src}: inspection.{k}: unknown key")
    if "body_limit" in insp:
        out["body_limit"] = int(_num(src, "inspection.body_limit", insp["body_limit"], integer=True))
    if "over_limit" in insp:
        if insp["over_limit"] not in ("block", "pass"):
            raise ConfigError(
                f"{src}: inspection.over_limit: must be block or pass, got {insp['over_limit']!r}"
            )
        out["over_limit"] = insp["over_limit"]
    tmo = doc.get("timeouts") or {}
    if not isinstance(tmo, dict):
        raise ConfigError(f"{src}: timeouts: expected a mapping")
    names = {"connect": "connect_timeout", "upstream": "upstream_timeout",
             "client_header": "client_header_timeout", "client_body": "client_body_timeout"}  # fmt: skip
    for k, v in tmo.items():
        if k not in names:
            raise ConfigError(f"{src}: timeouts.{k}: unknown key")
        out[names[k]] = float(_num(src, f"timeouts.{k}", v))
    if "audit_log" in doc:
        if doc["audit_log"] is not None and not isinstance(doc["audit_log"], str):
            raise ConfigError(f"{src}: audit_log: expected a path, '-' or null")
        out["audit_log"] = doc["audit_log"]
    if "metrics_listen" in doc:
        out["metrics_listen"] = doc["metrics_listen"]
    if "disabled_rules" in doc:
        ids = doc["disabled_rules"] or []
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ConfigError(f"{src}: disabled_rules: expected a list of rule ids")
        out["disabled_rules"] = frozenset(ids)
    excl = doc.get("exclusions") or []
    if not isinstance(excl, list):
        raise ConfigError(f"{src}: exclusions: expected a list")
    exclusions = []
    for i, e in enumerate(excl):
        key = f"exclusions[{i}]"
        if not isinstance(e, dict):
            raise ConfigError(f"{src}: {key}: expected a mapping")
        for k in e:
            if k not in ("path", "params", "rule_ids"):
                raise ConfigError(f"{src}: {key}.{k}: unknown key")
        path = e.get("path", "")
        params = e.get("params") or []
        ids = e.get("rule_ids") or []
        if not isinstance(path, str):
            raise ConfigError(f"{src}: {key}.path: expected a string")
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise ConfigError(f"{src}: {key}.params: expected a list of names")
        if not isinstance(ids, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in ids):
            raise ConfigError(f"{src}: {key}.rule_ids: expected a list of rule ids")
        if not (path or params or ids):
            raise ConfigError(f"{src}: {key}: needs at least one of path, params, rule_ids")
        exclusions.append(Exclusion(path=path, params=frozenset(params), rule_ids=frozenset(ids)))
    out["exclusions"] = tuple(exclusions)
    files = doc.get("rules_files") or []
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ConfigError(f"{src}: rules_files: expected a list of paths")
    extra: list[Rule] = []
    base = Path(src).parent
    for f in files:
        p = Path(f) if Path(f).is_absolute() else base / f
        try:
            extra.extend(load_file(p))
        except RuleError as exc:
            raise ConfigError(f"{src}: rules_files: {exc}") from exc
    out["rules_files"] = tuple(files)
    out["extra_rules"] = tuple(extra)
    return out
