"""`netguard agent`: capture new connections on this node, write and/or ship them, export metrics.

Flows are reported when a connection starts (conntrack NEW, a SYN, a first UDP datagram): one native
record a connection, with `dst_pod_ip`/`dst_pod_port` when conntrack's reply tuple shows a DNAT.
With `--emit destroy` (conntrack only) a connection is reported when it ends instead, carrying its
packet and byte counters (both directions, from nf_conntrack_acct) and the time it started when its
NEW was seen. In the default mode, DESTROY counters go to the edge cache (with --inventory) and the
metrics (with --counters); without either, DESTROY events are not subscribed to.
Runs until SIGTERM/SIGINT (or --duration), then flushes the output and the shipping buffer.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from netguard.agent.metrics import Metrics
from netguard.agent.ship import Shipper, log
from netguard.agent.sink import EdgeBatcher, EdgeCache, Sink
from netguard.errors import InputError
from netguard.model import Flow

EPILOG = """examples (conntrack and sniff need root, or CAP_NET_ADMIN and CAP_NET_RAW):
  netguard agent --output flows.jsonl                                  # conntrack events -> JSON lines
  netguard agent --controller http://controller:8080 --token-file /var/run/secrets/netguard/token --metrics-port 9090
  netguard agent --source sniff --output - --inventory cluster.yaml --edges edges.json
  netguard agent --source pcap --pcap capture.pcap --output flows.jsonl
the controller API: POST {controller}/api/v1/flows, Authorization: Bearer TOKEN,
  body {"agent": NODE, "flows": [native records]}; 2xx = stored, 5xx/connection errors are retried."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="netguard agent", description="The node agent: capture, enrich, write or ship flows.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", choices=("conntrack", "sniff", "pcap"), default="conntrack",
                   help="conntrack netlink events (default), AF_PACKET sniffing, or a pcap file")
    p.add_argument("--pcap", metavar="FILE", help="the capture to read with --source pcap")
    p.add_argument("--output", "-o", metavar="FILE", help="write flows as JSON lines to FILE (- for stdout)")
    p.add_argument("--inventory", nargs="+", action="extend", metavar="PATH",
                   help="pod cache from Kubernetes YAML (kubectl get -o yaml, `netguard lab inventory`): edges")
    p.add_argument("--kube", action="store_true",
                   help="pod cache from the Kubernetes API (in-cluster, or --kubeconfig / ~/.kube/config), watched")
    p.add_argument("--kubeconfig", metavar="FILE", help="with --kube: the kubeconfig to use")
    p.add_argument("--refresh", type=float, default=600.0, metavar="S",
                   help="with --kube: list everything again every S seconds (default 600; changes arrive by watch)")
    p.add_argument("--edges", metavar="FILE", help="with --inventory or --kube: write the aggregated edges (JSON) at exit")
    p.add_argument("--max-edges", type=int, default=100_000, metavar="N", help="bound of the edge cache (LRU)")
    p.add_argument("--controller", metavar="URL", help="ship flows to the controller at URL")
    p.add_argument("--ship", choices=("edges", "flows"),
                   help="to the controller: the edges of each interval (default with --inventory or --kube), or one "
                        "record per connection (default without a pod cache); keep raw records for audit with --output")
    p.add_argument("--edge-interval", type=float, default=10.0, metavar="S",
                   help="with --ship edges: aggregate and ship every S seconds (default 10)")
    p.add_argument("--token-file", metavar="FILE", help="bearer token for the controller (first line; else $NETGUARD_TOKEN)")
    p.add_argument("--batch-size", type=int, default=1000, metavar="N", help="flows per POST (default 1000)")
    p.add_argument("--flush-interval", type=float, default=1.0, metavar="S", help="ship at least every S seconds")
    p.add_argument("--buffer-size", type=int, default=100_000, metavar="N",
                   help="flows held while the controller is away; beyond, the oldest are dropped and counted")
    p.add_argument("--shutdown-timeout", type=float, default=10.0, metavar="S", help="time to flush at exit")
    p.add_argument("--metrics-port", type=int, metavar="N", help="serve Prometheus metrics on port N")
    p.add_argument("--metrics-addr", default="0.0.0.0", metavar="ADDR", help="address of the metrics server")
    p.add_argument("--node", default=os.environ.get("NODE_NAME") or socket.gethostname(),
                   help="this node's name (default: $NODE_NAME or the host name)")
    p.add_argument("--emit", choices=("new", "destroy"), default="new",
                   help="conntrack: report a connection when it starts (default) or when it ends, with counters")
    p.add_argument("--counters", action="store_true",
                   help="conntrack: also follow DESTROY events for byte/packet metrics (implied by --emit destroy "
                        "and --inventory)")
    p.add_argument("--include-loopback", action="store_true", help="also report connections on 127.0.0.0/8 and ::1")
    p.add_argument("--duration", type=float, default=0.0, metavar="S", help="stop after S seconds (default: until SIGTERM)")
    return p


def _token(args: argparse.Namespace) -> str:
    if args.token_file:
        try:
            return Path(args.token_file).read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise InputError(f"cannot read a token: {exc}", source=args.token_file) from None
    return os.environ.get("NETGUARD_TOKEN", "")


def _loopback(ip: str) -> bool:
    return ipaddress.ip_address(ip).is_loopback


class Agent:
    def __init__(self, args: argparse.Namespace, sink: Sink, metrics: Metrics) -> None:
        self.args = args
        self.sink = sink
        self.metrics = metrics
        self.stop = threading.Event()
        self.node = args.node

    def _keep(self, src: str, dst: str) -> bool:
        if self.args.include_loopback or not (_loopback(src) or _loopback(dst)):
            return True
        self.metrics.ignored.inc()
        return False

    def run_conntrack(self) -> dict[str, Any]:
        from cachetools import LRUCache

        from netguard.agent.conntrack import PROTOCOLS, ConntrackSocket

        # DESTROY events carry the counters: subscribe when something uses them (halves the events otherwise).
        destroy_mode = self.args.emit == "destroy"
        wants_counters = destroy_mode or self.sink.edges is not None or self.sink.batcher is not None or self.args.counters
        ct = ConntrackSocket(new=True, destroy=wants_counters)
        acct = Path("/proc/sys/net/netfilter/nf_conntrack_acct")
        if acct.exists() and acct.read_text().strip() == "0":
            log("warning", message="net.netfilter.nf_conntrack_acct is 0: connections carry no byte/packet counters")
        started: LRUCache = LRUCache(200_000)  # type: ignore[type-arg]
        existing = self._existing_connections() if not destroy_mode else []
        log("started", source="conntrack", node=self.node, destroy_events=wants_counters, existing=len(existing))
        try:
            pending = existing
            while True:
                stopping = self.stop.is_set()  # after a stop, one more read drains what the kernel queued
                events, pending = pending + ct.read(), []
                for ev in events:
                    self.metrics.events.labels(ev.kind).inc()
                    o, r = ev.orig, ev.reply
                    proto = PROTOCOLS.get(o.proto)
                    if proto is None or not self._keep(o.src, o.dst):
                        continue
                    pod_ip, pod_port = "", 0
                    if r is not None and (r.src != o.dst or r.sport != o.dport):
                        pod_ip, pod_port = r.src, r.sport  # DNAT: the reply comes from the real backend
                    if ev.kind in ("new", "existing"):
                        if destroy_mode:
                            started[ev.id] = ev.time
                            continue
                        self.sink.emit(Flow(ev.time, o.src, o.sport, o.dst, o.dport, proto, node=self.node,
                                            dst_pod_ip=pod_ip, dst_pod_port=pod_port), "conntrack")
                    else:
                        flow = Flow(started.pop(ev.id, ev.time), o.src, o.sport, o.dst, o.dport, proto, ev.bytes, ev.packets,
                                    self.node, pod_ip, pod_port)
                        if destroy_mode:
                            self.sink.emit(flow, "conntrack")
                        self.sink.counters(flow)
                if ct.lost:
                    self.metrics.lost.inc(ct.lost)
                    log("events_lost", reports=ct.lost)
                    ct.lost = 0
                self.sink.tick()
                if stopping:
                    break
        finally:
            ct.close()
        return {}

    def _existing_connections(self) -> list:
        """Connections opened before the agent started (subscribed first, so none falls in between;
        one opened meanwhile may be reported twice, never lost)."""
        from netguard.agent.conntrack import dump_existing

        try:
            return dump_existing()
        except OSError as exc:
            log("warning", message=f"could not dump the conntrack table: {exc}")
            return []

    def run_sniff(self) -> dict[str, Any]:
        from netguard.agent.sniff import SniffSocket

        sniffer = SniffSocket()
        log("started", source="sniff", node=self.node)
        def emit(flows: list[Flow]) -> None:
            for flow in flows:
                if self._keep(flow.src_ip, flow.dst_ip):
                    self.sink.emit(replace(flow, bytes=0, packets=0, node=self.node), "sniff")

        try:
            while True:
                stopping = self.stop.is_set()  # after a stop, one more read drains the queue
                before = sniffer.packets
                emit(sniffer.read())
                self.metrics.events.labels("packet").inc(sniffer.packets - before)
                self.sink.tick()
                if stopping:
                    break
            emit(sniffer.flush())
        finally:
            sniffer.close()
        return {"packets": sniffer.packets}

    def run_pcap(self) -> dict[str, Any]:
        from netguard.flows import ReadStats, read_pcap

        path = Path(self.args.pcap)
        stats = ReadStats()
        log("started", source="pcap", node=self.node, file=str(path))
        for flow in read_pcap(path, stats):
            if self.stop.is_set():
                break
            if self._keep(flow.src_ip, flow.dst_ip):
                self.sink.emit(Flow(flow.time, flow.src_ip, flow.src_port, flow.dst_ip, flow.dst_port, flow.protocol,
                                    flow.bytes, flow.packets, self.node), "pcap")
        return {"packets": stats.records}


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.source in ("conntrack", "sniff") and os.geteuid() != 0:
        raise InputError(f"--source {args.source} needs root (or CAP_NET_ADMIN/CAP_NET_RAW)")
    if args.edges and not (args.inventory or args.kube):
        raise InputError("--edges needs --inventory or --kube (the pod cache edges are resolved against)")
    if args.inventory and args.kube:
        raise InputError("give --inventory or --kube, not both")
    if not (args.output or args.controller or args.edges):
        raise InputError("nowhere to put flows: give --output FILE, --controller URL and/or --inventory with --edges")
    pod_cached = bool(args.inventory or args.kube)
    ship = args.ship or ("edges" if pod_cached else "flows")
    if ship == "edges" and args.controller and not pod_cached:
        raise InputError("--ship edges needs a pod cache to name the edges with: --inventory or --kube")
    if args.source == "pcap":
        if not args.pcap:
            raise InputError("--source pcap needs --pcap FILE")
        if not Path(args.pcap).is_file():
            raise InputError("no such file", source=args.pcap)
    metrics = Metrics()
    inventory = None
    if args.inventory:
        from netguard.inventory import load_inventory

        inventory = load_inventory(args.inventory)
    pod_cache = None
    if args.kube:
        from netguard.agent.podcache import ApiPodCache

        pod_cache = ApiPodCache(args.kubeconfig, args.refresh, log, metrics=metrics)
        inventory = pod_cache.inventory
    shipping_edges = bool(args.controller) and ship == "edges"
    edges = None  # the bounded edge cache: for --edges, or the node's edges when they are not shipped per interval
    if inventory is not None and (args.edges or not shipping_edges):
        edges = EdgeCache(inventory, metrics, max_edges=args.max_edges)
    output: IO[str] | None = None
    if args.output == "-":
        output = sys.stdout
    elif args.output:
        try:
            output = open(args.output, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"cannot write: {exc.strerror}", source=args.output) from None
    shipper = None
    if args.controller:
        shipper = Shipper(args.controller, _token(args), args.node, metrics, batch_size=args.batch_size,
                          interval=args.flush_interval, buffer_size=args.buffer_size, kind=ship)
    batcher = None
    if shipper is not None and shipping_edges:
        assert inventory is not None  # a pod cache was checked above
        batcher = EdgeBatcher(inventory, shipper, interval=args.edge_interval)
    if args.metrics_port:
        metrics.serve(args.metrics_port, args.metrics_addr)
    log("settings", source=args.source, node=args.node, output=args.output, controller=args.controller,
        token="***" if shipper is not None and _token(args) else "", metrics_port=args.metrics_port, emit=args.emit,
        inventory=args.inventory, kube=args.kube, ship=ship if shipper is not None else "",
        edge_interval=args.edge_interval if batcher is not None else None)
    sink = Sink(metrics, output, edges, shipper, pod_cache=pod_cache, batcher=batcher)
    agent = Agent(args, sink, metrics)

    def on_signal(signum: int, _frame: Any) -> None:
        agent.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.duration:
        timer = threading.Timer(args.duration, agent.stop.set)
        timer.daemon = True
        timer.start()
    start = time.monotonic()
    try:
        extra = getattr(agent, f"run_{args.source}")()
    finally:
        summary = sink.close(args.shutdown_timeout)
        if edges is not None and args.edges:
            import json

            Path(args.edges).write_text(json.dumps(edges.records(), indent=1) + "\n")
            summary["edges"] = len(edges.enricher.agg.stats)
        if output is not None and output is not sys.stdout:
            output.close()
    log("stopped", seconds=round(time.monotonic() - start, 3), **summary, **extra)
    return 0
