# ruff: noqa: E501  (a bench script: long report lines read better unwrapped)
"""Same verdicts? Runs two versions of the WAF engine over the same requests and compares what they decide.

A speed change to the engine (decoding fast paths, caches, batching) must not change detection. This
script runs the engine of a reference tree (another checkout or an extracted commit: `git archive main |
tar -x -C /tmp/ref`) and the engine of this tree, each in its own process, over:

- the real clean corpus `../shared/waf/clean-browsing.jsonl.gz` (as recorded, compressed bodies included),
- every request of the CRS regression stages `../shared/waf/crs-regression.jsonl` (block and pass rows),
- a fixed sample of `../shared/waf/payloads-open.jsonl` placed by bench/waf_placements.py (every
  placement × encoding: percent, double percent, base64, `\\uXXXX`, entities),

at paranoia 1 and at paranoia 4 (every rule), and compares per request: blocked, score, refusal and the
set of rule ids (the decision), then each match's location, decode chain and matched text (the audit log).

    .venv/bin/python bench/waf_engine_check.py --against /tmp/ref [--shared DIR] [--placed 40000]
        [--save-ref ref.jsonl]   (then --against ref.jsonl reuses the reference's verdicts)

Exit status 0 when every decision matches, 1 otherwise (differences in the audit details only are listed
and counted, and fail with --strict).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
V = TypeVar("V")


def _requests(shared: Path, placed_n: int) -> list[tuple[str, object]]:
    """(key, Request) pairs, built with this tree's bench loaders (the same requests for both engines)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from waf_detection import load_clean  # noqa: PLC0415
    from waf_placements import generate, load_payloads, sample, shared_file  # noqa: PLC0415

    from waf import Request  # noqa: PLC0415

    def make(method: str, target: str, headers: list[tuple[str, str]], body: bytes | None) -> object:
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        if body:
            headers.append(("Content-Length", str(len(body))))
        return Request.make(method, target, headers, body)

    out: list[tuple[str, object]] = []
    for p in load_clean(shared_file(shared, "clean-browsing.jsonl.gz")):
        out.append((f"clean:{p.key}", make(p.method, p.target, list(p.headers), p.body)))
    with shared_file(shared, "crs-regression.jsonl").open(encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            d = json.loads(line)
            headers = list(d.get("headers", {}).items())
            body = d.get("body")
            raw = None if body is None else body.encode("utf-8", "surrogateescape")
            if raw is not None and not any(k.lower() == "content-type" for k, _ in headers):
                headers.append(("Content-Type", "application/x-www-form-urlencoded"))
            out.append((f"crs:{n}:{d['id']}", make(d["method"], d["uri"], headers, raw)))
    placed = sample(list(generate(load_payloads(shared_file(shared, "payloads-open.jsonl")))), placed_n)
    for p in placed:
        out.append((f"placed:{p.key}", make(p.method, p.target, list(p.headers), p.body)))
    return out


def dump(shared: Path, placed_n: int, out_path: Path) -> None:
    """Verdicts of the `waf` package first on sys.path (the tree in NETGUARD_CHECK_ROOT)."""
    from waf import Engine, EngineConfig  # noqa: PLC0415

    # no time budget: a pause of this loaded machine must not pass for a verdict (the budget is wall time)
    engines = {pl: Engine(EngineConfig(paranoia=pl, time_budget=3600.0)) for pl in (1, 4)}
    with out_path.open("w", encoding="utf-8") as fh:
        for key, req in _requests(shared, placed_n):
            for pl, engine in engines.items():
                v = engine.inspect(req)  # type: ignore[arg-type]
                rec = {
                    "key": f"{key}@pl{pl}",
                    "decision": [v.blocked, v.score, str(v.refusal), sorted(m.rule_id for m in v.matches)],
                    "detail": sorted([m.rule_id, m.location, list(m.decode_chain), m.matched] for m in v.matches),
                }
                fh.write(json.dumps(rec) + "\n")


def run_dump(script: Path, root: Path, shared: Path, placed_n: int, out_path: Path) -> None:
    """`script --dump out_path` in a process of its own, with the tree `root` first on sys.path."""
    env = {**os.environ, "NETGUARD_CHECK_ROOT": str(root)}
    cmd = [sys.executable, str(script), "--dump", str(out_path), "--shared", str(shared), "--placed", str(placed_n)]
    subprocess.run(cmd, env=env, check=True)


def tree_options(ap: argparse.ArgumentParser, placed: int, what: str) -> None:
    """The options of a check that compares two trees: the reference, the corpora, a saved dump."""
    sys.path.insert(0, str(ROOT / "bench"))
    from waf_placements import default_shared  # noqa: PLC0415

    ap.add_argument("--against", type=Path, help="the reference tree (holds waf/), or a reference dump saved by --save-ref")
    ap.add_argument("--save-ref", type=Path, help=f"keep the reference's {what} here (pass it as --against next time)")
    ap.add_argument("--shared", type=Path, default=default_shared(), help="the shared folder holding waf/ (default: %(default)s)")
    ap.add_argument("--placed", type=int, default=placed, help="placed attack requests sampled (0: all)")
    ap.add_argument("--dump", type=Path, help=argparse.SUPPRESS)


def reference_and_new(
    script: Path, args: argparse.Namespace, load: Callable[[Path], dict[str, V]]
) -> tuple[dict[str, V], dict[str, V]] | int:
    """The reference's dump (made in its tree, or saved before) and this tree's, each loaded by request
    key; else the exit status, after one line on stderr: 2 when --against is neither a tree nor a saved
    dump, 1 when the two dumps hold different requests."""
    if args.against is None or not ((args.against / "waf").is_dir() or args.against.is_file()):
        print(f"{args.against}: --against: neither a tree holding waf/ nor a saved dump", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix=f"{script.stem}-") as tmp:
        ref_path, new_path = Path(tmp) / "ref", Path(tmp) / "new"
        if args.against.is_file():
            ref_path = args.against
        else:
            run_dump(script, args.against.resolve(), args.shared, args.placed, ref_path)
            if args.save_ref:
                shutil.copyfile(ref_path, args.save_ref)
        run_dump(script, ROOT, args.shared, args.placed, new_path)
        ref, new = load(ref_path), load(new_path)
    if ref.keys() != new.keys():
        print(f"different request sets: {len(ref)} vs {len(new)}", file=sys.stderr)
        return 1
    return ref, new


def load(path: Path) -> dict[str, dict]:
    with path.open(encoding="utf-8") as fh:
        return {d["key"]: d for d in map(json.loads, fh)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tree_options(ap, 40000, "verdicts")
    ap.add_argument("--strict", action="store_true", help="fail on audit-detail differences too")
    args = ap.parse_args(argv)
    if args.dump:
        dump(args.shared, args.placed, args.dump)
        return 0
    both = reference_and_new(Path(__file__).resolve(), args, load)
    if isinstance(both, int):
        return both
    ref, new = both
    decisions = [k for k in ref if ref[k]["decision"] != new[k]["decision"]]
    details = [k for k in ref if k not in decisions and ref[k]["detail"] != new[k]["detail"]]
    for k in decisions[:20]:
        print(f"DECISION {k}: reference {ref[k]['decision']}  new {new[k]['decision']}")
    for k in details[:20]:
        print(f"detail   {k}:\n  reference {ref[k]['detail']}\n  new       {new[k]['detail']}")
    blocked = sum(d["decision"][0] for d in ref.values())
    print(f"{len(ref)} verdicts ({blocked} blocked by the reference): {len(decisions)} decisions differ, {len(details)} audit details differ")
    return 1 if decisions or (args.strict and details) else 0


if __name__ == "__main__":
    _root = os.environ.get("NETGUARD_CHECK_ROOT")
    if _root:
        sys.path.insert(0, _root)
    sys.exit(main())
