"""The agent's Prometheus metrics, in a registry of its own (served on --metrics-port)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("netguard_agent_events", "Capture events by type (new, destroy, packet)", ["type"], registry=r)
        self.flows = Counter("netguard_agent_flows", "Flows (new connections) seen, by source", ["source"], registry=r)
        self.ignored = Counter("netguard_agent_ignored", "Connections not reported (loopback)", registry=r)
        self.lost = Counter("netguard_agent_lost_events", "Capture events the kernel dropped (netlink ENOBUFS)", registry=r)
        self.connection_bytes = Counter("netguard_agent_connection_bytes", "Bytes of finished connections (conntrack acct)",
                                        registry=r)
        self.connection_packets = Counter("netguard_agent_connection_packets", "Packets of finished connections", registry=r)
        self.shipped = Counter("netguard_agent_shipped_flows", "Flows the controller accepted", registry=r)
        self.batches = Counter("netguard_agent_ship_batches", "Batches sent, by result (ok, retry, rejected)", ["result"],
                               registry=r)
        self.dropped = Counter("netguard_agent_dropped_flows", "Flows dropped, by reason (buffer_full, rejected, shutdown)",
                               ["reason"], registry=r)
        self.buffered = Gauge("netguard_agent_buffered_flows", "Flows waiting for the controller", registry=r)
        self.edges = Gauge("netguard_agent_edges", "Edges held in the bounded edge cache", registry=r)
        self.edges_evicted = Counter("netguard_agent_edges_evicted", "Edges evicted from the edge cache", registry=r)
        self.watch_restarts = Counter("netguard_agent_watch_restarts", "--kube: watch restarts by kind and reason "
                                      "(closed, dropped, gone, relist, http-N)", ["kind", "reason"], registry=r)

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        start_http_server(port, addr=addr, registry=self.registry)
