"""`netguard controller`: the ingest, review and apply service."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import sys
import time

from netguard.errors import InputError

EXAMPLES = """examples:
  netguard controller --listen 0.0.0.0:8080 --db /var/lib/netguard/netguard.db --token-file /etc/netguard/tokens
  netguard controller --inventory cluster.yaml --token-file tokens --mode shop=monitor
  netguard controller --db postgresql://netguard:secret@db:5432/netguard --token-file tokens --config controller.yaml

agents POST /api/v1/flows with `Authorization: Bearer <token>`; the API is described at /docs and /openapi.json."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="netguard controller",
        description="Ingest flows from node agents, learn the per-workload baseline, serve the graph and the generated "
                    "policies for review, raise lateral-movement alerts, apply approved policies.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--listen", metavar="HOST:PORT", help="address to serve on (default 127.0.0.1:8080)")
    p.add_argument("--db", metavar="PATH|URL", help="SQLite file (default netguard.db) or postgresql://user:pass@host/db")
    p.add_argument("--token-file", metavar="FILE", help="bearer tokens the agents and reviewers use, one a line")
    p.add_argument("--inventory", nargs="+", action="extend", default=[], metavar="PATH",
                   help="Kubernetes YAML/JSON files instead of watching a cluster")
    p.add_argument("--config", metavar="FILE", default="", help="YAML config file (modes per namespace, webhook, ...)")
    p.add_argument("--kube", choices=("auto", "in-cluster", "kubeconfig", "off"),
                   help="where the cluster is: auto (in-cluster, else kubeconfig; default), in-cluster, kubeconfig, off")
    p.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--default-mode", choices=("learn", "monitor", "protect"), help="mode of unlabeled namespaces (learn)")
    p.add_argument("--mode", action="append", default=[], metavar="NS=MODE",
                   help="a namespace's mode (repeatable); a mode set with PUT /api/v1/modes/NS, "
                        "and a netguard.io/mode label on the Namespace, win")
    p.add_argument("--webhook-url", metavar="URL", help="POST new alerts here in Alertmanager's v2 format")
    p.add_argument("--read-auth", action="store_true", default=None, help="the read endpoints need a token too")
    p.add_argument("--retention-hours", type=float, metavar="H",
                   help="keep the raw flow batches this long (default 168; 0: forever); the learned edges are kept")
    p.add_argument("--cors-origin", action="append", default=[], metavar="URL",
                   help="a browser origin allowed to call the API (repeatable), e.g. the netguard ui page")
    p.add_argument("--lease", metavar="NS/NAME",
                   help="several replicas on one PostgreSQL: elect the leader (alert dispatch, automatic apply, pruning) "
                        "with this coordination.k8s.io Lease")
    p.add_argument("--lease-duration", type=int, metavar="S", help="seconds before a dead leader is replaced (default 15)")
    p.add_argument("--identity", metavar="NAME", help="this replica's name in the Lease (default: $POD_NAME, else the host)")
    p.add_argument("--auto-apply", action="store_true", default=None,
                   help="the leader applies approved policies of protect-mode namespaces when their text changes")
    p.add_argument("--no-auth", action="store_true", default=None, help="development only: accept writes without a token")
    return p


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out)


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def build(settings):  # -> (Controller, FastAPI)
    from policygen.controller.app import create_app
    from policygen.controller.metrics import Metrics
    from policygen.controller.service import Controller, FileInventory

    store = _open_store(settings.db, settings.retention_hours)  # first: a bad --db is said before anything starts
    metrics = Metrics()
    from policygen.controller.lease import Always, LeaderElector, LeaseLock

    applier = None
    cluster = None
    if settings.inventory or settings.kube == "off":
        source = FileInventory(settings.inventory)
    else:
        from policygen.controller.kube import Applier, KubeInventory, load_cluster

        cluster = load_cluster(settings.kube, settings.kubeconfig)
        if cluster is None:
            logging.getLogger("netguard.controller").warning("no cluster configuration found: running without an inventory")
            source = FileInventory([])
        else:
            source = KubeInventory(cluster, metrics=metrics).start()
            applier = Applier(cluster, metrics=metrics)
    leadership: Always | LeaderElector = Always()
    if settings.lease:
        if cluster is None or cluster.configuration is None:
            raise InputError("lease: leader election needs the cluster (drop --inventory, and --kube off)")
        namespace, name = settings.lease.split("/")
        leadership = LeaderElector(LeaseLock(cluster.configuration, namespace, name), settings.identity,
                                   settings.lease_duration)
    controller = Controller(settings, store, source, metrics, applier=applier, leadership=leadership)
    return controller, create_app(controller)


def _open_store(url: str, retention_hours: float):  # -> Store
    """The store, or one line saying why it cannot be opened (a missing folder, a refused connection)."""
    import sqlite3

    from policygen.controller.store import open_store

    errors: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)
    try:
        import pg8000.exceptions

        errors += (pg8000.exceptions.Error,)
    except ImportError:  # pragma: no cover - pg8000 is a dependency
        pass
    try:
        return open_store(url, retention_hours)
    except errors as exc:
        shown = url.split("@", 1)[-1] if "://" in url else url  # never print a password
        raise InputError(f"--db: cannot open the database: {exc}", source=shown) from None


def main(argv: list[str]) -> int:
    from policygen.controller.settings import load_settings

    args = _parser().parse_args(argv)
    modes = {}
    for item in args.mode:
        ns, sep, mode = item.partition("=")
        if not sep or not ns:
            raise InputError(f"--mode {item!r}: expected NAMESPACE=MODE")
        modes[ns] = mode
    flags = {"listen": args.listen, "db": args.db, "token_file": args.token_file, "inventory": args.inventory,
             "kube": args.kube, "kubeconfig": args.kubeconfig, "default_mode": args.default_mode,
             "webhook_url": args.webhook_url, "read_auth": args.read_auth, "no_auth": args.no_auth,
             "retention_hours": args.retention_hours, "cors_origins": args.cors_origin, "lease": args.lease,
             "lease_duration": args.lease_duration, "identity": args.identity, "auto_apply": args.auto_apply}
    settings = load_settings(flags, args.config)
    if modes:
        settings.namespaces = {**settings.namespaces, **modes}
        settings.validate()
    _setup_logging(settings.log_level)
    log = logging.getLogger("netguard.controller")
    log.info("settings: %s", json.dumps(settings.masked(), sort_keys=True))

    import uvicorn

    controller, app = build(settings)
    # Every batch parses thousands of JSON objects (GC-tracked containers, no cycles); with the default
    # thresholds the collector runs through the baseline's objects every few batches, which was the
    # p99 of ingest. Collect less often, and leave the start-up objects out of it.
    gc.set_threshold(100_000, 50, 1000)
    gc.freeze()
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                    log_level=settings.log_level, timeout_graceful_shutdown=10)
    finally:
        controller.close()
    return 0
