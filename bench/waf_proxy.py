# ruff: noqa: E501  (a bench script: long report lines read better unwrapped)
"""Proxy bench: requests/s and latency through the netguard sidecar vs nginx + ModSecurity + CRS.

Starts (all on 127.0.0.1): the upstream and the ModSecurity/CRS peer in one nginx (bench/waf_peer.py),
and the netguard sidecar (`netguard waf`, one process, uvloop + httptools) in front of the same upstream.
Then runs wrk (Debian package `wrk`) against the upstream directly, through the peer and through the
sidecar, alternating rounds, for a small GET and for a 16 KB JSON POST, and prints requests/s, p50/p99
latency and the ratios. Finally the engine alone: µs per request on the corpora (reads
../shared/waf/crs-regression.jsonl and tests/waf/data/clean_corpus.jsonl).

    .venv/bin/python bench/waf_proxy.py [--duration 10] [--rounds 3] [--connections 32] [--threads 1]

The machine has 2 cores shared by wrk, nginx (2 workers), the upstream and the sidecar: absolute figures
are for this box; the ratios are the point.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from waf_peer import PEER_PORT, UPSTREAM_PORT, Peer, raw_status, wait_port  # noqa: E402

SIDECAR_PORT = 18102
SIDECAR_METRICS = 18103


def post_body() -> bytes:
    """A realistic 16 KB JSON document (an order export: names, addresses, notes, prices)."""
    items = []
    i = 0
    while True:
        items.append({
            "sku": f"SKU-{10000 + i}", "name": f"Cotton T-shirt, size {['S', 'M', 'L', 'XL'][i % 4]}",
            "qty": 1 + i % 3, "price": round(9.99 + i * 1.25, 2),
            "customer": {"name": ["Liam O'Connor", "Zoë Müller", "José García", "李小龍"][i % 4],
                         "address": ["221B Baker St.", "Königsallee 12", "Rue de l'Église 4"][i % 3]},
            "note": "Please deliver between 9am and 5pm; leave at the front door if nobody answers.",
        })  # fmt: skip
        i += 1
        data = json.dumps({"order_id": "A-2024-0001", "items": items}).encode()
        if len(data) >= 16 * 1024:
            return data


def wrk(url: str, duration: int, connections: int, threads: int, script: Path | None) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for q in ("50", "99"):
        m = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            v = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
            lat[q] = v
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:(.*)", out)
    return {"rps": rps, "p50": lat.get("50"), "p99": lat.get("99"),
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "errors": errors.group(1).strip() if errors else ""}  # fmt: skip


def start_sidecar(tmp: Path) -> subprocess.Popen:
    cfg = tmp / "waf.yaml"
    cfg.write_text("audit_log: null\nmode: block\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "netguard", "waf", "--listen", f"127.0.0.1:{SIDECAR_PORT}",
         "--upstream", f"http://127.0.0.1:{UPSTREAM_PORT}", "--metrics-listen", f"127.0.0.1:{SIDECAR_METRICS}",
         "--config", str(cfg)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    wait_port(SIDECAR_PORT, timeout=60)
    return proc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-engine", action="store_true")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="netguard-waf-bench-"))
    body = post_body()
    lua = tmp / "post.lua"
    (tmp / "body.json").write_bytes(body)
    lua.write_text(
        f'local f = io.open("{tmp / "body.json"}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    )
    targets = {"direct": UPSTREAM_PORT, "modsec+crs": PEER_PORT, "netguard": SIDECAR_PORT}
    results: dict[tuple[str, str], list[dict]] = {}
    with Peer() as _peer:
        sidecar = start_sidecar(tmp)
        try:
            # sanity: both WAFs pass the clean workloads and block an attack
            for name, port in targets.items():
                ok_get = raw_status(port, "GET", "/products?page=2", {}, None)
                ok_post = raw_status(port, "POST", "/api/orders", {"Content-Type": "application/json"}, body)
                attack = raw_status(port, "GET", "/?q=1%27%20OR%201%3D1--", {}, None)
                print(f"check {name:<11} GET {ok_get}  POST 16KB {ok_post}  attack {attack}")
            workloads = {"GET small": None, "POST 16KB JSON": lua}
            print(
                f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.rounds} alternating rounds"
            )
            for rnd in range(args.rounds):
                for wname, script in workloads.items():
                    for tname, port in targets.items():
                        url = (
                            f"http://127.0.0.1:{port}/products?page=2"
                            if script is None
                            else f"http://127.0.0.1:{port}/api/orders"
                        )
                        r = wrk(url, args.duration, args.connections, args.threads, script)
                        results.setdefault((wname, tname), []).append(r)
                        print(f"  round {rnd + 1} {wname:<15} {tname:<11} {r['rps']:>9.0f} req/s  p50 {r['p50']:.2f} ms"
                              f"  p99 {r['p99']:.2f} ms  non-2xx {r['non2xx']} {r['errors']}", flush=True)  # fmt: skip
        finally:
            sidecar.terminate()
            sidecar.wait(timeout=15)

    print("\nmedian over rounds:")
    print(f"{'workload':<16}{'target':<12}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    med = {}
    for (wname, tname), rs in results.items():
        m = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")}
        med[(wname, tname)] = m
        print(f"{wname:<16}{tname:<12}{m['rps']:>10.0f}{m['p50']:>9.2f}{m['p99']:>9.2f}")
    print("\nratios (netguard vs modsec+crs):")
    for wname in ("GET small", "POST 16KB JSON"):
        n, p, d = med[(wname, "netguard")], med[(wname, "modsec+crs")], med[(wname, "direct")]
        print(f"  {wname:<15} req/s x{n['rps'] / p['rps']:.2f}   p99 {n['p99']:.2f} vs {p['p99']:.2f} ms"
              f"   (netguard serves {100 * n['rps'] / d['rps']:.1f}% of direct, modsec+crs {100 * p['rps'] / d['rps']:.1f}%)")  # fmt: skip

    if not args.skip_engine:
        print("\nengine alone (in process, one core):")
        from waf_detection import (
            CLEAN_DEFAULT,
            CRS_DEFAULT,
            best_of,
            clean_request,
            crs_request,
            load_jsonl,
            quantiles,
        )

        from waf import Engine

        engine = Engine()
        corpora = {"clean corpus": [clean_request(d) for d in load_jsonl(CLEAN_DEFAULT)]}
        if CRS_DEFAULT.exists():
            corpora["CRS stages (all)"] = [crs_request(d) for d in load_jsonl(CRS_DEFAULT)]
        for name, reqs in corpora.items():
            print(
                f"  {name:<18} {len(reqs):>5} requests  {quantiles(best_of(engine, reqs))}  (best of 5 per request)"
            )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
