# ruff: noqa: E501  (a bench script: long report lines read better unwrapped)
"""Hyperscan vs Python `re` on netguard's own rule patterns.

Takes every pattern rule of the built-in set, compiles it once with Hyperscan (one database per view,
as the engine does) and once with `re` (IGNORECASE | DOTALL, one pattern at a time, as a naive engine
would), and times matching the decoded values of the clean corpus (tests/waf/data/clean_corpus.jsonl).
Then feeds both a few crafted values of growing size, to show how the time grows with the input.

    .venv/bin/python bench/waf_regex.py [--values 3000]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from waf import Engine, Request, builtin_rules  # noqa: E402
from waf._decode import deep_decode  # noqa: E402
from waf._targets import extract  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--values", type=int, default=3000)
    args = ap.parse_args(argv)

    rules = [r for r in builtin_rules() if r.pattern is not None and r.paranoia == 1]
    compiled = []
    skipped = 0
    for r in rules:
        try:
            compiled.append(re.compile(r.pattern, 0 if r.case_sensitive else re.IGNORECASE | re.DOTALL))
        except re.error:
            skipped += 1
    engine = Engine()
    values: list[str] = []
    for line in (ROOT / "tests" / "waf" / "data" / "clean_corpus.jsonl").open(encoding="utf-8"):
        d = json.loads(line)
        body = d.get("body")
        raw = None if body is None else body.encode(d.get("body_encoding", "utf-8"))
        for t in extract(Request.make(d["method"], d["uri"], d.get("headers", {}), raw)).targets:
            if t.kind in ("arg", "header", "cookie"):
                values.append(deep_decode(t.value))
        if len(values) >= args.values:
            break
    values = values[: args.values]
    print(f"{len(rules)} pattern rules ({skipped} not valid for `re`), {len(values)} decoded values from the clean corpus")

    t0 = time.perf_counter()
    for v in values:
        for p in compiled:
            p.search(v)
    t_re = time.perf_counter() - t0
    t0 = time.perf_counter()
    for v in values:
        engine.scan_value(v, "arg")
    t_hs = time.perf_counter() - t0
    print(f"  re, pattern by pattern : {1e6 * t_re / len(values):8.1f} µs per value")
    print(f"  hyperscan (engine path): {1e6 * t_hs / len(values):8.1f} µs per value (all views, decoding included)")

    print("\ncrafted values (time for one value, all rules):")
    crafted = {
        "digits": lambda n: "1" * n,
        "spaces then x": lambda n: " " * n + "x",
        "'(' repeated": lambda n: "(" * n,
        "a=a& repeated": lambda n: "a=a&" * (n // 4),
    }
    for name, make in crafted.items():
        for n in (1_000, 10_000, 50_000):
            v = make(n)
            t0 = time.perf_counter()
            for p in compiled:
                p.search(v)
            tr = time.perf_counter() - t0
            t0 = time.perf_counter()
            engine.scan_value(v, "arg")
            th = time.perf_counter() - t0
            print(f"  {name:<15} {n:>6} chars: re {1000 * tr:9.1f} ms   hyperscan {1000 * th:7.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
