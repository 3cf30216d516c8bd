#!/usr/bin/env bash
# The connectivity maps in the README: bookinfo from its recorded capture (tests/policygen/data), Bank of
# Anthos from a lab run (root: the calls its ConfigMaps imply, captured by the agent).
#   sudo docs/connectivity/make.sh [SHARED]      SHARED: the samples folder's parent (default ../shared)
set -euo pipefail
cd "$(dirname "$0")/../.."
NG=.venv/bin/netguard
OUT=docs/connectivity
SHARED=${1:-$(dirname "$PWD")/shared}
[ -d "$SHARED/samples" ] || SHARED=/work/shared
TMP=$(mktemp -d)
AGENT=""
cleanup() { [ -n "$AGENT" ] && kill "$AGENT" 2>/dev/null; wait 2>/dev/null; $NG lab down --name boa >/dev/null 2>&1 || true; rm -rf "$TMP"; }
trap cleanup EXIT

# bookinfo: its recorded capture, its generated policies
$NG policy generate --inventory tests/policygen/data/bookinfo-cluster.yaml --flows tests/policygen/data/bookinfo-flows.jsonl \
    -o "$TMP/bookinfo" -q
for fmt in txt svg; do
  $NG policy connectivity --inventory tests/policygen/data/bookinfo-cluster.yaml --policies "$TMP/bookinfo" \
      --format $fmt -o "$OUT/bookinfo.$fmt"
done

# Bank of Anthos: the lab, the calls its ConfigMaps imply (bank-of-anthos-calls.yaml) for 10 s captured by the agent (conntrack), generated policies
$NG lab up -f "$SHARED/samples/bank-of-anthos/kubernetes-manifests" --name boa
$NG lab inventory --name boa > "$TMP/boa.yaml"
$NG agent --source conntrack --inventory "$TMP/boa.yaml" --output "$TMP/flows.jsonl" --node lab-node &
AGENT=$!
sleep 2
$NG lab traffic --name boa --spec "$OUT/bank-of-anthos-calls.yaml" --duration 10 --rate 50 --timeout 0.5 || true
kill -TERM "$AGENT"; wait "$AGENT" || true; AGENT=""
$NG lab down --name boa
# only what the lab's pods started (the host's conntrack holds other connections too)
python3 -c "
import ipaddress, json, sys
net = ipaddress.ip_network('10.244.0.0/16')
for line in open(sys.argv[1]):
    try:
        if ipaddress.ip_address(json.loads(line)['src_ip']) in net: print(line, end='')
    except (ValueError, KeyError): pass
" "$TMP/flows.jsonl" > "$TMP/boa-flows.jsonl"
$NG policy generate --inventory "$TMP/boa.yaml" --flows "$TMP/boa-flows.jsonl" -o "$TMP/boa-policies" -q
for fmt in txt svg; do
  $NG policy connectivity --inventory "$SHARED/samples/bank-of-anthos/kubernetes-manifests" --policies "$TMP/boa-policies" \
      --format $fmt -o "$OUT/bank-of-anthos.$fmt"
done
wc -l "$OUT"/*.txt
