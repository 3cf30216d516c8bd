"""`netguard waf`: run the WAF sidecar in front of an upstream, or check a config / a request."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

EXAMPLES = """examples:
  netguard waf --listen 0.0.0.0:8080 --upstream http://127.0.0.1:8000
  netguard waf --listen 127.0.0.1:8080 --upstream http://127.0.0.1:8000 --mode detect --config waf.yaml
  netguard waf --listen 0.0.0.0:8080 --upstream http://127.0.0.1:8000 --workers 2
  netguard waf --check-config waf.yaml
  netguard waf --inspect "GET /search?q=1' OR 1=1--"
  NETGUARD_WAF_CACHE=/var/cache/netguard-waf netguard waf --precompile   # at image build time

Reload the config without dropping connections: kill -HUP <pid> (with workers: the parent's pid).
Workers (default auto: the CPUs the container may use, i.e. its affinity capped by the cgroup CPU quota)
share the port with SO_REUSEPORT; the parent restarts a worker that dies and sums their metrics.
Metrics (Prometheus) and /healthz on --metrics-listen (default 127.0.0.1:9901); /healthz also on --listen.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="netguard waf",
        description="Inline WAF sidecar: an ASGI reverse proxy that blocks OWASP-Top-10-style requests.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--listen", metavar="HOST:PORT", help="address to serve on (default 127.0.0.1:8080)")
    p.add_argument(
        "--upstream", metavar="URL", help="the application behind the sidecar, e.g. http://127.0.0.1:8000"
    )
    p.add_argument("--mode", choices=("block", "detect"), help="block (403) or only log (default block)")
    p.add_argument("--config", metavar="FILE", help="YAML settings file (see waf/config.py)")
    p.add_argument("--paranoia", type=int, choices=(1, 2, 3, 4), help="paranoia level (default 1)")
    p.add_argument(
        "--body-limit",
        metavar="BYTES",
        help="bytes of a body inspected, the inspection window (default 1048576, or $NETGUARD_WAF_BODY_LIMIT, "
        "which the injected sidecar gets from its pod's annotation)",
    )
    p.add_argument(
        "--workers",
        metavar="N|auto",
        help="worker processes sharing the port (default auto: the CPUs this container may use, "
        "cgroup quota and affinity; 1 runs a single process)",
    )
    p.add_argument("--metrics-listen", metavar="HOST:PORT", help="Prometheus metrics and /healthz address")
    p.add_argument("--audit-log", metavar="PATH", help="JSON-lines audit log: a path or '-' for stdout")
    p.add_argument("--check-config", metavar="FILE", help="validate a config file (and its rules) and exit")
    p.add_argument(
        "--inspect",
        metavar="REQUEST",
        help="inspect one request line ('METHOD TARGET') and print the verdict",
    )
    p.add_argument(
        "--precompile",
        action="store_true",
        help="compile the rule databases (every paranoia level, or --paranoia's; with --config, its rules) "
        "into $NETGUARD_WAF_CACHE and exit: a sidecar started later with the same rules loads them instead "
        "of compiling them (the image does this at build time)",
    )
    return p


def _precompile(args: argparse.Namespace) -> int:
    """Fill the compiled-database cache and say where it went and how long it took."""
    import dataclasses
    import time

    from waf._engine import precompile
    from waf.config import ConfigError, load_settings

    try:
        base = load_settings(args.config).engine_config()
    except ConfigError as exc:
        print(f"netguard waf: {exc}", file=sys.stderr)
        return 2
    if os.environ.get("NETGUARD_WAF_CACHE") == "off":
        print("netguard waf: --precompile: NETGUARD_WAF_CACHE is off: set it to the folder to fill", file=sys.stderr)
        return 2
    levels = [args.paranoia] if args.paranoia else [1, 2, 3, 4]
    started = time.monotonic()
    try:
        files = precompile(dataclasses.replace(base, paranoia=level) for level in levels)
    except ValueError as exc:
        print(f"netguard waf: {exc}", file=sys.stderr)
        return 2
    if not files:
        where = os.environ.get("NETGUARD_WAF_CACHE", "~/.cache/netguard-waf")
        print(f"netguard waf: --precompile: nothing written: the cache ({where}) is off or not writable",
              file=sys.stderr)  # fmt: skip
        return 1
    folder = files[0].parent
    print(f"{len(files)} databases for paranoia {','.join(map(str, levels))} in {folder} "
          f"({time.monotonic() - started:.1f} s)")  # fmt: skip
    return 0


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from waf.config import ConfigError, load_settings

    if args.precompile:
        return _precompile(args)
    if args.check_config:
        try:
            s = load_settings(args.check_config)
            from waf._engine import Engine

            Engine(s.engine_config())
        except (ConfigError, ValueError) as exc:
            print(f"netguard waf: {exc}", file=sys.stderr)
            return 2
        print(f"{args.check_config}: ok")
        return 0
    if args.inspect:
        from waf import Request, inspect

        method, _, target = args.inspect.partition(" ")
        v = inspect(Request.make(method or "GET", target or "/"))
        print(json.dumps(v.to_dict(), indent=2))
        return 1 if v.blocked else 0

    body_limit = args.body_limit if args.body_limit is not None else os.environ.get("NETGUARD_WAF_BODY_LIMIT")
    if body_limit is not None and (not str(body_limit).isdigit() or int(body_limit) <= 0):
        where = "--body-limit" if args.body_limit is not None else "NETGUARD_WAF_BODY_LIMIT"
        print(f"netguard waf: {where}: must be a positive number of bytes, got {body_limit!r}", file=sys.stderr)
        return 2
    overrides: dict[str, object] = {
        "body_limit": int(body_limit) if body_limit is not None else None,
        "listen": args.listen,
        "upstream": args.upstream,
        "mode": args.mode,
        "paranoia": args.paranoia,
        "metrics_listen": args.metrics_listen,
        "audit_log": args.audit_log,
        "workers": args.workers,
    }
    try:
        settings = load_settings(args.config, **overrides)
    except ConfigError as exc:
        print(f"netguard waf: {exc}", file=sys.stderr)
        return 2
    if not args.upstream and not (args.config and "upstream" in _file_keys(args.config)):
        print("netguard waf: --upstream: required (or `upstream:` in the config file)", file=sys.stderr)
        return 2
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("netguard.waf").setLevel(logging.INFO)
    from waf.server import run

    logging.getLogger("netguard.waf").info("starting", extra={"settings": json.loads(settings.describe())})
    try:
        return run(settings, {k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        print(f"netguard waf: {exc}", file=sys.stderr)
        return 2


class JsonLogFormatter(logging.Formatter):
    """One JSON object per log line (the service's logs; the audit log is separate)."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if hasattr(record, "settings"):
            doc["settings"] = record.settings
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def _file_keys(path: str) -> set[str]:
    import yaml

    try:
        doc = yaml.safe_load(open(path, encoding="utf-8"))  # noqa: SIM115
    except (OSError, yaml.YAMLError):
        return set()
    return set(doc) if isinstance(doc, dict) else set()
