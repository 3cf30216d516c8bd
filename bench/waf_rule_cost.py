# ruff: noqa: E501  (a bench script: long report lines read better unwrapped)
"""What each rule pattern costs Hyperscan on the long values of real browser traffic.

The engine scans a value longer than 2 KB alone, with every database of every view it reaches (see
`_Batch.seal`): beacons, stringified JSON, stack traces and XML of 2-35 KB are where the slowest
requests spend their Hyperscan time. This bench takes those values from the clean corpus
(`../shared/waf/clean-browsing.jsonl.gz`, read only here), builds each view's text of them as the
engine does (a plain value goes to the merged database, any other to each view's own), and times:

- each group database of the engine (thread CPU, best of `--reps`): ms and MB/s;
- each rule alone in a database with a pattern that never matches (so the scan runs to the end, as
  a group's does: a database whose every pattern matched stops early), minus the same database with
  another never-matching pattern in the rule's place:
  the rule's own cost, µs and MB/s. A rule with a frequent short literal (`"`, `sh`) or a bounded
  repeat beside a one-byte literal costs here;
- with `--marginal`, each rule's marginal cost in its group (the group with and without it: slow,
  one compile per rule, and noisy on a loaded machine).

A rule's cost alone can mislead: a rule anchored at the start by a space run (233102, 235101) or
with a rare literal costs there mostly for the kind of database it makes, not per byte, and little in
its group (239100 alone 7.8 -> 3.3 ms moved its group by a few %). And the same match ends are not
the same audit: under single-match Hyperscan reports the first match it finds, not always the
earliest end (a branch ended by a word boundary reports after its next byte): a rewrite of 220103
with the same ends changed the matched text of 10 attacks. Check each rewrite with
`bench/waf_engine_check.py` too.

`--patch FILE` (JSON: rule id -> pattern) times candidate patterns in place of the built-in ones.

    .venv/bin/python bench/waf_rule_cost.py [--shared DIR] [--top 25] [--reps 5] [--groups decoded,raw] [--marginal] [--patch FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import hyperscan

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from waf_detection import load_clean  # noqa: E402

from waf import Engine, EngineConfig, Request, builtin_rules  # noqa: E402
from waf import _engine as E  # noqa: E402
from waf._body import BodyBudget  # noqa: E402
from waf._targets import extract  # noqa: E402

SENTINEL = r"\x00\x01qzjx\x02"  # never in text: keeps a single-rule scan going to the end
BLANK = r"\x00\x03jxqz\x04"  # another: the baseline database holds two patterns too


def _shared(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    beside = ROOT.parent / "shared"
    return beside if beside.exists() else Path("/work/shared")


def long_values(shared: Path, min_len: int) -> list[tuple[str, str]]:
    """(kind, value) of every value longer than `min_len` in the clean corpus."""
    out = []
    for p in load_clean(shared / "waf" / "clean-browsing.jsonl.gz"):
        headers = [(k, v) for k, v in p.headers if k.lower() != "content-length"]
        if p.body:
            headers.append(("Content-Length", str(len(p.body))))
        for kind, value in extract(Request.make(p.method, p.target, headers, p.body), BodyBudget()).keys:
            if len(value) > min_len:
                out.append((kind, value))
    return out


def db_texts(engine: Engine, values: list[tuple[str, str]]) -> dict[str, tuple[E._ViewDB, list[bytes]]]:
    """Per database the engine scans long values with (a view's, or its narrow one for the value's kind,
    see `_narrow_dbs`; the merged one takes the plain values): its name and the bytes it scans."""
    narrow = getattr(engine, "_narrow", {})
    out: dict[str, tuple[E._ViewDB, list[bytes]]] = {}
    for kind, v in values:
        plain = E._plain(v) and engine._merged is not None
        decoded = v if plain else E.decode_chain(v)[0]
        views = [engine._merged, *engine._unmerged] if plain else engine._dbs
        for vdb in views:
            if vdb is None or kind not in vdb.kinds:
                continue
            text = v if vdb.view == "merged" else E._view_text(vdb.view, v, decoded)
            if not text:
                continue
            db = narrow.get((vdb, kind), vdb)
            name = vdb.view if db is vdb else f"{vdb.view}/{kind}"
            out.setdefault(name, (db, []))[1].append(E._encode(text))
    return out


def _timer(reps: int) -> Callable[[hyperscan.Database, list[bytes]], float]:
    """Per text the best of `reps` scans, summed: one scan of a text takes tens of µs, so most of them
    run without being preempted even on a loaded machine, where the best of whole passes over all
    texts still varies by 10-30% (rules alone now agree within about 1% from run to run, groups
    within a few %)."""

    def run(db: hyperscan.Database, texts: list[bytes]) -> float:
        scratch = hyperscan.Scratch(db)
        total = 0
        for x in texts:
            best = None
            for _ in range(reps):
                t0 = time.thread_time_ns()
                db.scan(x, match_event_handler=_ignore, scratch=scratch)
                spent = time.thread_time_ns() - t0
                best = spent if best is None else min(best, spent)
            total += best or 0
        return total / 1e3  # µs

    return run


def _ignore(*_args: object) -> None:
    return None


def _one(rule: E.Rule) -> hyperscan.Database:
    sentinel = dataclasses.replace(rule, id=0, pattern=SENTINEL)
    return E._compile([rule, sentinel])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", help="the shared inputs folder (default: ../shared beside the repository)")
    ap.add_argument(
        "--min-len", type=int, default=E._ALONE, help="values longer than this (default: the engine's scan-alone length)"
    )
    ap.add_argument("--top", type=int, default=25, help="rules listed, costliest first")
    ap.add_argument("--reps", type=int, default=5, help="scans of each text, the best one counted")
    ap.add_argument("--groups", help="only these databases, comma-separated (`decoded`, `raw/body`)")
    ap.add_argument("--marginal", action="store_true", help="also each rule's marginal cost in its group")
    ap.add_argument("--patch", help="JSON file: rule id -> pattern, timed instead of the built-in one")
    args = ap.parse_args(argv)

    rules = builtin_rules()
    if args.patch:
        patch = {int(k): v for k, v in json.loads(Path(args.patch).read_text()).items()}
        rules = [dataclasses.replace(r, pattern=patch[r.id]) if r.id in patch else r for r in rules]
    engine = Engine(EngineConfig(), rules=rules)
    values = long_values(_shared(args.shared), args.min_len)
    dbs = db_texts(engine, values)
    timed = _timer(args.reps)
    print(
        f"{len(values)} values longer than {args.min_len} characters, {sum(len(v) for _, v in values) / 1e6:.1f} MB; thread CPU, each text's best of {args.reps} scans"
    )

    total = 0.0
    rows = []
    only = set(args.groups.split(",")) if args.groups else None
    for name, (vdb, data) in sorted(dbs.items()):
        if only is not None and name not in only:
            continue
        size = sum(map(len, data))
        base = timed(_one(dataclasses.replace(vdb.rules[0], pattern=BLANK)), data)
        for gi, group in enumerate(vdb.groups):
            us = timed(group.db, data)
            total += us
            print(
                f"group {name:16s} {gi}: {len(group.rules):2d} rules {us / 1e3:8.2f} ms {size / us:7.0f} MB/s over {len(data)} texts, {size / 1e6:.1f} MB"
            )
            for r in group.rules:
                own = max(timed(_one(r), data) - base, 0.0)
                marginal = None
                if args.marginal:  # a group of one rule without it: the never-matching baseline
                    rest = [x for x in group.rules if x is not r]
                    marginal = us - (timed(E._compile(rest), data) if rest else base)
                rows.append((own, marginal, name, r, size))
    print(f"all groups: {total / 1e3:.2f} ms")
    rows.sort(key=lambda row: -row[0])
    print(
        f"\nrules alone, costliest first (minus a never-matching sentinel's scan){'; marginal: group with minus without' if args.marginal else ''}"
    )
    for own, marginal, view, r, size in rows[: args.top]:
        speed = f"{size / own:8.0f} MB/s" if own > 0 else "       - MB/s"
        extra = f"  marginal {marginal / 1e3:7.2f} ms" if marginal is not None else ""
        print(f"{own / 1e3:8.2f} ms {speed}  {view:16s} {r.id}{extra}  {r.pattern[:70]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
