"""The engine: request -> targets -> views (decoders) -> Hyperscan detectors -> anomaly score -> Verdict.

Shaped like Coraza/ModSecurity with the Core Rule Set: each matching rule adds its severity's score
(critical 5, error 4, warning 3, notice 2) once per request; the request is blocked when the total
reaches the threshold (5 by default, as in CRS). Only rules at or below the configured paranoia level
run. Exclusions drop matches by path prefix, parameter and rule id.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

import hyperscan

from waf._body import STATUS, BodyBudget, BodyKind, Refusal
from waf._decode import Layer, cmdline, compress_ws, decode_chain, normalize_path, remove_comments, try_base64
from waf._protocol import CHECKS
from waf._request import Request
from waf._rules import DETECTORS, Rule, builtin_rules
from waf._targets import Target, extract

MATCH_TEXT = 80
_MERGEABLE = frozenset({"raw", "decoded", "compact", "cmdline"})
_LURING_SITES = frozenset({"cross-site", "none"})  # a link on another site, or one opened from outside the browser
# Kinds of values worth looking inside when they are base64 of text (a whole cookie, parameter, header).
_BASE64_KINDS = frozenset({"arg", "arg_name", "cookie", "header", "path", "filename"})
# A value without any of these is unchanged by every decoder and by the compact/cmdline views.
_NOT_PLAIN = re.compile(
    r"[%&\\\"'^,+\x00-\x1f\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]|/\*| {2}|^ | $"
)


@dataclass(frozen=True, slots=True)
class Match:
    rule_id: int
    category: str
    location: str
    matched: str
    score: int
    paranoia: int
    msg: str = ""
    decode_chain: tuple[str, ...] = ()  # the decodings that exposed the match, outermost first

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "rule_id": self.rule_id,
            "category": self.category,
            "location": self.location,
            "matched": self.matched,
            "score": self.score,
            "paranoia": self.paranoia,
            "msg": self.msg,
        }
        if self.decode_chain:
            out["decode_chain"] = list(self.decode_chain)
        return out


class OverBudget(StrEnum):
    """What to do with a request whose inspection budget ran out: refuse it (its own status code) or,
    where the configuration says so, pass it uninspected. Either way the verdict says so."""

    BLOCK = "block"
    PASS = "pass"


@dataclass(frozen=True, slots=True)
class Verdict:
    """`blocked` by score, or by `refusal` (a budget or an undecodable body: never a silent pass).
    `uninspected` is set when a refusal was let through by configuration."""

    blocked: bool
    score: int
    threshold: int
    matches: tuple[Match, ...] = ()
    refusal: Refusal = Refusal.NONE
    uninspected: bool = False
    body: BodyKind = BodyKind.EMPTY
    encodings: tuple[str, ...] = ()

    @property
    def status(self) -> int:
        """The HTTP status of a block: 403 for an attack, the refusal's own code otherwise."""
        if self.refusal and self.blocked:
            return STATUS[self.refusal]
        return 403 if self.blocked else 200

    @property
    def categories(self) -> list[str]:
        seen: dict[str, None] = {}
        for m in self.matches:
            seen.setdefault(m.category, None)
        return list(seen)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "blocked": self.blocked,
            "score": self.score,
            "threshold": self.threshold,
            "categories": self.categories,
            "matches": [m.to_dict() for m in self.matches],
            "body": str(self.body),
        }
        if self.encodings:
            out["encodings"] = list(self.encodings)
        if self.refusal:
            out["refusal"] = str(self.refusal)
            out["uninspected"] = self.uninspected
        return out


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Drop matches of `rule_ids` (all rules when empty) on parameters `params` (all when empty)
    for request paths matching `path` (a prefix, or a glob when it has * ? [)."""

    path: str = ""
    rule_ids: frozenset[int] = frozenset()
    params: frozenset[str] = frozenset()

    def applies(self, path: str, rule_id: int, location: str) -> bool:
        if self.path:
            if any(c in self.path for c in "*?["):
                if not fnmatch.fnmatchcase(path, self.path):
                    return False
            elif not path.startswith(self.path):
                return False
        if self.rule_ids and rule_id not in self.rule_ids:
            return False
        if self.params:
            name = location.split("|", 1)[0]
            short = name.split(":", 1)[-1]
            if name not in self.params and short not in self.params:
                return False
        return True


def lured_navigation(request: Request) -> bool:
    """Whether the request may be a top-level navigation an attacker lured the user into (a link on
    another site carrying a session id: fixation). The browser sets these headers, not the attacker,
    whose victim's browser sends the request: Fetch Metadata when present (a navigation of the whole
    page, from another site or from outside the browser); without it (older clients, CRS's own tests),
    a Referer on another host or none, as CRS 943110/943120 read it. A WebSocket handshake, a page's
    own script (XHR, fetch, beacons) or an iframe is no such navigation."""
    if request.header("upgrade").strip().lower() == "websocket":
        return False
    mode = request.header("sec-fetch-mode").strip().lower()
    if mode:
        dest = request.header("sec-fetch-dest").strip().lower()
        site = request.header("sec-fetch-site").strip().lower()
        return mode == "navigate" and dest in ("", "document") and site in ("", *_LURING_SITES)
    referer = request.header("referer").strip()
    if not referer:
        return True
    try:
        return urlsplit(referer).hostname != urlsplit("//" + request.header("host").strip()).hostname
    except ValueError:  # a Referer or Host that is no URL authority
        return True


@dataclass(frozen=True, slots=True)
class EngineConfig:
    paranoia: int = 1
    threshold: int = 5
    exclusions: tuple[Exclusion, ...] = ()
    disabled_rules: frozenset[int] = frozenset()
    extra_rules: tuple[Rule, ...] = field(default=(), compare=False)
    body_budget: BodyBudget = BodyBudget()
    over_budget: OverBudget = OverBudget.BLOCK
    time_budget: float = 2.0  # seconds of engine time per request; linear parsing keeps real ones < 1 ms


def _view(view: str, value: str, cache: dict[str, str]) -> str:
    if view in cache:
        return cache[view]
    if view == "merged":  # pragma: no cover - set by the caller
        return value
    if view == "raw":
        out = value
    elif view == "decoded":
        out, chain = decode_chain(value)
        cache["chain"] = ",".join(chain)
    elif view == "compact":
        out = compress_ws(remove_comments(_view("decoded", value, cache)))
    elif view == "cmdline":
        out = cmdline(_view("decoded", value, cache))
    elif view == "path":
        out = normalize_path(_view("decoded", value, cache))
    else:  # pragma: no cover - views are validated when rules load
        raise ValueError(view)
    cache[view] = out
    return out


_COMPILED: dict[tuple[tuple[bytes, int], ...], hyperscan.Database] = {}
_COMPILE_LOCK = threading.Lock()


def _db_key(rules: list[Rule]) -> tuple[tuple[bytes, int], ...]:
    """What a compiled database depends on: each pattern and its flags, in order."""
    base = hyperscan.HS_FLAG_DOTALL | hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
    flags = [base | (0 if r.case_sensitive else hyperscan.HS_FLAG_CASELESS) for r in rules]
    exprs = [r.pattern.encode("utf-8") for r in rules]  # type: ignore[union-attr]
    return tuple(zip(exprs, flags, strict=True))


def _compile(rules: list[Rule]) -> hyperscan.Database:
    """A Hyperscan block-mode database of `rules` (pattern i has id i). Databases are immutable and
    shared: engines built for the same rules (a config reload, another paranoia level with the same
    rules) reuse the compiled one; each engine keeps its own scratch space."""
    key = _db_key(rules)
    exprs = [e for e, _ in key]
    flags = [f for _, f in key]
    with _COMPILE_LOCK:
        db = _COMPILED.get(key)
        if db is not None:
            return db
        db = _load_cached(key)
        if db is not None:
            _COMPILED[key] = db
            return db
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        try:
            db.compile(expressions=exprs, ids=list(range(len(rules))), elements=len(rules), flags=flags)
        except hyperscan.error as exc:
            for r, e, f in zip(rules, exprs, flags, strict=True):
                try:
                    hyperscan.Database().compile(expressions=[e], ids=[0], elements=1, flags=[f])
                except hyperscan.error as one:
                    raise ValueError(f"{r.source}: rule {r.id}: pattern: {one}") from one
            raise ValueError(f"hyperscan: {exc}") from exc
        _COMPILED[key] = db
        _store_cached(key, db)
        return db


def _cache_file(key: tuple[tuple[bytes, int], ...]) -> Path | None:
    """Where a compiled database is kept between runs ($NETGUARD_WAF_CACHE, else the user cache
    folder); `NETGUARD_WAF_CACHE=off` disables it."""
    root = os.environ.get("NETGUARD_WAF_CACHE")
    if root == "off":
        return None
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "netguard-waf")
    h = hashlib.sha256(repr((getattr(hyperscan, "__version__", ""), key)).encode())
    return Path(root) / f"hs-{h.hexdigest()[:32]}.db"


def _load_cached(key: tuple[tuple[bytes, int], ...]) -> hyperscan.Database | None:
    path = _cache_file(key)
    if path is None:
        return None
    try:
        return hyperscan.loadb(path.read_bytes(), hyperscan.HS_MODE_BLOCK)
    except (OSError, hyperscan.error, ValueError, TypeError):
        return None


def _store_cached(key: tuple[tuple[bytes, int], ...], db: hyperscan.Database) -> None:
    """Best effort: a read-only file system or a full disk only costs the next start its compile time."""
    path = _cache_file(key)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(hyperscan.dumpb(db))
        os.replace(tmp, path)
    except (OSError, hyperscan.error):
        pass


class _ViewDB:
    """One Hyperscan database for the pattern rules of one view."""

    def __init__(self, view: str, rules: list[Rule]) -> None:
        self.view = view
        self.rules = rules
        self.kinds = frozenset().union(*(r.targets for r in rules))
        self.db = _compile(rules)
        self.scratch = hyperscan.Scratch(self.db)

    def scan(self, data: bytes) -> list[tuple[int, int]]:
        hits: list[tuple[int, int]] = []

        def on_match(idx: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
            hits.append((idx, to))

        self.db.scan(data, match_event_handler=on_match, scratch=self.scratch)
        return hits


class Engine:
    """Compiled rules for one configuration. Thread-compatible: one Engine per thread or event loop."""

    def __init__(self, config: EngineConfig | None = None, rules: Iterable[Rule] | None = None) -> None:
        self.config = config or EngineConfig()
        all_rules = list(rules) if rules is not None else builtin_rules()
        all_rules.extend(self.config.extra_rules)
        active = [
            r
            for r in all_rules
            if r.paranoia <= self.config.paranoia and r.id not in self.config.disabled_rules
        ]
        self.rules = active
        for r in active:
            if r.check is not None and r.check not in CHECKS:
                raise ValueError(f"{r.source}: rule {r.id}: check: unknown check {r.check!r}")
        self._checks = [r for r in active if r.check is not None]
        by_view: dict[str, list[Rule]] = {}
        for r in active:
            if r.pattern is not None:
                by_view.setdefault(r.view, []).append(r)
        self._dbs = [_ViewDB(v, rs) for v, rs in sorted(by_view.items())]
        # Most values are plain text on which the raw, decoded, compact and cmdline views coincide
        # (up to case, and those databases are caseless): one scan of a merged database covers them.
        merged = [
            r for r in active
            if r.pattern is not None
            and r.view in _MERGEABLE
            and not (r.view == "cmdline" and r.case_sensitive)
        ]  # fmt: skip
        self._merged = _ViewDB("merged", merged) if merged else None
        self._unmerged = [d for d in self._dbs if d.view not in _MERGEABLE]

    def inspect(self, request: Request) -> Verdict:
        cfg = self.config
        path = request.uri.split("?", 1)[0]
        found: dict[int, Match] = {}
        scripted = not lured_navigation(request)  # for navigation_only rules (session fixation)

        def record(rule: Rule, locations: tuple[str, ...], text: str, chain: tuple[str, ...] = ()) -> None:
            """A match counts at the first of its locations that no exclusion covers."""
            if rule.id in found or (rule.navigation_only and scripted):
                return
            for location in locations:
                if not rule.applies_at(location):
                    continue
                if not any(ex.applies(path, rule.id, location) for ex in cfg.exclusions):
                    found[rule.id] = Match(
                        rule.id,
                        rule.category,
                        location,
                        text[-MATCH_TEXT:],
                        rule.score,
                        rule.paranoia,
                        rule.msg,
                        chain,
                    )
                    return

        for rule in self._checks:
            for location, text in CHECKS[rule.check](request):  # type: ignore[index]
                record(rule, (location,), text)
                if rule.id in found:
                    break

        started = time.perf_counter()
        parsed = extract(request, cfg.body_budget)
        refusal = parsed.refusal
        targets = () if refusal else parsed.targets  # refused before any scan: decided early and cheaply
        for i, t in enumerate(targets):
            self._scan_target(t, record)
            if i & 63 == 63 and time.perf_counter() - started > cfg.time_budget:
                refusal = Refusal.TOO_SLOW
                break

        total = sum(m.score for m in found.values())
        matches = tuple(sorted(found.values(), key=lambda m: m.rule_id))
        blocked = total >= cfg.threshold
        uninspected = False
        if refusal and not blocked:
            blocked = cfg.over_budget is OverBudget.BLOCK
            uninspected = not blocked
        return Verdict(
            blocked=blocked,
            score=total,
            threshold=cfg.threshold,
            matches=matches,
            refusal=refusal,
            uninspected=uninspected,
            body=parsed.body,
            encodings=parsed.encodings,
        )

    def scan_value(self, value: str, kind: str = "arg") -> list[int]:
        """Ids of the pattern rules that match one value seen as a target of `kind` (for rule tests)."""
        hits: list[int] = []

        def record(rule: Rule, _locations: tuple[str, ...], _text: str, _chain: tuple[str, ...] = ()) -> None:
            if rule.id not in hits:
                hits.append(rule.id)

        self._scan_target(Target(kind, kind, value), record)
        return hits

    def _scan_target(self, t: Target, record) -> None:  # type: ignore[no-untyped-def]
        """Every decoding layer of the value: as sent, decoded (percent, entities, escapes), and the
        text inside when the value (or its decoded form) is base64 of mostly printable text."""
        cache: dict[str, str] = {}
        self._scan_layer(t, t.value, (), cache, record)
        if t.kind in _BASE64_KINDS and len(t.value) >= 8:
            inner = try_base64(t.value)
            if inner is None and cache.get("chain"):
                inner = try_base64(cache["decoded"])
            if inner is not None:
                self._scan_layer(t, inner, (Layer.BASE64,), {}, record)

    def _scan_layer(self, t: Target, value: str, prefix: tuple[str, ...], cache: dict[str, str], record) -> None:  # type: ignore[no-untyped-def]
        dbs = self._dbs
        if self._merged is not None and _NOT_PLAIN.search(value) is None:
            # no %, &, \\, quotes, ^, commas, comments or unusual whitespace: every mergeable view equals
            # the value itself (cmdline up to case)
            dbs = [self._merged, *self._unmerged]
            cache["merged"] = value
        for vdb in dbs:
            if t.kind not in vdb.kinds:
                continue
            text = _view(vdb.view, value, cache)
            if not text:
                continue
            try:
                data = text.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                data = text.encode("utf-8", "surrogatepass")
            hits = vdb.scan(data)
            if not hits:
                continue
            chain = prefix
            if vdb.view not in ("raw", "merged") and cache.get("chain"):
                chain = (*prefix, *cache["chain"].split(","))
            for idx, to in hits:
                rule = vdb.rules[idx]
                if t.kind in rule.targets:
                    if rule.detector is not None and not DETECTORS[rule.detector](text):
                        continue
                    matched = data[max(0, to - MATCH_TEXT) : to].decode("utf-8", "replace")
                    record(rule, t.locations, matched, chain)


_default: Engine | None = None


def precompile(configs: Iterable[EngineConfig]) -> list[Path]:
    """Compile the databases of `configs` and write them to the on-disk cache (`_cache_file`), even
    when this process already holds them. Why: a sidecar starts on a read-only root file system with
    no home, so it cannot keep a cache of its own; the image runs this at build time (`netguard waf
    --precompile`) and every pod start then loads its databases instead of compiling them (seconds of
    CPU per start). Returns the files written (empty when the cache is off or not writable)."""
    written: list[Path] = []
    for config in configs:
        engine = Engine(config)
        dbs = [*engine._dbs, *([engine._merged] if engine._merged else [])]
        for vdb in dbs:
            key = _db_key(vdb.rules)
            _store_cached(key, vdb.db)
            path = _cache_file(key)
            if path is not None and path.exists() and path not in written:
                written.append(path)
    return written


def inspect(request: Request, engine: Engine | None = None) -> Verdict:
    """Inspect one request with `engine`, or with a shared engine of the built-in rules at paranoia 1."""
    global _default
    if engine is None:
        if _default is None:
            _default = Engine()
        engine = _default
    return engine.inspect(request)
