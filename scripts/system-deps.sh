#!/usr/bin/env bash
# Install the Debian packages netguard's lab and browser tests use, when root and when missing.
# Without root this only reports what is missing; the tests that need those parts skip and say why
# (in CI as root, CI=true, they fail instead: see tests/tools.py).
set -euo pipefail
need=()
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v conntrack >/dev/null 2>&1 || need+=(conntrack)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v chromium >/dev/null 2>&1 || need+=(chromium)  # the UI's browser tests (driven by Playwright, never downloaded)
command -v dot >/dev/null 2>&1 || need+=(graphviz)  # SVG/PNG graph exports
command -v iptables >/dev/null 2>&1 || need+=(iptables)  # the WAF injection's redirect init container, tested in namespaces
# The controller's PostgreSQL tests start a server of their own; Debian keeps initdb off PATH, in
# /usr/lib/postgresql/<version>/bin, where the tests look (tests/tools.py).
command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
[[ ${#need[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
  echo "system-deps: not root; missing Debian packages: ${need[*]} (tests that need them will skip)" >&2
  exit 0
fi
echo "system-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
