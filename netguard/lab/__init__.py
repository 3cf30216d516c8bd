"""The lab: the pods of a manifest as network namespaces on this machine, with real traffic.

Each pod is a network namespace with a veth to the root namespace and a routed /32 (as Calico does),
so the root namespace forwards, and conntrack sees, every pod-to-pod connection. Services get
ClusterIPs with nftables DNAT (like kube-proxy), a kube-dns pod answers service names, one server
process listens on every container port, and `lab enforce` compiles NetworkPolicies into nftables.

Modules: `plan` (manifests -> pods, services, addresses: pure), `system` (ip/nft/sysctl/setns),
`state` (what a lab created, on disk), `dns` (the DNS wire format), `server` (the pods' servers),
`lab` (up/down), `traffic` (the traffic driver), `enforce` (NetworkPolicy -> nftables), `cli`.
"""
