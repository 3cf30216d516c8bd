"""Prometheus metrics of the controller, in a registry of its own (one per app, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.flows = Counter("netguard_controller_flow_records", "Flow records accepted (durably stored)", ["agent"], registry=r)
        self.connections = Counter("netguard_controller_connections", "New connections among the accepted records", registry=r)
        self.batches = Counter("netguard_controller_batches", "Ingest batches by result", ["result"], registry=r)
        self.rejected = Counter("netguard_controller_rejected_batches", "Batches refused, by HTTP status", ["status"], registry=r)
        self.latency = Histogram("netguard_controller_ingest_seconds", "Time to validate, enrich and commit one batch",
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5), registry=r)
        self.edges = Gauge("netguard_controller_baseline_edges", "Edges in the learned baseline", registry=r)
        self.unresolved = Counter("netguard_controller_unresolved_flows", "Flows to Service ports the inventory does not know",
                                  registry=r)
        self.alerts = Counter("netguard_controller_alerts", "Alerts raised (one per edge, deduplicated)",
                              ["namespace", "reason"], registry=r)
        self.alert_flows = Counter("netguard_controller_alert_flows", "Connections on alerting edges", ["namespace"], registry=r)
        self.webhook_failures = Counter("netguard_controller_webhook_failures", "Alert webhook deliveries that failed",
                                        registry=r)
        self.watch_restarts = Counter("netguard_controller_watch_restarts", "Kubernetes watch restarts by kind and reason",
                                      ["kind", "reason"], registry=r)
        self.leader = Gauge("netguard_controller_leader", "1 while this replica is the leader (runs the singletons)",
                            registry=r)
        self.alerts_sent = Counter("netguard_controller_alerts_dispatched", "Alerts claimed and handed to the webhook sender",
                                   registry=r)
        self.applied = Counter("netguard_controller_policies_applied", "NetworkPolicies applied or removed", ["action"],
                               registry=r)
