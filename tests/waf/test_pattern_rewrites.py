"""Patterns rewritten for speed match exactly what they matched before.

The engine reports a rule's first match end and the text before it (and a batch scan flags values by
match ends), so a rewrite must keep the set of match ends on every text the rule's databases scan:
`tests/waf/data/pattern_rewrites.yaml` keeps each old pattern and that domain of texts. Hyperscan
itself compares the two (every match end, as reported without single-match, in both the plain and the
multi-line mode the batches use) on texts made of the pattern's own words and punctuation.

Necessary, not sufficient: under single-match Hyperscan reports the first match it finds, which a
rewrite can move to a later end of the same set (see bench/waf_rule_cost.py): the engine check
(`bench/waf_engine_check.py`) has the last word on the matched texts."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import hyperscan
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waf import builtin_rules
from waf._decode import compress_ws

DATA = yaml.safe_load((Path(__file__).parent / "data" / "pattern_rewrites.yaml").read_text(encoding="utf-8"))
RULES = {r.id: r for r in builtin_rules()}
DOMAINS = {"any": lambda s: s, "spaces": compress_ws}  # `spaces`: what the compact and cmdline views leave
FILLER = [*" \t\naZ7_-/.,;$'\"`()=\\é", "  ", "\r\n"]  # one character each, and two whitespace runs


def test_entries_name_rewritten_rules() -> None:
    assert DATA, "no rewritten pattern recorded"
    for rid, entry in DATA.items():
        assert rid in RULES, f"rule {rid} is gone: drop its entry"
        assert entry["domain"] in DOMAINS
        assert entry["before"] != RULES[rid].pattern, f"rule {rid}: pattern unchanged"


@cache
def _db(rid: int, multi: bool) -> tuple[hyperscan.Database, hyperscan.Scratch]:
    rule = RULES[rid]
    flags = hyperscan.HS_FLAG_DOTALL | hyperscan.HS_FLAG_ALLOWEMPTY
    flags |= 0 if rule.case_sensitive else hyperscan.HS_FLAG_CASELESS
    flags |= hyperscan.HS_FLAG_MULTILINE if multi else 0
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    exprs = [DATA[rid]["before"].encode(), rule.pattern.encode()]  # type: ignore[union-attr]
    db.compile(expressions=exprs, ids=[0, 1], elements=2, flags=[flags, flags])
    return db, hyperscan.Scratch(db)


def _ends(rid: int, text: str, multi: bool) -> tuple[set[int], set[int]]:
    db, scratch = _db(rid, multi)
    out: tuple[set[int], set[int]] = (set(), set())
    db.scan(
        text.encode("utf-8"),
        match_event_handler=lambda idx, _f, to, _fl, _c: out[idx].add(to),
        scratch=scratch,
    )
    return out


@cache
def _fragments(rid: int) -> list[str]:
    """The old pattern's words and punctuation, and the rule's own test texts: texts built of them reach
    deep into both patterns."""
    old = DATA[rid]["before"]
    words = set(re.findall(r"(?<![\\])[a-z][a-z0-9_-]+", old.replace("(?:", "(")))
    punct = {c for c in old if not c.isalnum() and c not in "\\?*+{}[]|()^"}
    rule = RULES[rid]
    return sorted(words | punct | set(FILLER) | set(rule.match) | set(rule.nomatch))


def _same(rid: int, text: str) -> None:
    text = DOMAINS[DATA[rid]["domain"]](text)
    for multi in (False, True):
        old, new = _ends(rid, text, multi)
        assert old == new, f"rule {rid} ({'multi-line' if multi else 'single'}) on {text!r}: {sorted(old ^ new)}"


@pytest.mark.parametrize("rid", sorted(DATA))
def test_rewrite_matches_as_before_on_own_tests(rid: int) -> None:
    rule = RULES[rid]
    for text in (*rule.match, *rule.nomatch):
        _same(rid, text)
        _same(rid, text.upper())
        _same(rid, f"x {text}\t{text}\n")


@st.composite
def _texts(draw: st.DrawFn, rid: int) -> str:
    """One of the rule's attack examples (or nothing) with fragments inserted and spaces swapped for
    other whitespace: near-matches on both sides of every edge a rewrite can move."""
    rule = RULES[rid]
    text = draw(st.sampled_from(["", *rule.match]))
    fragments = _fragments(rid)
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(fragments)) + text[at:]
    spaces = [i for i, c in enumerate(text) if c == " "]
    for i in draw(st.lists(st.sampled_from(spaces), max_size=4, unique=True)) if spaces else ():
        text = text[:i] + draw(st.sampled_from(["\t", "\n", "  ", "\r\n", "\x0b"])) + text[i + 1 :]
    return text


# Shapes where a rewrite spells a class out (`\w` as its 37 characters) or moves a bound: every
# character at the marked place, on both sides of each bound.
_SHAPES = [
    "x'{}'y /", "x\"{}2345678\"y", "x'{}23456789'y", "ab${}de -c", "abcdefghijkl${}bcdefghijklmno -x", "a${}bcdefghijklmnop -x",
    "abcdefghijklm${} -x", "w'\"{}'y -x", "w''{}\"\"y /", "{}\t{}  {}\n{}", "(cn:{}.5.13:=x)", "a:1.{}:b=",
    "<{}/{}svg onload=1>", "x<{}{}set on=1", "x;{}{}return 1", "a&&{}this.b||{}x==1",
    "a']{}|{}//{}*['b", "x]{}{}|{}{}//{}{}*y", "//{}user{}[1]", "//{}{}user{}{}[", "x'{}]{}|{}/a",
]  # fmt: skip
_CHARS = [chr(c) for c in range(32, 127)] + ["\t", "\n", "\x0b", "é"]


@pytest.mark.parametrize("rid", sorted(DATA))
def test_rewrite_matches_as_before_at_each_character(rid: int) -> None:
    for shape in _SHAPES:
        for c in _CHARS:
            _same(rid, shape.replace("{}", c))


# Words of every length around the bounds of the patterns' repeats (`\w{1,12}`, `\w{0,7}`), among the
# characters the patterns read.
_WORDS = st.text(alphabet="az9_Z", min_size=1, max_size=16)
_MARKS = st.sampled_from([*"'\"`$ \t\n-/\\{}@:=;|&()<>.,#%", "${", "$@", "$IFS", "''", "'\"", "  "])
_TOKENS = st.lists(st.one_of(_WORDS, _MARKS), max_size=12).map("".join)


@pytest.mark.parametrize("rid", sorted(DATA))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_rewrite_matches_as_before(rid: int, data: st.DataObject) -> None:
    _same(rid, data.draw(_texts(rid)))
    _same(rid, data.draw(_TOKENS))
