# ruff: noqa: E501  (a bench script: long report lines read better unwrapped)
"""Same parsing? Runs two versions of request parsing (`waf._targets.extract` and the protocol checks)
over the same requests and compares everything they return.

A speed change to parsing must not change what the detectors see. This script runs the parser of a
reference tree (an extracted commit: `git archive main | tar -x -C /tmp/ref`) and of this tree, each in
its own process, over the requests of bench/waf_engine_check.py (the real clean corpus, the CRS
regression stages, placed payloads), and compares per request a digest of: every field of the Parsed
result (distinct values, first places, every value seen with its place, body kind, encodings, refusal),
the places of every value, and the (location, text) pairs of every check in CHECKS, in order.

    .venv/bin/python bench/waf_extract_check.py --against /tmp/ref [--shared DIR] [--placed 0]
        [--save-ref ref.tsv]   (then --against ref.tsv reuses the reference's digests)

Exit status 0 when every request parses the same, 1 otherwise (the first differing keys are listed).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def digest(req: object) -> str:
    """What the `waf` package first on sys.path makes of one request, hashed."""
    from waf._protocol import CHECKS  # noqa: PLC0415
    from waf._targets import extract  # noqa: PLC0415

    p = extract(req)  # type: ignore[arg-type]
    parts = [
        p.keys, p.firsts, str(p.body), p.encodings, str(p.refusal), p.seen_keys, p.seen_locs,
        [p.places(i) for i in range(len(p.keys))],
        [(name, fn(req)) for name, fn in CHECKS.items()],  # type: ignore[arg-type]
    ]
    return hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()


def dump(shared: Path, placed_n: int, out_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from waf_engine_check import _requests  # noqa: PLC0415

    with out_path.open("w", encoding="utf-8") as fh:
        for key, req in _requests(shared, placed_n):
            fh.write(f"{key}\t{digest(req)}\n")


def load(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8") as fh:
        return dict(line.rstrip("\n").rsplit("\t", 1) for line in fh)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT / "bench"))
    from waf_engine_check import reference_and_new, tree_options  # noqa: PLC0415

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tree_options(ap, 0, "digests")
    args = ap.parse_args(argv)
    if args.dump:
        dump(args.shared, args.placed, args.dump)
        return 0
    both = reference_and_new(Path(__file__).resolve(), args, load)
    if isinstance(both, int):
        return both
    ref, new = both
    differ = [k for k in ref if ref[k] != new[k]]
    for k in differ[:20]:
        print(f"DIFFERS {k}")
    print(f"{len(ref)} requests parsed: {len(differ)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    _root = os.environ.get("NETGUARD_CHECK_ROOT")
    if _root:
        sys.path.insert(0, _root)
    sys.exit(main())
