"""The netguard controller: ingest from node agents, the durable store, the inventory from the cluster,
modes per namespace (learn -> monitor -> protect), alerts, and the review and apply API."""
