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
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import accumulate
from operator import add
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import hyperscan

from waf._body import STATUS, BodyBudget, BodyKind, Refusal
from waf._decode import (
    BASE64_SHAPE,
    Layer,
    cmdline,
    compress_ws,
    decode_chain,
    normalize_path,
    remove_comments,
    try_base64,
)
from waf._protocol import CHECKS
from waf._request import Request
from waf._rules import DETECTORS, Rule, builtin_rules
from waf._targets import extract

MATCH_TEXT: Final = 80
_GROUP: Final = 48  # rules per Hyperscan database (see _ViewDB)
_KNOWN_LEN: Final = 2048  # longer values are not remembered (see Engine._remember)
_CHUNK: Final = 256  # values planned and scanned together; the time budget is checked between chunks
_ALONE: Final = 2048  # values longer than this are scanned alone, never in a batch (see _Group.flag)
_MERGEABLE: Final = frozenset({"raw", "decoded", "compact", "cmdline"})
_LURING_SITES: Final = frozenset({"cross-site", "none"})  # a link on another site, or one opened from outside the browser
# Kinds of values worth looking inside when they are base64 of text (a whole cookie, parameter, header).
_BASE64_KINDS: Final = frozenset({"arg", "arg_name", "cookie", "header", "path", "filename"})
# A value without any of these characters (nor `/*`, two spaces, a space at either end: see `_plain`) is
# unchanged by every decoder and by the compact/cmdline views.
_SPECIAL: Final = re.compile(
    r"[%&\\\"'^,+\x00-\x1f\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
)


def _plain(value: str) -> bool:
    """Whether every decoder and the compact/cmdline views leave `value` as it is. One character class
    and substring tests: a single regex with the two-character alternatives took three times longer.
    `/*` is looked for only where a `*` is (a memchr): the two-character search stops at every `/`, 8 µs
    on a long text of URLs.
    Letters and digits alone (ids, numbers, words: no sign, no blank) are plain without a scan."""
    return value.isalnum() or (
        _SPECIAL.search(value) is None
        and ("*" not in value or "/*" not in value)
        and "  " not in value
        and value[:1] != " "
        and value[-1:] != " "
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
        return mode == "navigate" and dest in ("", "document") and (not site or site in _LURING_SITES)
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
    value_memory: int = 65536  # values whose scan results are remembered across requests (0: none)


def _view_text(view: str, value: str, decoded: str) -> str:
    """The text a view scans of `value`, given its decoded text (`decode_chain`): every view but the raw
    one reads the decoded text."""
    if view == "raw":
        return value
    if view == "decoded":
        return decoded
    if view == "compact":
        return compress_ws(remove_comments(decoded))
    if view == "cmdline":
        return cmdline(decoded)
    if view == "path":
        return normalize_path(decoded)
    raise ValueError(view)  # pragma: no cover - views are validated when rules load


_COMPILED: dict[tuple[tuple[bytes, int], ...], hyperscan.Database] = {}
_COMPILE_LOCK = threading.Lock()


def _db_key(rules: list[Rule], batch: bool = False) -> tuple[tuple[bytes, int], ...]:
    """What a compiled database depends on: each pattern and its flags, in order.

    `batch`: the twin used on many values joined by newlines (see `_Group.flag`): every match end is
    reported (no single-match) and `^`/`$` also match at newlines, so each value's own matches are
    found at their place in the joined text (and a few more, which only cost an exact re-scan)."""
    base = hyperscan.HS_FLAG_DOTALL | hyperscan.HS_FLAG_ALLOWEMPTY
    base |= hyperscan.HS_FLAG_MULTILINE if batch else hyperscan.HS_FLAG_SINGLEMATCH
    flags = [base | (0 if r.case_sensitive else hyperscan.HS_FLAG_CASELESS) for r in rules]
    exprs = [r.pattern.encode("utf-8") for r in rules]  # type: ignore[union-attr]
    return tuple(zip(exprs, flags, strict=True))


def _compile(rules: list[Rule], batch: bool = False) -> hyperscan.Database:
    """A Hyperscan block-mode database of `rules` (pattern i has id i). Databases are immutable and
    shared: engines built for the same rules (a config reload, another paranoia level with the same
    rules) reuse the compiled one; each engine keeps its own scratch space."""
    key = _db_key(rules, batch)
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


# Values joined for the batch probe of `_ViewDB.__init__`: every kind of first byte an assertion at a
# value's start can depend on (word, non-word, newline), none of them an attack.
_PROBE: Final = (b"a", b"A", b"0", b"_", b" ", b"<", b"%", b".", b"\n", b"\r", b"\t", b"\xff", b"a")


def _stop(_idx: int, _from: int, _to: int, _flags: int, _ctx: object) -> bool:
    """A match handler that stops the scan at the first match (Hyperscan then raises ScanTerminated)."""
    return True


class _Group:
    """Some of the rules of one view: their database, and its twin for batches of values.

    The twin (see `flag`) holds the rules that stay quiet at the newline joining two values. A rule
    that matches there (a CR/LF rule, or one matching empty at a value's start) would flag every value
    of a batch: those rules (`solo`) are scanned value by value in a database of their own."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.db = _compile(rules)
        self.scratch = hyperscan.Scratch(self.db)
        joined = _batch_db(rules)
        loud: set[int] = set()
        starts = _starts(_PROBE)
        joined.scan(
            b"\n".join(_PROBE),
            match_event_handler=lambda idx, _f, to, _fl, _c: loud.add(idx) if to in starts else None,
            scratch=hyperscan.Scratch(joined),
        )
        self.quiet = quiet = [r for i, r in enumerate(rules) if i not in loud]
        self.solo = solo = [r for i, r in enumerate(rules) if i in loud]
        self.batch_db = _batch_db(quiet) if quiet else None
        self.batch_scratch = hyperscan.Scratch(self.batch_db) if self.batch_db else None
        self.solo_db = _compile(solo) if solo else None
        self.solo_scratch = hyperscan.Scratch(self.solo_db) if self.solo_db else None
        self.solo_kinds = frozenset().union(*(r.targets for r in solo))

    def compiled(self) -> list[tuple[tuple[tuple[bytes, int], ...], hyperscan.Database]]:
        """Every database of the group with its cache key (for `precompile`)."""
        out = [(_db_key(self.rules), self.db)]
        if self.batch_db is not None:
            out.append((_db_key(self.quiet, batch=True), self.batch_db))
        if self.solo_db is not None:
            out.append((_db_key(self.solo), self.solo_db))
        return out

    def scan(self, data: bytes) -> list[tuple[int, int]]:
        hits: list[tuple[int, int]] = []

        def on_match(idx: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
            hits.append((idx, to))

        self.db.scan(data, match_event_handler=on_match, scratch=self.scratch)
        return hits

    def flag(self, batch: _Batch) -> set[int]:
        """Slots of `batch` that may match a rule of the group: a superset of those whose own scan has a hit.

        A Hyperscan call has a fixed cost (a few µs for these databases) that dwarfs the scan of a short
        value, and a request holds tens to hundreds of values: one scan of them all joined by newlines
        (with the multi-line twin database) finds every value's matches at their place (an anchor at a
        value's start or end holds beside the newline), and only the values it flags are scanned again
        alone. Values of a kind the solo rules target are also scanned alone with them.

        Too many match events (a rule matching almost everywhere) stop the batch and flag every value:
        the plain per-value scan. (Stopping at each flagged value and scanning the rest again was
        measured: 4% slower on the slowest 1% of real requests, as the rescans cost more than the events.)
        A value longer than `_ALONE` is flagged without a batch (`_Batch.seal`): a prefilter that
        matches every quote would flag it anyway, and its own single-match scan reports one match
        per rule."""
        hot = set(batch.alone)
        if self.solo_db is not None:
            for i in batch.solo_slots():
                try:
                    self.solo_db.scan(batch.data(i), match_event_handler=_stop, scratch=self.solo_scratch)
                except hyperscan.ScanTerminated:  # a match: the value is scanned again alone
                    hot.add(i)
        if self.batch_db is None or not batch.members:
            return hot
        ends: set[int] = set()
        cap = 64 + 4 * len(batch.members)

        def on_match(_idx: int, _from: int, to: int, _flags: int, _ctx: object) -> bool:
            ends.add(to)
            return len(ends) > cap

        try:
            self.batch_db.scan(batch.joined, match_event_handler=on_match, scratch=self.batch_scratch)
        except hyperscan.ScanTerminated:
            return hot.union(batch.members)
        starts, members = batch.starts, batch.members
        hot.update(members[bisect_right(starts, to) - 1] for to in ends)
        return hot


class _ViewDB:
    """The pattern rules of one view, in groups of at most `_GROUP` rules: Hyperscan scans a few
    databases of tens of rules several times faster per byte than one of them all."""

    def __init__(self, view: str, rules: list[Rule]) -> None:
        self.view = view
        self.rules = rules
        self.kinds = frozenset().union(*(r.targets for r in rules))
        n = -(-len(rules) // _GROUP)
        self.groups = [_Group(rules[i::n]) for i in range(n)]
        self.solo_kinds = frozenset().union(*(g.solo_kinds for g in self.groups))


def _narrow_dbs(views: list[_ViewDB]) -> dict[tuple[_ViewDB, str], _ViewDB]:
    """Per view, a database of the rules of each kind that at most half of the view's rules read: a long
    text of that kind (`_ALONE`) is scanned with it instead. Why: a long text is scanned alone, once per
    database of its view, and the whole body or URI (tens of KB in beacons and tracking pixels) is read
    by 10 of the 150 merged rules; Hyperscan's time per byte grows with the rules it holds. The matches
    are the same: the other rules' matches are dropped for that kind anyway (`_exact`)."""
    out: dict[tuple[_ViewDB, str], _ViewDB] = {}
    for vdb in views:
        for kind in sorted(vdb.kinds):
            rules = [r for r in vdb.rules if kind in r.targets]
            if 2 * len(rules) <= len(vdb.rules):
                out[vdb, kind] = _ViewDB(vdb.view, rules)
    return out


def _batch_db(rules: list[Rule]) -> hyperscan.Database:
    return _compile(rules, batch=True)


def _starts(values: Iterable[bytes]) -> list[int]:
    """Where each value starts once joined by one-byte separators."""
    out: list[int] = []
    pos = 0
    for v in values:
        out.append(pos)
        pos += len(v) + 1
    return out


class _Batch:
    """The texts one view's databases scan for a chunk of values. Planning appends them (`pending`: one
    list append per text, as planning sees every value of a request); `seal` keeps the distinct ones,
    each once in the order first seen (a text's slot), joins them once for all the view's groups, and
    keeps which slots each group flagged (`hot`, and the texts any flagged: `warm`) and the exact scans
    made (`hits`).

    Texts are joined and encoded in one call each (ASCII, the common case, needs no per-text encoding);
    a text's own bytes are made only when it is scanned alone."""

    __slots__ = (
        "vdb", "pending", "solo_texts", "texts", "alone", "members", "starts", "joined", "hot", "warm",
        "_slots", "_data", "_hits",
    )  # fmt: skip

    def __init__(self, vdb: _ViewDB) -> None:
        self.vdb = vdb
        self.pending: list[str] = []  # the texts as planned, repeats included
        self.solo_texts: set[str] = set()  # texts a value of a kind the solo rules target holds
        self.texts: list[str] = []  # the distinct texts (a text's index is its slot)
        self.alone: list[int] = []  # slots flagged without a batch scan (long texts; a batch of one)
        self.members: list[int] = []  # slots in the joined text, in order
        self.starts: list[int] = []  # where each member starts in `joined`
        self.joined = b""
        self.hot: list[set[int]] = []  # per group: the slots it flagged
        self.warm: set[str] = set()  # the texts any group flagged
        self._slots: dict[str, int] | None = None
        self._data: dict[int, bytes] = {}
        self._hits: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def add(self, text: str, solo: bool) -> None:
        self.pending.append(text)
        if solo:
            self.solo_texts.add(text)

    def seal(self) -> None:
        """Join the distinct texts for the batch scans, then let each group flag its slots."""
        self.texts = texts = list(dict.fromkeys(self.pending))  # identical texts are scanned once
        if len(texts) == 1:
            self.alone = [0]
        else:
            members: Sequence[int] = range(len(texts))
            if max(map(len, texts)) > _ALONE:
                self.alone = [i for i, t in enumerate(texts) if len(t) > _ALONE]
                long = set(self.alone)
                members = [i for i in members if i not in long]
                texts = [texts[i] for i in members]
            self.members = list(members)
            if len(texts) > 1 or not self.alone:
                joined = "\n".join(texts)
                if joined.isascii():
                    self.joined = joined.encode("ascii")
                    lengths: Iterable[int] = map(len, texts)
                else:
                    try:  # (a comprehension: no function call per text)
                        data = [t.encode("utf-8", "surrogateescape") for t in texts]
                    except UnicodeEncodeError:  # a lone surrogate that is no byte's stand-in (see _encode)
                        data = list(map(_encode, texts))
                    self.joined = b"\n".join(data)
                    lengths = map(len, data)
                ends = list(accumulate(lengths, initial=0))
                self.starts = list(map(add, ends, range(len(texts))))  # each separator moves the next one on
            else:  # one short text beside long ones: alone too
                self.alone.extend(self.members)
                self.members = []
        self.hot = [g.flag(self) for g in self.vdb.groups]
        texts = self.texts
        self.warm = {texts[i] for i in set().union(*self.hot)}

    def slot(self, text: str) -> int:
        """A sealed text's slot (the index of its distinct text), mapped once per batch when first asked."""
        slots = self._slots
        if slots is None:
            slots = self._slots = dict(zip(self.texts, range(len(self.texts)), strict=True))
        return slots[text]

    def solo_slots(self) -> list[int]:
        """The members a group's solo rules scan alone."""
        solo, texts = self.solo_texts, self.texts
        return [i for i in self.members if texts[i] in solo] if solo else []

    def data(self, slot: int) -> bytes:
        """The bytes of one text, as scanned alone."""
        out = self._data.get(slot)
        if out is None:
            out = self._data[slot] = _encode(self.texts[slot])
        return out

    def hits(self, slot: int, gi: int) -> list[tuple[int, int]]:
        """(rule index, match end) of one text in group `gi`'s own database: scanned once per batch."""
        out = self._hits.get((slot, gi))
        if out is None:
            out = self._hits[slot, gi] = self.vdb.groups[gi].scan(self.data(slot))
        return out


class _Batches(dict["_ViewDB", _Batch]):
    """A chunk's batches, one per view database, each made when a text is first added to it: a request
    whose values the memory knows needs none (most requests: the batches cost more than their lookups)."""

    def __missing__(self, vdb: _ViewDB) -> _Batch:
        batch = self[vdb] = _Batch(vdb)
        return batch


class _Places:
    """The places of value `i`, looked up when first read: a match that does not count (its rule already
    matched, or a navigation-only rule on a page's own request: the session-id parameters of beacons)
    needs none, and looking up the places of a value seen many times scans all the values seen."""

    __slots__ = ("_lookup", "_i", "_places")

    def __init__(self, lookup: Callable[[int], tuple[str, ...]], i: int) -> None:
        self._lookup, self._i = lookup, i
        self._places: tuple[str, ...] | None = None

    def __iter__(self) -> Iterator[str]:
        if self._places is None:
            self._places = self._lookup(self._i)
        return iter(self._places)


# One layer of one value in one view: its batch, the text scanned and the decode chain.
_Item = tuple[_Batch, str, tuple[str, ...]]


# What scanning one value found, in the order found: (rule, matched text, decode chain) per match.
_Events = tuple[tuple[Rule, str, tuple[str, ...]], ...]
_NOTHING: Final[_Events] = ()


def _encode(text: str) -> bytes:
    """The bytes scanned: UTF-8, lone surrogates (bytes that were not UTF-8) as they came."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


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
        views = [*self._dbs, *([self._merged] if self._merged else [])]
        self._narrow = _narrow_dbs(views)
        self._views = views
        self._all_dbs = [*views, *self._narrow.values()]
        # (kind, value) -> what scanning it found (see _scan_targets); at most `value_memory` entries
        self._known: OrderedDict[tuple[str, str], _Events] = OrderedDict()
        self._known_max = self.config.value_memory
        self._known_chars = 0

    def inspect(self, request: Request) -> Verdict:
        cfg = self.config
        path = request.uri.split("?", 1)[0]
        found: dict[int, Match] = {}
        scripted = not lured_navigation(request)  # for navigation_only rules (session fixation)

        def record(rule: Rule, locations: Iterable[str], text: str, chain: tuple[str, ...] = ()) -> None:
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
        keys = () if refusal else parsed.keys  # refused before any scan: decided early and cheaply
        for i in range(0, len(keys), _CHUNK):
            if i and time.perf_counter() - started > cfg.time_budget:
                refusal = Refusal.TOO_SLOW
                break
            self._scan_targets(keys[i : i + _CHUNK], parsed.places, record, i)

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

        def record(rule: Rule, _locations: Iterable[str], _text: str, _chain: tuple[str, ...] = ()) -> None:
            if rule.id not in hits:
                hits.append(rule.id)

        self._scan_targets([(kind, value)], lambda _i: (kind,), record)
        return hits

    def _scan_targets(  # type: ignore[no-untyped-def]
        self, keys: Sequence[tuple[str, str]], places: Callable[[int], tuple[str, ...]], record, offset: int = 0
    ) -> None:
        """Plan every scan of the values `keys` ((kind, value) pairs: each layer of each value, each
        view), batch the scans per database to learn which values may match, then scan those alone and
        report their matches (at `places(offset + i)`, the places value i was seen) in the order a value-by-value
        scan would (the first place a rule matches is the one recorded).

        What a value's scans found depends on its kind and text only: it is remembered for the next
        requests (browsers send the same header names, user agents and parameter names again and again)."""
        batches = _Batches()
        plans = self._plan_targets(keys, batches)
        for batch in batches.values():
            if batch.pending:  # (a merged or path batch made for a value that needed neither)
                batch.seal()
        learned: list[tuple[tuple[str, str], _Events]] = []
        for i, (key, todo) in enumerate(zip(keys, plans, strict=True)):
            if isinstance(todo, tuple):
                events = todo
            else:
                found: list[tuple[Rule, str, tuple[str, ...]]] = []
                for item in todo:
                    batch = item[0]
                    if item[1] in batch.warm:
                        slot = batch.slot(item[1])
                        for gi, flagged in enumerate(batch.hot):
                            if slot in flagged:
                                self._exact(key[0], item, slot, gi, found)
                events = tuple(found) if found else _NOTHING
                learned.append((key, events))
            if events:
                where = _Places(places, offset + i)
                for rule, matched, chain in events:
                    record(rule, where, matched, chain)
        if learned:
            self._remember(learned)

    def _remember(self, learned: list[tuple[tuple[str, str], _Events]]) -> None:
        """Keep what the values' scans found (values up to `_KNOWN_LEN`); the oldest entries go first
        when the memory is full (in entries, or in characters: 64 per entry on average, so hostile long
        values cannot grow it). All of a chunk's values at once: one update, not a call per value."""
        if not self._known_max:
            return
        known = self._known
        kept = [entry for entry in learned if len(entry[0][1]) <= _KNOWN_LEN]
        known.update(kept)
        self._known_chars += sum(len(key[1]) for key, _ in kept)
        limit = 64 * self._known_max
        while len(known) > self._known_max or (self._known_chars > limit and len(known) > 1):
            old, _ = known.popitem(last=False)
            self._known_chars -= len(old[1])

    def _plan_targets(
        self, keys: Sequence[tuple[str, str]], batches: _Batches
    ) -> list[list[_Item] | _Events]:
        """For each value: what the memory knows of it, or the scans it needs (`_plan_target`), their
        texts added to `batches` (one per view database).

        Most values are plain text of one layer (no character any decoder reads, not base64 of text):
        they are planned inline, the merged view and the views that cannot be merged (a path) only."""
        known = self._known.get
        special = _SPECIAL.search
        b64_shape = BASE64_SHAPE.fullmatch
        merged = self._merged
        if merged is None:
            return [self._plan_target(*key, batches) if (seen := known(key)) is None else seen for key in keys]
        kinds, solo_kinds = merged.kinds, merged.solo_kinds
        unmerged = self._unmerged
        mb: _Batch | None = None
        plans: list[list[_Item] | _Events] = []
        for key in keys:
            seen = known(key)
            if seen is not None:
                plans.append(seen)
                continue
            kind, value = key
            if mb is None:  # the first value to scan: its batches (see _Batches)
                mb = batches[merged]
                others = [(vdb, batches[vdb]) for vdb in unmerged]
            if not value.isalnum() and (  # not plain (see _plain), inlined: this loop sees every value
                special(value) is not None
                or ("*" in value and "/*" in value)
                or "  " in value
                or value[:1] == " "
                or value[-1:] == " "
            ):
                plans.append(self._plan_target(kind, value, batches))
                continue
            items: list[_Item] = []
            if len(value) > _ALONE:  # (a long text: `_item` gives each view its kind's narrow database)
                self._plan_layer(kind, value, (), batches, items)
            else:
                if kind in kinds:
                    mb.pending.append(value)
                    if kind in solo_kinds:
                        mb.solo_texts.add(value)
                    items.append((mb, value, ()))
                for vdb, batch in others:
                    if kind in vdb.kinds:
                        text = _view_text(vdb.view, value, value)
                        if text:
                            batch.add(text, kind in vdb.solo_kinds)
                            items.append((batch, text, ()))
            if (  # (a plain value has no blank at either end for try_base64 to strip)
                kind in _BASE64_KINDS
                and len(value) >= 8
                and b64_shape(value) is not None
                and (inner := try_base64(value)) is not None
            ):
                self._plan_layer(kind, inner, (Layer.BASE64,), batches, items)
            plans.append(items)
        return plans

    def _plan_target(self, kind: str, value: str, batches: _Batches) -> list[_Item]:
        """Every decoding layer of the value: as sent, decoded (percent, entities, escapes), and the
        text inside when the value (or its decoded form) is base64 of mostly printable text."""
        plan: list[_Item] = []
        decoded, layers = self._plan_layer(kind, value, (), batches, plan)
        if kind in _BASE64_KINDS and len(value) >= 8:
            inner = try_base64(value)
            if inner is None and layers:
                inner = try_base64(decoded)
            if inner is not None:
                self._plan_layer(kind, inner, (Layer.BASE64,), batches, plan)
        return plan

    def _plan_layer(
        self, kind: str, value: str, prefix: tuple[str, ...], batches: _Batches, plan: list[_Item]
    ) -> tuple[str, tuple[str, ...]]:
        """The scans of one layer of a value (`prefix`: the decodings that led to it), one per view
        database of its kind; returns its decoded text and the decodings that made it."""
        merged = self._merged
        layers: tuple[str, ...]
        if merged is not None and _plain(value):
            # no %, &, \\, quotes, ^, commas, comments or unusual whitespace: every mergeable view equals
            # the value itself (cmdline up to case), and no decoder changes it
            if kind in merged.kinds:
                plan.append(self._item(merged, kind, value, prefix, batches))
            decoded, layers, dbs = value, (), self._unmerged
        else:
            decoded, layers = decode_chain(value)  # (every view but the raw one reads it)
            dbs = self._dbs
        chain = (*prefix, *layers) if layers else prefix
        for vdb in dbs:
            if kind in vdb.kinds:
                text = _view_text(vdb.view, value, decoded)
                if text:
                    plan.append(self._item(vdb, kind, text, prefix if vdb.view == "raw" else chain, batches))
        return decoded, layers

    def _item(
        self, vdb: _ViewDB, kind: str, text: str, chain: tuple[str, ...], batches: _Batches
    ) -> _Item:
        """One scan of `text` in view database `vdb` (its kind's narrow database for a long text, see
        `_narrow_dbs`), its text added to that database's batch."""
        if len(text) > _ALONE and (narrow := self._narrow.get((vdb, kind))) is not None:
            vdb = narrow
        batch = batches[vdb]
        batch.add(text, kind in vdb.solo_kinds)
        return (batch, text, chain)

    @staticmethod
    def _exact(kind: str, item: _Item, slot: int, gi: int, found: list[tuple[Rule, str, tuple[str, ...]]]) -> None:
        """The matches of one value (its text at `slot`) in one group's database (one match per rule, the first)."""
        batch, text, chain = item
        hits = batch.hits(slot, gi)
        if not hits:
            return
        rules = batch.vdb.groups[gi].rules
        for idx, to in hits:
            rule = rules[idx]
            if kind in rule.targets:
                if rule.detector is not None and not DETECTORS[rule.detector](text):
                    continue
                matched = batch.data(slot)[max(0, to - MATCH_TEXT) : to].decode("utf-8", "replace")
                found.append((rule, matched, chain))


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
        dbs = engine._all_dbs
        for vdb in dbs:
            for group in vdb.groups:
                for key, db in group.compiled():
                    _store_cached(key, db)
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
