# ruff: noqa: E501  (a bench script: long report lines read better unwrapped)
"""Detection bench: netguard and nginx + ModSecurity + OWASP CRS side by side, in one run.

Three parts (pick with --parts; each prints markdown tables ready for the README):

  clean       ../shared/waf/clean-browsing.jsonl.gz — 29,093 requests of real browsing — sent as recorded,
              as BlazeHTTP does: one connection per request, the request target as written, `Host` set to
              the WAF's address (or --host), `Content-Length` recomputed from the body. Every one must
              pass: prints the share blocked and every block by rule.
  crs         the paranoia-1 `block` stages of ../shared/waf/crs-regression.jsonl (CRS's own regression
              tests) per category. A body without a Content-Type is sent as a form
              (`application/x-www-form-urlencoded`), as CRS's runner go-ftw does (--bare-bodies: as is).
  placements  ../shared/waf/payloads-open.jsonl placed by bench/waf_placements.py (payload × 9 placements ×
              6 encodings): per class, per placement, per encoding, and placement × encoding; each figure
              over every line of the list and over the lines that are attacks by themselves (the list's
              headings, example documents, bare keywords, numbers, probe words and fragments, reviewed one
              by one in bench/payloads-not-attacks.jsonl, left out).

netguard runs as its real HTTP sidecar (`netguard waf`, block mode, started here) for `clean` and `crs`
(--netguard-via inprocess: the engine library instead), and in process for `placements` (350k requests;
--placements-via http sends them to the sidecar too). Rules behind netguard's blocks come from the
sidecar's audit log. The peers (bench/waf_peer.py: nginx + ModSecurity v3 with CRS 4.28 and Debian's CRS
3.3.4, paranoia 1, blocking, threshold 5) are always reached over HTTP; for `placements` they get a fixed
random sample (--peer-sample) and netguard's figures on that same sample are printed beside theirs.
Blocked means refused: a 4xx answer (the upstream answers 200 to everything); 5xx and connection errors are
counted apart.

    .venv/bin/python bench/waf_detection.py [--parts clean,crs,placements] [--peers crs4.28,crs3.3.4|none]
        [--clean-sample N] [--placement-sample N] [--peer-sample N] [--workers N] [--shared DIR]
        [--netguard-via http|inprocess] [--placements-via inprocess|http] [--misses FILE]

A quick run (about two minutes): --clean-sample 3000 --placement-sample 20000 --peer-sample 2000.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from waf_peer import CRS3, CRS4, PEER_LABELS, Peer, Reply, free_port, send_raw, wait_port  # noqa: E402
from waf_placements import (  # noqa: E402
    NOT_ATTACKS,
    Encoding,
    Placed,
    Placement,
    default_shared,
    generate,
    load_not_attacks,
    load_payloads,
    not_attack_reasons,
    sample,
    shared_file,
)

NETGUARD = "netguard"
PARTS = ("clean", "crs", "placements")


@dataclass(frozen=True, slots=True)
class Probe:
    """One request to send as written (any corpus): the unit every part runs through every engine."""

    key: str
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    keep_host: bool = False  # True: send the request's own Host (CRS stages), else the WAF's address


@dataclass(slots=True)
class Outcome:
    """What one engine did with one probe."""

    blocked: bool
    status: int
    rules: tuple[str, ...] = ()  # rule ids, or "refused: <reason>" when no rule but a budget or a parser said no


@dataclass(slots=True)
class Column:
    """One engine's outcomes over a list of probes, in the same order."""

    name: str
    outcomes: list[Outcome] = field(default_factory=list)

    def blocked(self, idx: Iterable[int]) -> tuple[int, int]:
        idx = list(idx)
        return sum(self.outcomes[i].blocked for i in idx), len(idx)


# --- the corpora -------------------------------------------------------------------------------------------


def load_clean(path: Path) -> list[Probe]:
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            body = base64.b64decode(d["body_b64"]) if d.get("body_b64") else None
            out.append(Probe(d["id"], d["method"], d["target"], tuple((k, v) for k, v in d["headers"]), body))
    return out


def load_crs(path: Path, paranoia: int, bare_bodies: bool) -> list[tuple[dict, Probe]]:
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            if d["expected"] != "block" or d["paranoia"] > paranoia:
                continue
            headers = list(d.get("headers", {}).items())
            body = d.get("body")
            raw = None if body is None else body.encode("utf-8", "surrogateescape")
            if raw is not None and not bare_bodies and not any(k.lower() == "content-type" for k, _ in headers):
                headers.append(("Content-Type", "application/x-www-form-urlencoded"))
            out.append((d, Probe(d["id"], d["method"], d["uri"], tuple(headers), raw, keep_host=True)))
    return out


def placed_probe(p: Placed) -> Probe:
    return Probe(p.key, p.method, p.target, p.headers, p.body)


# --- the engines ---------------------------------------------------------------------------------------------


def status_blocked(status: int) -> bool:
    return 400 <= status < 500


def over_http(port: int, probes: Sequence[Probe], workers: int, host: str | None,
              rules_of: Callable[[str], Iterable[int | str]], label: str) -> list[Outcome]:  # fmt: skip
    """Send every probe on its own connection (`workers` at a time); the rules behind each refusal from
    `rules_of(request id)`."""

    def one(p: Probe) -> Reply:
        try:
            return send_raw(
                port, p.method, p.target, list(p.headers), p.body, None if p.keep_host else host or f"127.0.0.1:{port}"
            )
        except OSError:
            return Reply(0)

    t0 = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        replies = list(pool.map(one, probes, chunksize=16))
    took = time.monotonic() - t0
    print(
        f"  {label}: {len(probes)} requests over HTTP in {took:.0f} s ({len(probes) / max(took, 1e-9):.0f}/s)",
        file=sys.stderr,
        flush=True,
    )
    return [
        Outcome(
            status_blocked(r.status),
            r.status,
            tuple(sorted(map(str, rules_of(r.request_id)))) if status_blocked(r.status) else (),
        )
        for r in replies
    ]


def in_process(engine: object, probes: Sequence[Probe], label: str) -> list[Outcome]:
    from waf import Request  # noqa: PLC0415

    t0 = time.monotonic()
    out = []
    for p in probes:
        headers = [(k, v) for k, v in p.headers if k.lower() != "content-length"]
        if p.body:
            headers.append(("Content-Length", str(len(p.body))))
        v = engine.inspect(Request.make(p.method, p.target, headers, p.body))  # type: ignore[attr-defined]
        out.append(
            Outcome(
                bool(v.blocked), int(getattr(v, "status", 403)) if v.blocked else 200, _verdict_causes(v) if v.blocked else ()
            )
        )
    took = time.monotonic() - t0
    print(
        f"  {label}: {len(probes)} requests in process in {took:.0f} s ({len(probes) / max(took, 1e-9):.0f}/s)",
        file=sys.stderr,
        flush=True,
    )
    return out


class Sidecar:
    """`netguard waf` in block mode in front of the peer's upstream, with an audit log to name the rules."""

    def __init__(self, upstream_port: int, paranoia: int) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="netguard-waf-detect-"))
        self.port, self.metrics = free_port(), free_port()
        self.audit = self.tmp / "audit.jsonl"
        (self.tmp / "waf.yaml").write_text(f"mode: block\nparanoia: {paranoia}\naudit_log: {self.audit}\n")
        self.upstream_port = upstream_port
        self.proc: subprocess.Popen | None = None
        self._pos = 0
        self._rules: dict[str, set[str]] = defaultdict(set)

    def __enter__(self) -> Sidecar:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "netguard", "waf", "--listen", f"127.0.0.1:{self.port}",
             "--upstream", f"http://127.0.0.1:{self.upstream_port}", "--metrics-listen", f"127.0.0.1:{self.metrics}",
             "--config", str(self.tmp / "waf.yaml")],
            stdout=subprocess.DEVNULL, stderr=(self.tmp / "stderr.log").open("wb"), cwd=ROOT,
        )  # fmt: skip
        try:
            wait_port(self.port, timeout=90)
        except RuntimeError:
            self.__exit__()
            raise SystemExit("netguard waf did not start: " + (self.tmp / "stderr.log").read_text()[-800:]) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def rules_of(self, request_id: str) -> set[str]:
        """Rules of one request from the audit log (any JSON line naming the request id; rule ids read
        from every `rule_id`/`rule` key in it, whatever the schema nests them in; a `refusal` without
        rules as "refused: <reason>")."""
        if not self.audit.exists():
            return set()
        with self.audit.open("rb") as fh:
            fh.seek(self._pos)
            data = fh.read()
        cut = data.rfind(b"\n") + 1
        self._pos += cut
        for line in data[:cut].splitlines():
            try:
                d = json.loads(line)
            except ValueError:
                continue
            rid = d.get("request_id") or d.get("id")
            if isinstance(rid, str):
                self._rules[rid].update(str(r) for r in _rule_ids(d))
                if reason := d.get("refusal") or d.get("reason"):  # waf/audit.py names it `reason`
                    self._rules[rid].add(f"refused: {reason}")
        return self._rules.get(request_id, set())


def _verdict_causes(v: object) -> tuple[str, ...]:
    causes = {str(m.rule_id) for m in getattr(v, "matches", ())}
    if refusal := getattr(v, "refusal", None):
        causes.add(f"refused: {refusal}")
    return tuple(sorted(causes))


def _rule_ids(obj: object) -> set[int]:
    found: set[int] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("rule_id", "rule") and isinstance(v, int | str) and str(v).isdigit():
                found.add(int(v))
            else:
                found |= _rule_ids(v)
    elif isinstance(obj, list):
        for v in obj:
            found |= _rule_ids(v)
    return found


# --- tables ---------------------------------------------------------------------------------------------------


def pct(hit: int, n: int) -> str:
    return f"{100.0 * hit / n:.1f}%" if n else "n/a"


def label(name: str) -> str:
    return PEER_LABELS.get(name, name)


def table(title: str, groups: dict[str, list[int]], cols: list[Column], first: str, total: str | None = "**all**") -> str:
    lines = [f"\n{title}\n" if title else "", f"| {first} | requests | " + " | ".join(label(c.name) for c in cols) + " |",
             "|---|---:|" + "---:|" * len(cols)]  # fmt: skip
    everything: list[int] = []
    for g, idx in groups.items():
        everything += idx
        lines.append(f"| {g} | {len(idx):,} | " + " | ".join(pct(*c.blocked(idx)) for c in cols) + " |")
    if total and len(groups) > 1:
        lines.append(
            f"| {total} | **{len(everything):,}** | " + " | ".join(f"**{pct(*c.blocked(everything))}**" for c in cols) + " |"
        )
    return "\n".join(lines)


def dual_table(title: str, groups: dict[str, list[int]], cols: list[Column], first: str, attack: set[int]) -> str:
    """Share blocked over every placed request of a group, and over those whose payload line is an
    attack by itself (the lines listed in bench/payloads-not-attacks.jsonl left out)."""
    head = " | ".join(f"{label(c.name)}: all lines | {label(c.name)}: attacks" for c in cols)
    lines = [f"\n{title}\n" if title else "", f"| {first} | requests | of them not attacks | {head} |",
             "|---|---:|---:|" + "---:|---:|" * len(cols)]  # fmt: skip

    def row(name: str, idx: list[int], bold: bool = False) -> str:
        att = [i for i in idx if i in attack]
        b = "**" if bold else ""
        cells = " | ".join(f"{b}{pct(*c.blocked(idx))}{b} | {b}{pct(*c.blocked(att))}{b}" for c in cols)
        return f"| {name} | {b}{len(idx):,}{b} | {len(idx) - len(att):,} | {cells} |"

    everything: list[int] = []
    for g, idx in groups.items():
        everything += idx
        lines.append(row(g, idx))
    if len(groups) > 1:
        lines.append(row("**all**", everything, bold=True))
    return "\n".join(lines)


def matrix(title: str, placed: Sequence[Placed], col: Column, keep: set[int] | None = None) -> str:
    encs = list(Encoding)
    cells: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, p in enumerate(placed):
        if keep is None or i in keep:
            cells[(p.placement, p.encoding)].append(i)
    lines = [
        f"\n{title}\n" if title else "",
        "| placement | " + " | ".join(str(e) for e in encs) + " |",
        "|---|" + "---:|" * len(encs),
    ]
    for pl in Placement:
        lines.append(f"| {pl} | " + " | ".join(pct(*col.blocked(cells[(pl, e)])) for e in encs) + " |")
    return "\n".join(lines)


def group_by(items: Sequence[object], key: Callable[[object], str], order: Iterable[str] | None = None) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        groups[key(it)].append(i)
    keys = [k for k in (order or sorted(groups)) if k in groups]
    return {k: groups[k] for k in keys}


# --- the parts ------------------------------------------------------------------------------------------------


@dataclass
class Runner:
    """Runs probes through netguard (sidecar or library) and the peers."""

    args: argparse.Namespace
    peer: Peer | None
    sidecar: Sidecar | None
    engine: object | None

    def netguard(self, probes: Sequence[Probe], via: str, what: str) -> Column:
        if via == "http" and self.sidecar is not None:
            outs = over_http(
                self.sidecar.port, probes, self.args.workers, self.args.host, self.sidecar.rules_of, f"netguard sidecar, {what}"
            )
        else:
            outs = in_process(self.engine, probes, f"netguard engine, {what}")
        return Column(NETGUARD, outs)

    def message(self, engine: str, rule: str) -> str:
        """What a rule says (netguard: its msg and category; the peers: the msg CRS logged)."""
        if engine == NETGUARD:
            for rl in getattr(self.engine, "rules", ()):
                if str(getattr(rl, "id", None)) == rule:
                    return f"{getattr(rl, 'category', '')}: {getattr(rl, 'msg', '')}".replace("|", "/")
            return ""
        return (self.peer.messages.get(int(rule), "") if self.peer and rule.isdigit() else "").replace("|", "/")

    def peers(self, probes: Sequence[Probe], what: str) -> list[Column]:
        if self.peer is None:
            return []
        return [Column(name, over_http(port, probes, self.args.workers, self.args.host, self.peer.rules_of, f"{label(name)}, {what}"))
                for name, port in self.peer.ports.items()]  # fmt: skip


def part_clean(r: Runner, shared: Path, misses: list[dict]) -> None:
    probes = load_clean(shared_file(shared, "clean-browsing.jsonl.gz"))
    n_all = len(probes)
    if r.args.clean_sample and r.args.clean_sample < n_all:
        probes = sample(probes, r.args.clean_sample)  # type: ignore[arg-type]
    cols = [r.netguard(probes, r.args.netguard_via, "clean corpus"), *r.peers(probes, "clean corpus")]
    via = "its HTTP sidecar" if r.args.netguard_via == "http" else "the engine in process"
    note = "" if len(probes) == n_all else f" (a fixed random sample of {len(probes):,} of {n_all:,})"
    host = r.args.host or "the WAF's address (127.0.0.1:port)"
    print(
        f"\n### Clean traffic: clean-browsing.jsonl.gz{note}\n\nSent as recorded, one connection per request, Host: {host}; netguard through {via}. Every request must pass.\n"
    )
    print("| engine | requests | blocked | share blocked | other errors |\n|---|---:|---:|---:|---:|")
    for c in cols:
        hit, n = c.blocked(range(len(probes)))
        errors = sum(1 for o in c.outcomes if o.status == 0 or o.status >= 500)
        print(f"| {label(c.name)} | {n:,} | {hit:,} | {pct(hit, n)} | {errors} |")
    for c in cols:
        by_rule: Counter[str] = Counter()
        statuses: Counter[int] = Counter()
        unnamed = 0
        for o in c.outcomes:
            if o.blocked:
                statuses[o.status] += 1
                by_rule.update(o.rules)
                unnamed += not o.rules
        if not statuses:
            continue
        print(
            f"\n{label(c.name)}: blocked requests by rule (a request counts once under each rule that matched it; statuses {', '.join(f'{s}×{n}' for s, n in statuses.most_common())})\n"
        )
        print("| rule | what it says | blocked requests |\n|---|---|---:|")
        for rule, n in by_rule.most_common(r.args.top_rules):
            print(f"| {rule} | {r.message(c.name, rule)} | {n:,} |")
        if len(by_rule) > r.args.top_rules:
            print(
                f"| ({len(by_rule) - r.args.top_rules} more rules) | | {sum(n for _, n in by_rule.most_common()[r.args.top_rules :]):,} |"
            )
        if unnamed:
            print(f"| (none named) | refused by the HTTP layer, or no rule in the log | {unnamed:,} |")
    for i, p in enumerate(probes):
        for c in cols:
            if c.outcomes[i].blocked:
                misses.append(
                    {
                        "part": "clean",
                        "engine": c.name,
                        "id": p.key,
                        "status": c.outcomes[i].status,
                        "rules": list(c.outcomes[i].rules),
                    }
                )


CRS_ATTACK = ("sqli", "xss", "lfi", "rfi", "rce", "php", "java", "protocol-attack")


def part_crs(r: Runner, shared: Path, misses: list[dict]) -> None:
    stages = load_crs(shared_file(shared, "crs-regression.jsonl"), r.args.paranoia, r.args.bare_bodies)
    probes = [p for _, p in stages]
    cols = [r.netguard(probes, r.args.netguard_via, "CRS stages"), *r.peers(probes, "CRS stages")]
    cats = sorted({d["category"] for d, _ in stages}, key=lambda c: (c not in CRS_ATTACK, c))
    groups = group_by([d for d, _ in stages], lambda d: d["category"], cats)  # type: ignore[index]
    how = (
        "as they are (no Content-Type added)"
        if r.args.bare_bodies
        else "as forms (`application/x-www-form-urlencoded`, as go-ftw does)"
    )
    print(
        f"\n### CRS regression tests: paranoia ≤ {r.args.paranoia} `block` stages\n\nBodies without a Content-Type sent {how}; each stage's own Host header."
    )
    print(table("", groups, cols, "category"))
    attack = [i for c in CRS_ATTACK for i in groups.get(c, [])]
    print("| attack categories | " + f"{len(attack):,} | " + " | ".join(pct(*c.blocked(attack)) for c in cols) + " |")
    for i, (d, _) in enumerate(stages):
        if not cols[0].outcomes[i].blocked:
            misses.append(
                {
                    "part": "crs",
                    "engine": NETGUARD,
                    "id": d["id"],
                    "category": d["category"],
                    "status": cols[0].outcomes[i].status,
                }
            )


def part_placements(r: Runner, shared: Path, misses: list[dict]) -> None:
    payloads = load_payloads(shared_file(shared, "payloads-open.jsonl"))
    reasons = not_attack_reasons(payloads, load_not_attacks())
    placed = list(generate(payloads))
    n_all = len(placed)
    placed = sample(placed, r.args.placement_sample)
    attack = {i for i, p in enumerate(placed) if p.index not in reasons}
    probes = [placed_probe(p) for p in placed]
    ng = r.netguard(probes, r.args.placements_via, "placements")
    cls_order = ["xss", "sqli", "xxe", "ssti"]
    note = "" if len(placed) == n_all else f" (a fixed random sample of {len(placed):,} of {n_all:,})"
    via = "the engine in process" if r.args.placements_via == "inprocess" else "its HTTP sidecar"
    by_cls = Counter(payloads[i].cls for i in reasons)
    print(f"\n### Placed payloads: payloads-open.jsonl × {len(Placement)} placements × {len(Encoding)} encodings{note}\n")
    print(
        f"netguard through {via}, on all {len(placed):,} placed requests. Two figures: over every line of the list, and over the "
        f"lines that are attacks by themselves — {len(reasons)} lines ({', '.join(f'{c} {n}' for c, n in sorted(by_cls.items()))}) "
        f"are list headings, example documents, bare SQL keywords, numbers, probe words, payload fragments or harmless markup, reviewed one by one "
        f"in bench/{NOT_ATTACKS.name}."
    )
    by_class = group_by(placed, lambda p: p.cls, cls_order)  # type: ignore[attr-defined]
    print(dual_table("Per class:", by_class, [ng], "class", attack))
    print(dual_table("Per placement:", group_by(placed, lambda p: str(p.placement), [str(x) for x in Placement]), [ng], "placement", attack))  # type: ignore[attr-defined]
    print(dual_table("Per encoding:", group_by(placed, lambda p: str(p.encoding), [str(x) for x in Encoding]), [ng], "encoding", attack))  # type: ignore[attr-defined]
    print(matrix("netguard, placement × encoding, every line (share blocked):", placed, ng))
    print(matrix("netguard, placement × encoding, attack lines (share blocked):", placed, ng, attack))
    if r.peer is not None:
        idx = sample(list(range(len(placed))), r.args.peer_sample, seed=2)
        sub = [placed[i] for i in idx]
        sub_attack = {j for j, i in enumerate(idx) if i in attack}
        ng_sub = Column(NETGUARD, [ng.outcomes[i] for i in idx])
        cols = [ng_sub, *r.peers([probes[i] for i in idx], "placements sample")]
        print(
            f"\nSide by side on a fixed random sample of {len(sub):,} placed requests (the peers over HTTP; the full set would take hours), netguard on the same sample:"
        )
        print(dual_table("Per class, on the sample:", group_by(sub, lambda p: p.cls, cls_order), cols, "class", sub_attack))  # type: ignore[attr-defined]
        print(dual_table("Per placement, on the sample:", group_by(sub, lambda p: str(p.placement), [str(x) for x in Placement]), cols, "placement", sub_attack))  # type: ignore[attr-defined]
        print(dual_table("Per encoding, on the sample:", group_by(sub, lambda p: str(p.encoding), [str(x) for x in Encoding]), cols, "encoding", sub_attack))  # type: ignore[attr-defined]
        for c in cols[1:2]:
            print(
                matrix(
                    f"{label(c.name)}, placement × encoding on the sample (share blocked; about {len(sub) // 54} requests a cell):",
                    sub,
                    c,
                )
            )
    for i, p in enumerate(placed):
        if not ng.outcomes[i].blocked:
            extra = {"not_attack": str(reasons[p.index])} if p.index in reasons else {}
            misses.append({"part": "placements", "engine": NETGUARD, **p.to_json(), **extra})


# --- main -------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=default_shared(), help="the shared folder holding waf/ (default: %(default)s)")
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated, of: " + ", ".join(PARTS))
    ap.add_argument("--peers", default=f"{CRS4},{CRS3}", help=f"comma-separated, of: {CRS4}, {CRS3}; or none")
    ap.add_argument("--paranoia", type=int, default=1)
    ap.add_argument("--netguard-via", choices=("http", "inprocess"), default="http", help="for clean and crs")
    ap.add_argument("--placements-via", choices=("inprocess", "http"), default="inprocess")
    ap.add_argument("--clean-sample", type=int, default=0, help="a fixed random sample of the clean corpus (0: all)")
    ap.add_argument("--placement-sample", type=int, default=0, help="a fixed random sample of the placed requests (0: all)")
    ap.add_argument("--peer-sample", type=int, default=6000, help="placed requests sent to the peers (0: all)")
    ap.add_argument("--bare-bodies", action="store_true", help="send CRS bodies without a Content-Type as they are")
    ap.add_argument("--host", help="Host header for clean and placed requests (default: the WAF's address)")
    ap.add_argument("--workers", type=int, default=8, help="requests in flight over HTTP")
    ap.add_argument("--top-rules", type=int, default=500, help="rules listed per engine for the clean corpus (default: all)")
    ap.add_argument("--misses", type=Path, help="write netguard's misses and every clean-corpus block here (JSON lines)")
    args = ap.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    if bad := [p for p in parts if p not in PARTS]:
        ap.error(f"--parts: unknown {bad}; known: {', '.join(PARTS)}")
    peers = () if args.peers == "none" else tuple(p for p in args.peers.split(",") if p)
    if bad := [p for p in peers if p not in PEER_LABELS]:
        ap.error(f"--peers: unknown {bad}; known: {', '.join(PEER_LABELS)}")
    for name in {"clean": "clean-browsing.jsonl.gz", "crs": "crs-regression.jsonl", "placements": "payloads-open.jsonl"}.items():
        if name[0] in parts:
            shared_file(args.shared, name[1])

    from waf import Engine, EngineConfig  # noqa: PLC0415

    engine = Engine(EngineConfig(paranoia=args.paranoia))
    need_http = bool(peers) or args.netguard_via == "http" or args.placements_via == "http"
    head = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h %cs %s"], capture_output=True, text=True
    ).stdout.strip()
    print(f"netguard at {head}; paranoia {args.paranoia}; peers: {', '.join(label(p) for p in peers) or 'none'}")
    misses: list[dict] = []
    peer = Peer(peers, crs4_dir=args.shared / "waf" / "crs-4.28.0") if need_http else None
    try:
        if peer is not None:
            peer.__enter__()
        sidecar = Sidecar(peer.upstream_port, args.paranoia) if peer is not None and "inprocess" != args.netguard_via else None
        if sidecar is None and peer is not None and args.placements_via == "http":
            sidecar = Sidecar(peer.upstream_port, args.paranoia)
        if sidecar is not None:
            sidecar.__enter__()
        try:
            runner = Runner(args, peer if peers else None, sidecar, engine)
            for part in parts:
                {"clean": part_clean, "crs": part_crs, "placements": part_placements}[part](runner, args.shared, misses)
                sys.stdout.flush()
        finally:
            if sidecar is not None:
                sidecar.__exit__()
    finally:
        if peer is not None:
            peer.close()
    if args.misses:
        with args.misses.open("w", encoding="utf-8") as fh:
            for m in misses:
                fh.write(json.dumps(m, ensure_ascii=False) + "\n")
        print(f"\nwrote {len(misses)} lines (netguard misses, every clean-corpus block) to {args.misses}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
