"""What parsing costs the slowest requests: `waf._targets.extract()` thread CPU on the real clean corpus.

The engine's p99 is set by the requests around rank 1% by CPU time; this bench finds them the way the
p99 harness does (each request inspected by a fresh engine, thread CPU, the least of `--engine-runs`),
then times `extract()` alone on the requests of `--ranks` (the least of `--runs`, a fresh Request each
time so no per-request cache is reused) and once over the whole corpus. Figures are CPU time, still
noisy on a busy machine: compare two trees back to back (`--tree`).

    .venv/bin/python bench/waf_extract_speed.py [--ranks 200:400] [--runs 5] [--tree DIR] [--shared DIR]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT / "bench"))
    from waf_placements import default_shared  # noqa: PLC0415

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=default_shared(), help="the shared folder holding waf/")
    ap.add_argument("--ranks", default="200:400", help="slowest-first ranks timed (default: %(default)s)")
    ap.add_argument("--runs", type=int, default=5, help="extract() runs per request, the least kept")
    ap.add_argument("--engine-runs", type=int, default=2, help="engine runs that rank the requests")
    ap.add_argument("--tree", type=Path, default=ROOT, help="the tree whose waf/ is timed (default: this one)")
    args = ap.parse_args(argv)
    lo, _, hi = args.ranks.partition(":")
    sys.path.insert(0, str(args.tree.resolve()))
    from waf import Engine, EngineConfig, Request  # noqa: PLC0415  (the tree's, imported first)
    from waf._targets import extract  # noqa: PLC0415

    corpus = args.shared / "waf" / "clean-browsing.jsonl.gz"
    if not corpus.is_file():
        print(f"{corpus}: not found (--shared)", file=sys.stderr)
        return 2
    from waf_detection import load_clean  # noqa: PLC0415  (after waf: it puts this repository first)

    def fresh(p: object) -> Request:
        headers = [(k, v) for k, v in p.headers if k.lower() != "content-length"]  # type: ignore[attr-defined]
        if p.body:  # type: ignore[attr-defined]
            headers.append(("Content-Length", str(len(p.body))))  # type: ignore[attr-defined]
        return Request.make(p.method, p.target, headers, p.body)  # type: ignore[attr-defined]

    probes = load_clean(corpus)
    cpu = [float("inf")] * len(probes)
    gc.collect()
    gc.freeze()
    for _ in range(args.engine_runs):
        engine = Engine(EngineConfig())
        for i, p in enumerate(probes):
            req = fresh(p)
            c0 = time.thread_time_ns()
            engine.inspect(req)
            cpu[i] = min(cpu[i], time.thread_time_ns() - c0)
    ranked = sorted(range(len(probes)), key=lambda i: -cpu[i])[int(lo or 0) : int(hi or len(probes))]
    best = {i: float("inf") for i in ranked}
    for _ in range(args.runs):
        for i in ranked:
            req = fresh(probes[i])
            c0 = time.thread_time_ns()
            extract(req)
            best[i] = min(best[i], time.thread_time_ns() - c0)
    whole = 0
    for p in probes:
        req = fresh(p)
        c0 = time.thread_time_ns()
        extract(req)
        whole += time.thread_time_ns() - c0
    us = sorted(t / 1000 for t in best.values())
    engine_us = statistics.mean(cpu[i] / 1000 for i in ranked)
    print(
        f"{args.tree}: ranks {args.ranks} ({len(us)} requests, engine {engine_us:.0f} µs each): extract mean "
        f"{statistics.mean(us):.0f} µs, median {statistics.median(us):.0f}, max {us[-1]:.0f}; whole corpus "
        f"({len(probes)} requests) {whole / 1e6:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
