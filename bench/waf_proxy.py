# ruff: noqa: E501  (a bench script: long report lines read better unwrapped)
"""Proxy bench: requests/s and latency through the netguard sidecar vs nginx + ModSecurity + CRS 4.28.

Starts (all on 127.0.0.1, free ports): the upstream and the ModSecurity + CRS 4.28 peer in one nginx
(bench/waf_peer.py; CRS from ../shared/waf/crs-4.28.0), and the netguard sidecar (`netguard waf`, one
process per worker: `--workers 1,2,auto` by default — the single core, like for like with nginx's 2 workers, and
the default, a count met twice measured once) in front of
the same upstream; each sidecar's worker count is printed beside its figures. First a sanity check on each WAF: a small GET and the 16 KB JSON
POST must pass (200) and an SQL injection must be refused (403); if not, the bench stops with exit status 1
(figures of a WAF that passes attacks or refuses the workload mean nothing). Then wrk (Debian package
`wrk`) against the upstream directly, through the peer and through the sidecar, alternating rounds, for a
small GET and for a 16 KB JSON POST: requests/s, p50/p99 latency and the ratios. Each round starts the targets
in a rotated order, and each run waits until every server under test is idle: a WAF whose clients timed out
(the peer on the POST) goes on working through its queue, and must not take the next target's CPU. Finally the engine alone,
in process: µs per request on ../shared/waf/clean-browsing.jsonl.gz as recorded (compressed bodies passed
compressed: whatever decompression the engine does is in the time) and on the CRS regression stages.

    .venv/bin/python bench/waf_proxy.py [--duration 10] [--rounds 3] [--connections 32] [--threads 1]
        [--workers 1,2,auto] [--shared DIR] [--skip-engine] [--engine-only] [--engine-runs 5] [--profile N]

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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from waf_peer import CRS4, Peer, free_port, raw_status, wait_port  # noqa: E402

PEER_WORKERS = 2  # nginx's worker_processes in bench/waf_peer.py
from waf_placements import default_shared, shared_file  # noqa: E402


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


TIMEOUT_MS = 5000.0  # wrk --timeout


def wrk(url: str, duration: int, connections: int, threads: int, script: Path | None) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", f"{TIMEOUT_MS / 1000:.0f}s"]
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
    done = re.search(r"(\d+) requests in", out)
    timeouts = re.search(r"timeout (\d+)", out)
    n_done, n_timeout = int(done.group(1)) if done else 0, int(timeouts.group(1)) if timeouts else 0
    # wrk's percentiles count completed requests only: when 1% or more timed out, the true p99 is at least
    # the time-out, and a p99 of the few that completed would flatter the target.
    p50, p99 = lat.get("50", 0.0), lat.get("99", 0.0)
    if n_done == 0:  # nothing answered in the whole run: slower than the time-out, whatever wrk counted
        p50 = p99 = TIMEOUT_MS
    elif n_timeout and n_timeout >= 0.01 * (n_done + n_timeout):
        p99 = max(p99, TIMEOUT_MS)
        if n_timeout >= 0.5 * (n_done + n_timeout):
            p50 = max(p50, TIMEOUT_MS)
    return {"rps": rps, "p50": p50, "p99": p99, "done": n_done, "timeouts": n_timeout,
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "errors": errors.group(1).strip() if errors else ""}  # fmt: skip


def start_sidecar(tmp: Path, port: int, upstream_port: int, config: Path | None = None, workers: str = "auto") -> tuple[subprocess.Popen, int]:
    """`netguard waf --workers W` on `port`; returns the process and how many workers serve (read from its
    metrics: `auto` is whatever this machine's CPUs and quota give)."""
    cfg = config or tmp / "waf.yaml"
    if config is None:
        cfg.write_text("audit_log: null\nmode: block\n")
    mport = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "netguard", "waf", "--listen", f"127.0.0.1:{port}",
         "--upstream", f"http://127.0.0.1:{upstream_port}", "--metrics-listen", f"127.0.0.1:{mport}",
         "--config", str(cfg), "--workers", workers],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    try:
        wait_port(port, timeout=90)
        wait_port(mport, timeout=30)
        count = worker_count(mport)
        end = time.monotonic() + 90
        while count > 1 and listeners(port) < count and time.monotonic() < end:  # every worker listening
            time.sleep(0.1)
    except RuntimeError:
        stop(proc)
        raise
    return proc, count


def _cpu_ticks(root: int) -> int:
    """utime + stime of a process and its children (nginx's workers, the sidecar's workers)."""
    total = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(d.name) == root or int(f[1]) == root:
            total += int(f[11]) + int(f[12])
    return total


def settle(roots: list[int], timeout: float = 20.0) -> None:
    """Wait until the servers under test are idle (under 5% of a core over 0.5 s): a WAF that wrk left with
    a queue of requests (the peer, when its clients time out) must not steal the next target's CPU."""
    import os  # noqa: PLC0415

    tick = os.sysconf("SC_CLK_TCK")
    end = time.monotonic() + timeout
    before = sum(_cpu_ticks(r) for r in roots if r)
    while time.monotonic() < end:
        time.sleep(0.5)
        now = sum(_cpu_ticks(r) for r in roots if r)
        if (now - before) / tick < 0.025:
            return
        before = now


def worker_count(metrics_port: int) -> int:
    """`netguard_waf_workers` of a multi-worker sidecar's parent; a single process has no such gauge: 1."""
    import urllib.request  # noqa: PLC0415

    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    m = re.search(r"^netguard_waf_workers ([\d.]+)$", text, re.M)
    return int(float(m.group(1))) if m else 1


def listeners(port: int) -> int:
    """Listening sockets on 127.0.0.1:port (each SO_REUSEPORT worker has its own)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for r in rows if r.split()[3] == "0A" and r.split()[1] == f"0100007F:{port:04X}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sanity(targets: dict[str, int], body: bytes) -> list[str]:
    """Each WAF passes the two workloads and refuses an SQL injection; the direct upstream passes all.
    Returns what failed (empty: sane)."""
    failed = []
    for name, port in targets.items():
        ok_get = raw_status(port, "GET", "/products?page=2", {"User-Agent": "Mozilla/5.0", "Accept": "*/*"}, None)
        ok_post = raw_status(
            port, "POST", "/api/orders", {"User-Agent": "Mozilla/5.0", "Accept": "*/*", "Content-Type": "application/json"}, body
        )
        attack = raw_status(port, "GET", "/?q=1%27%20OR%201%3D1--", {"User-Agent": "Mozilla/5.0", "Accept": "*/*"}, None)
        want_attack = 200 if name == "direct" else 403
        print(f"check {name:<11} GET {ok_get}  POST 16KB {ok_post}  attack {attack} (want 200 200 {want_attack})")
        if (ok_get, ok_post, attack) != (200, 200, want_attack):
            failed.append(f"{name}: GET {ok_get}, POST {ok_post}, attack {attack}")
    return failed


def engine_times(shared: Path, runs: int = 5, profile: int = 0) -> None:
    """The engine alone, in process: per request on the real clean corpus (as recorded, compressed bodies
    included) and on the CRS stages. Each run is one pass over the corpus in its recorded order with a
    fresh engine, so a request meets the engine as a proxy's next request would (what earlier requests
    taught it is remembered, nothing of its own); per request the best of `runs` passes keeps the shared
    machine's noise out. Wall time and CPU time of the thread (what the engine itself spent)."""
    from waf_detection import load_clean, load_crs  # noqa: PLC0415

    from waf import Engine, EngineConfig, Request  # noqa: PLC0415

    def req(p) -> Request:  # type: ignore[no-untyped-def]
        headers = [(k, v) for k, v in p.headers if k.lower() != "content-length"]
        if p.body:
            headers.append(("Content-Length", str(len(p.body))))
        return Request.make(p.method, p.target, headers, p.body)

    clean = load_clean(shared_file(shared, "clean-browsing.jsonl.gz"))
    gz = [p for p in clean if any(k.lower() == "content-encoding" for k, _ in p.headers)]
    corpora = {
        "clean-browsing (all)": ([req(p) for p in clean], EngineConfig()),
        "clean-browsing, no value memory": ([req(p) for p in clean], EngineConfig(value_memory=0)),
        "clean-browsing, compressed bodies": ([req(p) for p in gz], EngineConfig()),
        "CRS PL1 block stages": ([req(p) for _, p in load_crs(shared_file(shared, "crs-regression.jsonl"), 1, False)], EngineConfig()),
    }
    from waf import _native  # noqa: PLC0415

    build = "compiled by mypyc (setup.py)" if _native.ACTIVE else "its Python sources (no native build, or a stale one)"
    print(f"\nengine alone (in process, one core; best of {runs} passes per request; wall and thread CPU time), running {build}:")
    for name, (reqs, config) in corpora.items():
        wall, cpu = best_of(lambda config=config: Engine(config), reqs, runs)
        for what, times in (("wall", wall), ("cpu", cpu)):
            t = sorted(times)

            def q(f: float, t: list[float] = t) -> float:
                return t[min(len(t) - 1, int(f * len(t)))]

            print(
                f"  {name:<34} {what:<4} {len(reqs):>6} requests  p50 {q(0.5):7.1f} µs  p99 {q(0.99):7.1f} µs  p99.9 {q(0.999):8.1f} µs  max {t[-1]:9.1f} µs",
                flush=True,
            )
        if profile and name == "clean-browsing (all)":
            slowest(Engine(config), reqs, cpu, profile)


def slowest(engine, reqs, cpu: list[float], top: int) -> None:  # type: ignore[no-untyped-def]
    """cProfile of the slowest 1% of requests (by CPU time): where the tail's time goes."""
    import cProfile  # noqa: PLC0415
    import pstats  # noqa: PLC0415

    order = sorted(range(len(reqs)), key=lambda i: cpu[i], reverse=True)[: max(1, len(reqs) // 100)]
    prof = cProfile.Profile()
    prof.enable()
    for i in order:
        engine.inspect(reqs[i])
    prof.disable()
    print(f"\nprofile of the slowest {len(order)} requests (by CPU time):")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(top)


def best_of(new_engine, reqs, n: int = 5) -> tuple[list[float], list[float]]:  # type: ignore[no-untyped-def]
    """Per request, the best wall and the best thread CPU time over n passes (a fresh engine each), in µs."""
    wall, cpu = [float("inf")] * len(reqs), [float("inf")] * len(reqs)
    for _ in range(n):
        engine = new_engine()
        for i, r in enumerate(reqs):
            c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
            engine.inspect(r)
            t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
            wall[i], cpu[i] = min(wall[i], (t1 - t0) / 1000.0), min(cpu[i], (c1 - c0) / 1000.0)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-engine", action="store_true", help="no in-process engine timings")
    ap.add_argument("--engine-only", action="store_true", help="only the in-process engine timings")
    ap.add_argument("--engine-runs", type=int, default=5, help="runs per request for the engine timings (the best counts)")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile the slowest 1%% of clean requests, top N functions")
    ap.add_argument("--workers", default=f"1,{PEER_WORKERS},auto", help="the sidecar's --workers, one sidecar each, comma-separated (default %(default)s: "
                    "the single core, like for like with nginx's workers, and the default; a count met twice runs once)")
    ap.add_argument("--sidecar-config", type=Path, help="the sidecar's config file (default: block mode, no audit log)")
    ap.add_argument("--shared", type=Path, default=default_shared(), help="the shared folder holding waf/ (default: %(default)s)")
    args = ap.parse_args(argv)
    shared_file(args.shared, "crs-4.28.0")
    if args.engine_only:
        engine_times(args.shared, args.engine_runs, args.profile)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="netguard-waf-bench-"))
    body = post_body()
    lua = tmp / "post.lua"
    (tmp / "body.json").write_bytes(body)
    lua.write_text(
        f'local f = io.open("{tmp / "body.json"}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    )
    results: dict[tuple[str, str], list[dict]] = {}
    sidecars: list[subprocess.Popen] = []
    with Peer((CRS4,), crs4_dir=args.shared / "waf" / "crs-4.28.0") as peer:
        targets = {"direct": peer.upstream_port, "modsec+crs": peer.peer_port}
        try:
            live: list[subprocess.Popen] = []
            for w in dict.fromkeys(args.workers.split(",")):
                port = free_port()
                proc, count = start_sidecar(tmp, port, peer.upstream_port, args.sidecar_config, w)
                sidecars.append(proc)
                name = f"netguard w{count}"
                if name in targets:  # `auto` came out as a count already measured
                    stop(proc)
                    continue
                targets[name] = port
                live.append(proc)
            print(f"targets: nginx + ModSecurity + CRS 4.28 with {PEER_WORKERS} nginx workers; "
                  + ", ".join(f"{t} = the sidecar with {t.split('w')[-1]} worker(s)" for t in targets if t.startswith("netguard")))
            if failed := sanity(targets, body):
                print("sanity check failed: " + "; ".join(failed), file=sys.stderr)
                return 1
            workloads = {"GET small": None, "POST 16KB JSON": lua}
            print(f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.rounds} alternating rounds")
            owners = {t: (peer.proc.pid if peer.proc is not None else 0) for t in ("direct", "modsec+crs")}
            owners |= {t: p.pid for t, p in zip((t for t in targets if t.startswith("netguard")), live, strict=True)}
            for rnd in range(args.rounds):
                for wname, script in workloads.items():
                    names = list(targets)
                    names = names[rnd % len(names):] + names[: rnd % len(names)]  # no target always follows the same one
                    for tname in names:
                        port = targets[tname]
                        settle([owners[t] for t in targets])  # what the last run left queued is done first
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
            for proc in sidecars:
                stop(proc)
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nmedian over rounds (a p99 of {TIMEOUT_MS:.0f} ms means 1% or more of the requests timed out):")
    print(f"{'workload':<16}{'target':<13}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    med = {}
    for (wname, tname), rs in results.items():
        m = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")}
        med[(wname, tname)] = m
        print(f"{wname:<16}{tname:<13}{m['rps']:>10.0f}{m['p50']:>9.2f}{m['p99']:>9.2f}")
    print(f"\nratios (netguard with N workers vs modsec + CRS 4.28 with {PEER_WORKERS} nginx workers):")
    for wname in ("GET small", "POST 16KB JSON"):
        for tname in (t for t in targets if t.startswith("netguard")):
            n, p, d = med[(wname, tname)], med[(wname, "modsec+crs")], med[(wname, "direct")]
            if min(n["rps"], p["rps"], d["rps"]) < 1:
                print(f"  {wname:<15} {tname:<12} a target served under 1 request/s (the machine is loaded?): no ratio")
                continue
            print(f"  {wname:<15} {tname:<12} req/s x{n['rps'] / p['rps']:.2f}   p99 {n['p99']:.2f} vs {p['p99']:.2f} ms"
                  f"   (netguard serves {100 * n['rps'] / d['rps']:.1f}% of direct, modsec+crs {100 * p['rps'] / d['rps']:.1f}%)")  # fmt: skip

    if not args.skip_engine:
        engine_times(args.shared, args.engine_runs, args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
