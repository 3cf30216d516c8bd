"""The node agent: new connections from conntrack (netlink), AF_PACKET sniffing or a pcap file, written
as native flow records (JSON lines) and/or shipped to the controller, with Prometheus metrics.

Modules: `conntrack` (netlink events and their decoding), `sniff` (AF_PACKET + kernel BPF),
`sink` (JSONL, bounded edge aggregation), `ship` (batches to the controller, bounded buffer,
retries), `metrics`, `cli`.
"""
