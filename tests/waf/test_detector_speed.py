"""The grammar detectors' fast paths answer as the plain readings they shortcut (speed, no detection change).

Each early exit or rewrite in waf/_sqli.py, waf/_shell.py, ... carries its proof in a docstring; these
tests check the facts the proofs rest on, and compare the fast code with a compact copy of the code it
replaced on generated inputs (bench/waf_detector_check.py compares whole detectors with a reference tree
on the real corpora).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from waf import _ldap, _nosql, _shell, _sqli, _xss

from . import detector_reference

SQL_BITS = ["'", '"', "`", " ", "(", ")", "=", "<=>", " like ", "like", " or ", "or", "and", "xor", "||", "&&",
            "a", "a.b", "1", "x", "_", "é", "\t", "\n", "orx", "=a", "a=a"]  # fmt: skip
sql_texts = st.lists(st.sampled_from(SQL_BITS) | st.text(max_size=3), max_size=16).map("".join)


def test_regex_word_class_is_exactly_isalnum_or_underscore() -> None:
    """The tokenizer's runs (`\\w*`) replace loops over `c.isalnum() or c == "_"`: the same characters."""
    word = re.compile(r"\w")
    assert all((c.isalnum() or c == "_") == bool(word.match(c)) for c in map(chr, range(0x110000)))


def _letter_by_precedence(word: str) -> str | None:
    """The word classification _tokens had as a chain of set tests (None: a name or a call)."""
    if word in _sqli._LOGIC:
        return "&"
    if word in ("div", "mod"):
        return "o"
    if word == "union":
        return "U"
    if word == "select":
        return "S"
    if word in _sqli._STATEMENTS:
        return "E"
    if word in _sqli._PROCEDURES or word.startswith(("xp_", "sp_")):
        return "x"
    if word in _sqli._COMPARE_WORDS:
        return "L"
    if word in _sqli._LITERALS:
        return "1"
    if word in _sqli._KEYWORDS:
        return "k"
    return None


def test_word_letters_follow_the_word_sets_precedence() -> None:
    vocabulary = (
        _sqli._LOGIC | _sqli._STATEMENTS | _sqli._KEYWORDS | _sqli._COMPARE_WORDS | _sqli._SQL_FUNCTIONS
        | _sqli._LITERALS | _sqli._PROCEDURES | {"div", "mod", "union", "select", "xp_x", "sp_who", "name", "sleepy"}
    )  # fmt: skip
    for word in vocabulary:
        expected = _letter_by_precedence(word)
        got = _sqli._word_letter(word, word + " (", len(word))
        assert got == expected if expected is not None else got in ("F", "f"), word


def test_characters_without_a_token_make_none() -> None:
    for c in _sqli._NO_TOKEN:
        assert _sqli._tokens(c) == "" and _sqli._tokens(f"1{c}1") == "11"


@settings(max_examples=400)
@given(st.text(alphabet="sn1vVfFkLESU&=*oxcu?(),;", max_size=10))
def test_fingerprints_without_a_needed_letter_match_no_shape(fp: str) -> None:
    """The proof of _NEEDED: every shape alternative needs one of its letters."""
    if _sqli._NEEDED.isdisjoint(fp):
        assert not (_sqli._SHAPES.search(fp) or _sqli._QUOTED_SHAPES.search(fp) or _sqli._BACKTICK_SHAPES.search(fp))


_SELF_EQUAL_ONE_REGEX = re.compile(
    r"(?:^|[\s'\")])(?:or|and|xor|\|\||&&)\s*\(?\s*([\w.]{1,40})\s*(?:=|<=>|\blike\b)\s*\1(?![\w.])"
)


@settings(max_examples=400)
@given(sql_texts)
def test_self_equal_in_two_regexes_is_the_one_regex(text: str) -> None:
    assert _sqli._self_equal(text) == (_SELF_EQUAL_ONE_REGEX.search(text) is not None)


@settings(max_examples=300)
@given(st.text(alphabet="ab\\\"'^$ \né", max_size=20))
def test_shell_quote_dropping_by_replace_is_the_translation(text: str) -> None:
    assert _shell._drop_quotes(text) == text.translate(str.maketrans("", "", "\\\"'^"))


LDAP_BITS = ["(", ")", "(&", "(|", "(!", "&", "|", "!", "=", "~=", ">=", ":=", "*", " ", "\t", "cn", "uid", "objectclass",
             "x", "1", ":dn", ";binary", "\\29", "\0"]  # fmt: skip


@settings(max_examples=500)
@given(st.lists(st.sampled_from(LDAP_BITS) | st.text(max_size=2), max_size=20).map("".join))
def test_ldap_filter_pass_is_skipped_only_where_it_finds_nothing(text: str) -> None:
    assert _ldap._whole_filter(text) == _ldap._whole_filter_pass(text)
    assert bool(":=" in text and _ldap._EXTENSIBLE.search(text)) == bool(_ldap._EXTENSIBLE.search(text))


_JS_TOKEN_NESTED = re.compile(
    r"(?P<ws>[\s\u00a0\u2028\u2029\ufeff]+)"
    r"|(?P<comment>//[^\n\r\u2028\u2029]*|/\*(?:[^*]|\*(?!/))*(?:\*/)?|<!--[^\n]*)"
    r"|(?P<str>'(?:[^'\\\n]|\\.)*'?|\"(?:[^\"\\\n]|\\.)*\"?)"
    r"|(?P<template>`(?:[^`\\]|\\.)*`?)"
    r"|(?P<num>\d[\w.]*|\.\d[\w.]*)"
    r"|(?P<name>[A-Za-z_$\u0080-\uffff][\w$\u0080-\uffff]*)"
    r"|(?P<punct>=>|\.\.\.|\?\.|\?\?=?|[=!]==?|&&=?|\|\|=?|\*\*=?|<<=?|>>>?=?|\+\+|--|[-+*/%&|^<>]=?|[{}()\[\];,.:?~!=])"
    r"|(?P<other>.)",
    re.S,
)


@settings(max_examples=400)
@given(st.text(alphabet="'\"`\\\n/*ab 1.<!-", max_size=24))
def test_js_token_regex_with_unrolled_loops_reads_the_same_tokens(text: str) -> None:
    for i in range(len(text)):
        a, b = _JS_TOKEN_NESTED.match(text, i), _xss._TOKEN.match(text, i)
        assert a is not None and b is not None and (a.lastgroup, a.end()) == (b.lastgroup, b.end())


def test_sql_fingerprints_are_the_reference_tokenizers() -> None:
    """Generated texts (SQL, shell and script fragments, and characters where `str.isdigit` and `\\d` part
    ways) with the fingerprints and answers of the tokenizer before its fast paths (written by
    `bench/waf_detector_check.py --against REF --write-golden tests/waf/data/sqli_fingerprints.json`)."""
    rows = json.loads((Path(__file__).parent / "data" / "sqli_fingerprints.json").read_text(encoding="utf-8"))
    assert len(rows) == 3000
    for text, fps, sqli in rows:
        assert (_sqli.fingerprints(text), _sqli.is_sqli(text)) == (fps, sqli), text


@settings(max_examples=400)
@given(st.text(alphabet="ab$'\"\\ /.-{}@;|\n", max_size=30))
def test_obfuscation_candidates_are_the_word_runs_holding_a_splitting_sign(text: str) -> None:
    runs = [m.span() for m in _shell._OBF_WORD.finditer(text) if _shell._SPLITTING.search(m.group())]
    assert [m.span() for m in detector_reference._OBF_SPLIT_WORD.finditer(text)] == runs
    assert sorted(_shell._split_word_runs(text)) == runs
    assert _shell.is_obfuscated_command(text) == detector_reference.shell_is_obfuscated_command(text)


@settings(max_examples=300)
@given(
    st.lists(st.sampled_from(["cat", " /etc/passwd", " -la", "at", " x", "ls", "$IFS", "<", ">", " ", "a=b", "sudo"]), max_size=6)
)
def test_remembered_segment_commands_are_the_read_ones(parts: list[str]) -> None:
    seg = _shell.Segment(";", "".join(parts))
    read = _shell._command(seg.words) if _shell._may_command(seg.text) else None
    assert _shell._segment_command(seg) == read and _shell._segment_command(seg) == read  # cold, then remembered


SQL_TOKEN_BITS = [*SQL_BITS, "/", "/*", "*/", "//", "0", "12", "0x1f", ".5", ".", ":", "::", ":=", "#", "#a", "--", "-1", "-",
                  "@", "@@v", "{", "[", "?", "\\", "٣", "²", ".²", "“", "union", "select", "1or1", "sleep(", "!=", "<>"]  # fmt: skip


@settings(max_examples=500)
@given(st.lists(st.sampled_from(SQL_TOKEN_BITS) | st.text(max_size=2), max_size=16).map("".join))
def test_sql_tokens_with_the_commonest_characters_first_are_the_reference(text: str) -> None:
    """Quotes, words, `/`, ASCII digits tested first in _tokens: the tokens of the original order."""
    for quote in ("", "'", '"', "`"):
        assert _sqli._tokens(quote + text, quote) == detector_reference.sql_tokens(quote + text, quote)


@settings(max_examples=500)
@given(st.text(alphabet="/*ab \n", max_size=30))
def test_sql_comments_dropped_by_find_are_the_regex_substitution(text: str) -> None:
    joined = detector_reference.SQL_COMMENT.sub("", text)
    assert _sqli._without_comments(text) == (joined if joined != text else None)


SHELL_BITS = [";", "|", "||", "&", "&&", "`", "(", ")", "$(", "<(", ">(", "$", "<", ">", " ", "cat", " /etc/passwd", " -la", "at",
              " u", "id", "x", "a b", "data:image/png", "|a|b|", "+---+", "?", "iconv", "\n", "echo", "dog", "'"]  # fmt: skip


@settings(max_examples=500)
@given(st.lists(st.sampled_from(SHELL_BITS) | st.text(max_size=2), max_size=14).map("".join))
def test_shell_segments_split_in_c_and_read_once_are_the_reference(text: str) -> None:
    """Segments by one regex split, each read once (remembered with both of its shell-like answers), and
    the first command enough for is_command_injection: the loop over the segments it replaced."""
    folded = _shell.fold(text)
    assert [(s.opener, s.text) for s in _shell.segments(folded)] == [
        (s.opener, s.text) for s in detector_reference.shell_segments(folded)
    ]
    found = detector_reference.shell_injected_commands(text)
    assert _shell.injected_commands(text) == found
    assert _shell.injected_commands(text, first_only=True) == found[:1]


OBFUSCATION_BITS = ["c'a't", "w\\ho", "am'i", "$x", "${x}", "$@", "sh$xx", "cat", " ", ";", "'", '"', "\\", "$", "é", "/", "-c",
                    "curl", "a.b", "{", "}", "|", "\n", "who"]  # fmt: skip


@settings(max_examples=500)
@given(st.lists(st.sampled_from(OBFUSCATION_BITS) | st.text(max_size=2), max_size=14).map("".join))
def test_obfuscated_commands_found_from_the_signs_are_the_reference(text: str) -> None:
    assert _shell.is_obfuscated_command(text) == detector_reference.shell_is_obfuscated_command(text)
    low = text.lower()
    assert sorted(_shell._split_word_runs(low)) == [m.span() for m in detector_reference._OBF_SPLIT_WORD.finditer(low)]


JSON_BITS = ["{", "}", "[", "]", ":", "::", ":=", ",", '"a"', '""', '"', "1", "1.5", "1.", "1e5", "1e", "0x1", "-1", "true", "false",
             "null", "nulls", " ", "\n", "or", "and", "٣", "e", ".", "'", "`", "union select", '"x\' or 1=1--"']  # fmt: skip


@settings(max_examples=600)
@given(st.lists(st.sampled_from(JSON_BITS) | st.text(max_size=2), min_size=8, max_size=40).map("".join))
def test_sql_bare_contexts_skipped_as_json_data_are_the_reference(text: str) -> None:
    """A bare context opening with JSON data is skipped: its fingerprint holds `s`, `,` and `1` alone."""
    if detector_reference.JSON_DATA_PREFIX.match(text):
        fp = _sqli._tokens(text)
        assert len(fp) == _sqli.MAX_TOKENS and set(fp) <= set("s,1")
        assert _sqli._HARMLESS_PREFIX.match(text)  # (which skips them now)
    assert _sqli._injection(text) == detector_reference.sql_injection(text)


@settings(max_examples=500)
@given(st.text(alphabet="/ ;|&=(`a?*[]\n\t'\"<>é)x\u00a0", max_size=20))
def test_glob_words_led_by_their_slash_are_the_reference(text: str) -> None:
    assert [m.span() for m in _shell._GLOB_WORD.finditer(text)] == [m.span() for m in detector_reference.GLOB_WORD.finditer(text)]


@settings(max_examples=300)
@given(st.text(alphabet="$(<>`{[ab)", max_size=20))
def test_substitution_openers_led_by_literals_are_the_reference(text: str) -> None:
    assert [m.span() for m in _shell._SUBST.finditer(text)] == [m.span() for m in detector_reference.SUBST.finditer(text)]


@settings(max_examples=300)
@given(st.text(alphabet="()\0ab=*\\é", max_size=16), st.integers(0, 16))
def test_ldap_value_end_in_c_is_the_loop(text: str, i: int) -> None:
    i = min(i, len(text))  # (an operator's end: never past the text)
    assert _ldap._value_end(text, i) == detector_reference.ldap_value_end(text, i)


@settings(max_examples=400)
@given(st.lists(st.sampled_from(["db", "DB", "Db", ".", " ", "x", "find", "(", "_", "é", "a.", "1", "K", "ſ", "users"]), max_size=10).map("".join))
def test_nosql_db_calls_led_by_the_literal_are_the_reference(text: str) -> None:
    a, b = _nosql._DB_CALL.search(text), detector_reference.DB_CALL.search(text)
    assert (a and a.span()) == (b and b.span())


def _top_level_alternatives(pattern: str) -> list[str]:
    """The alternatives of a regex's top level (no escaped `|` or class holds one in the shapes)."""
    alts, depth, cur, i = [], 0, "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            cur, i = cur + pattern[i : i + 2], i + 2
            continue
        if c == "[":
            end = pattern.index("]", i + 1)
            cur, i = cur + pattern[i : end + 1], end + 1
            continue
        depth += (c == "(") - (c == ")")
        if c == "|" and depth == 0:
            alts.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    return [*alts, cur]


_ALTERNATIVES = _top_level_alternatives(_sqli._SHAPES.pattern)
_ANCHORED = re.compile("|".join(a for a in _ALTERNATIVES if a.startswith("^")))
_FP_LETTERS = "s1nvVfFkLESU&=*ocxu?(),;"


def test_shapes_are_anchored_but_three() -> None:
    """The proof of _fingerprint reads the anchored alternatives by their first letters: the others are
    these three (a new one needs its own stage there)."""
    assert [a for a in _ALTERNATIVES if not a.startswith("^")] == [r"U\(*S\(*(?:[1suvVfF*(k]|n[,)k])", ";x", "kn?k1[o=]1"]
    assert "|".join(_ALTERNATIVES) == _sqli._SHAPES.pattern
    assert all(p.pattern.startswith("^") and "|" not in p.pattern.replace("(?:c|&$)", "").replace("(?:;[ESUx]|U)", "")
               for p in (_sqli._QUOTED_SHAPES, _sqli._BACKTICK_SHAPES))  # fmt: skip
    assert set(_sqli._ANY) == set(_FP_LETTERS)


@settings(max_examples=3000)
@given(st.text(alphabet=_FP_LETTERS, min_size=2, max_size=10), st.text(alphabet="(1svF&)", max_size=3))
def test_fingerprints_led_by_dead_letters_match_no_anchored_shape(fp: str, lead: str) -> None:
    """_anchored_dead: no anchored alternative (_SHAPES', _QUOTED_SHAPES, _BACKTICK_SHAPES) matches a
    fingerprint whose first letters it calls dead (led by the letters the alternatives branch on)."""
    for text in (fp, lead + fp, fp[:1] + lead + fp[1:], fp[:2] + lead + fp[2:]):
        if len(text) >= 2 and _sqli._anchored_dead(text[:3]):
            assert not (_ANCHORED.search(text) or _sqli._QUOTED_SHAPES.search(text) or _sqli._BACKTICK_SHAPES.search(text)), text


@settings(max_examples=1000)
@given(st.lists(st.sampled_from([*_FP_LETTERS, "1&"]), max_size=_sqli.MAX_TOKENS))
def test_keyword_shape_starts_by_the_sixth_token(tokens: list[str]) -> None:
    """`kn?k1[o=]1` matches no fingerprint of at most MAX_TOKENS tokens without a `k` in the first _K_BY."""
    if "k" not in tokens[: _sqli._K_BY]:
        assert not re.search("kn?k1[o=]1", "".join(tokens))


STAGED_BITS = [*SQL_TOKEN_BITS, "union", " union select ", "select", ";", "; exec", "xp_x", "sp_x", "openrowset", "exec",
               " having ", " order by ", " limit ", " from ", " on ", "1=1", " and ", " or ", "a b", "x", "(", ")", "'", '"',
               "@v", "@@v", "true", "1&", "-- ", "#", "k", " div ", "1or", "group", " by ", "top", "all"]  # fmt: skip


@settings(max_examples=1500)
@given(st.lists(st.sampled_from(STAGED_BITS) | st.text(max_size=2), max_size=16).map("".join))
def test_sql_fingerprints_read_in_stages_are_the_reference(text: str) -> None:
    """_fingerprint gives _tokens' fingerprint or None where no shape matches it; _injection the answer
    of the unstaged reading."""
    text = text.lower()
    for quote in ("", "'", '"', "`"):
        fp = _sqli._tokens(quote + text, quote)
        staged = _sqli._fingerprint(quote + text, quote, [])
        assert staged == fp or (
            staged is None and not (_sqli._SHAPES.search(fp) or _sqli._QUOTED_SHAPES.search(fp) or _sqli._BACKTICK_SHAPES.search(fp))
        )
    assert _sqli._injection(text) == detector_reference.sql_injection_unstaged(text) == detector_reference.sql_injection(text)


READ_BITS = ["at", " ", "x", "-l", "--all", "/etc/passwd", "/s", "/?", "https://a.b/c", "10.0.0.1", "1", "22", "cat", "net", "user",
             "whoami", "ifconfig", "echo", "sleep", "curl", "dir", "sudo", "a=b", "$x", ">", "2>&1", "/tmp/x", "~/x", "id", "ls",
             "reg", "query", "nc", "w", "systeminfo", "e.req", ",", "\t", "é", "passwd"]  # fmt: skip


@settings(max_examples=1500)
@given(st.lists(st.sampled_from(READ_BITS) | st.text(max_size=2), max_size=8).map(" ".join))
def test_segment_readings_with_strong_arguments_read_once_are_the_reference(text: str) -> None:
    """_read: both shell-like answers from one reading of the strong arguments and the flags where they
    decide, _flags and _strong_args without a generator: as _shell_like computed them."""
    assert _shell._read(text) == detector_reference.shell_read(text)
    cmd = _shell._command(_shell._words(text))
    if cmd is not None:
        assert _shell._flags(cmd) == detector_reference.shell_flags(cmd)
        assert _shell._strong_args(cmd) == detector_reference.shell_strong_args(cmd)
        for broke_out in (False, True):
            assert _shell._shell_like(cmd, broke_out) == detector_reference.shell_like(cmd, broke_out)


@settings(max_examples=800)
@given(st.lists(st.sampled_from(["$", "$1", "$@", "$*", "${x}", "$(", ")", "$()", "``", "`", "{a,b}", "{", "}", ",", "\\", "\\\n",
                                 "'", '"', "^", "$ifs", "${ifs}", "a", " ", "é", "$$", "$a"]) | st.text(max_size=2), max_size=12).map("".join))
def test_fold_with_expansions_found_from_their_start_is_the_reference(text: str) -> None:
    assert _shell.fold(text) == detector_reference.shell_fold(text)


JS_BITS = ["'", '"', "`", "${", "}", "(", ")", ";", ",", "+", "-", ".", "[", "]", "{", "function", "()", "=>", "alert(1)", "x", "1",
           "return", "in", "document.cookie", "</script>", "\n", " ", "/", "/a/", "//c", "/*", "*/", "e", "this", "new", "f(x)",
           ".call(", "try", "catch(e)", "==", "?.", "é"]  # fmt: skip


@settings(max_examples=1500)
@given(st.lists(st.sampled_from(JS_BITS) | st.text(max_size=2), max_size=14).map("".join))
def test_js_contexts_read_from_their_first_token_are_the_reference(text: str) -> None:
    """_quoted_contexts reads a context whole only where its first token keeps it; parses with _operand
    inlined; is_js_function_injection reading each context once: as before."""
    assert _xss._quoted_contexts(text) == detector_reference.js_quoted_contexts(text)
    tokens = _xss.tokenize(text)
    assert _xss.parses(tokens) == detector_reference.js_parses(tokens)
    for limit in (0, 1, 3):
        assert _xss.tokenize(text, limit) == tokens[:limit]
    assert _xss.is_js_function_injection(text) == detector_reference.js_function_injection(text)


HARMLESS_BITS = [*STAGED_BITS, "==", "===", "<=", "<", ">", ">>", "<<", "<>", "!=", "!<", "!", "|", "&", "::", ":=", "#'", "#/", "->", "-x",
                 "-é", "count(", "sleep (", "sleep\t(", "user", "char", "exists", "if(", "left (", "X", "\x00", "\u00a0", "2px", "a1",
                 "and1", "or(", "xor'", "1xor", "0xfaor 1", "set", "desc", "null", "like", "div", "%", "^", "~", "+", "*", ".a", "''", '""']  # fmt: skip


@settings(max_examples=3000)
@given(st.lists(st.sampled_from(HARMLESS_BITS) | st.text(max_size=2), max_size=18).map("".join))
def test_contexts_of_harmless_tokens_have_no_needed_letter(text: str) -> None:
    """_HARMLESS_PREFIX reads the tokens _read_tokens reads: where it matches, the fingerprint holds no
    _NEEDED letter, and _injection skips the context with the same answer."""
    text = text.lower()
    for quote in ("", "'", '"', "`"):
        context = quote + text
        if _sqli._HARMLESS_PREFIX.match(context):
            assert _sqli._NEEDED.isdisjoint(_sqli._tokens(context, quote)), context
    assert _sqli._injection(text) == detector_reference.sql_injection_unstaged(text)


LDAP_BITS = [":=", ":dn:=", ":dn:x:=", ":1.2.3:=", ":caseexactmatch:=", "cn", "CN", "uid", "\u212a", "ſ", "a", "x1", "(", ")", "*", "&",
             "|", "!", " ", "\t", "=", "~=", ">=", ";", ".", "-", "objectclass", "objectClass", "mail", "é", "(&", "(|(", ")(", "\0"]  # fmt: skip


@settings(max_examples=1500)
@given(st.lists(st.sampled_from(LDAP_BITS) | st.text(max_size=2), max_size=14).map("".join))
def test_ldap_gates_are_the_reference(text: str) -> None:
    """The extensible match searched only before each `:=`, the whole-filter pass only where a telling
    leaf or composite can open: the answers of the scans they gate."""
    assert _ldap._extensible(text) == detector_reference.ldap_extensible(text)
    assert _ldap._whole_filter(text) == detector_reference.ldap_whole_filter(text)
