"""The views' functions give what they gave before their speed rewrites (tests/waf/decode_reference.py holds
the code replaced): percent escapes decoded by one codec call, backslash escapes read piece by piece, the
entity guard's legacy names as a prefix tree, the command-line view on UTF-8 bytes, the path view's
`.`-segment test. Values are built from pieces that reach each fast path's edges: `%` with and without
hex digits, `\\` runs of every parity, `&` before names and numbers, NUL, CR/LF and other blanks,
characters past ASCII and past Latin-1, capitals whose lower case is not one character, lone surrogates,
and the empty string."""

import base64
import html.entities

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.waf import decode_reference as ref
from waf import _decode

_EDGE_CHARS = ["", "a", "Z", "0", "7", "9", "f", "G", "u", "x", "{", "}", " ", "\x00", "\r", "\n", "\t", "é", "ÿ", "\u4e2d",
               "\udcff", "\ud83d", "\U0001f600", "/", ";", ".", "+", "\x01"]  # fmt: skip

_PCT_PIECES = _EDGE_CHARS + ["%", "%2", "%25", "%41", "%4a", "%C3%A9", "%c3", "%A9", "%c0%af", "%e0%80%ae", "%ff", "%0", "%00",
                             "%u0041", "%u4E2D", "%uD83D", "%u12", "%%", "\\", "\\x41", "%5C", "%0D%0A", "%2541"]  # fmt: skip
_BS_PIECES = _EDGE_CHARS + ["\\", "\\\\", "\\\\\\", "\\u0041", "\\u00e9", "\\uD83D", "\\u{1F600}", "\\u{110000}", "\\u{}", "\\u{41",
                            "\\x41", "\\xZ", "\\x4", "\\101", "\\777", "\\8", "\\0", "\\n", "\\r", "\\t", "\\b", "\\f", "\\v",
                            "\\\"", "\\'", "\\/", "\\q", "\\a", "\\N", "\\U", "\\%", "\\\n"]  # fmt: skip
_AMP_PIECES = _EDGE_CHARS + ["&", "#", "x", "X", "amp", "AMP", "not", "notin", "lt", "Tab", "tab;", "newline;", "frac12", "frac1",
                             "Aacute", "aacut", "&#65", "&#x41", "&#X4a;", "&#1114112;", "&#0;", "b=2", "a" * 33]  # fmt: skip
_CMD_PIECES = _EDGE_CHARS + ["A", "Q", "\\", '"', "'", "^", ",", "  ", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u3000",
                             "\u2028", "É", "Σ", "σ", "İ", "\u212a", "ß", "ǅ", "\u2160", "Ⓐ"]  # fmt: skip
_PATH_PIECES = _EDGE_CHARS + ["/", "//", "///", "\\", ".", "..", "/./", "/../", "./", "../", ";a=1", ";", "...", ".a"]


def _texts(pieces: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(pieces), max_size=14).map("".join) | st.text(max_size=12)


@settings(max_examples=400)
@given(_texts(_PCT_PIECES))
def test_percent_decoding_by_the_escape_codec_equals_the_old_decoder(value: str) -> None:
    assert _decode.url_decode(value) == ref.url_decode(value)
    assert _decode._pct_sub_all(value) == ref.pct_sub_all(value)


@settings(max_examples=400)
@given(_texts(_BS_PIECES))
def test_backslash_escapes_read_piece_by_piece_equal_the_regex(value: str) -> None:
    assert _decode.backslash_decode(value) == ref.backslash_decode(value)


@settings(max_examples=300)
@given(_texts(_AMP_PIECES))
def test_entity_guard_with_names_as_a_prefix_tree_equals_the_flat_list(value: str) -> None:
    assert (_decode._ENTITY.search(value) is None) == (ref.ENTITY.search(value) is None)
    assert _decode.html_decode(value) == ref.html_decode(value)


def test_prefix_tree_matches_where_a_legacy_name_starts_and_nowhere_else() -> None:
    tree = _decode.re.compile(_decode._prefix_tree(_decode._LEGACY_NAMES))
    names = set(_decode._LEGACY_NAMES)
    assert names == {k for k in html.entities.html5 if not k.endswith(";")}
    for name in names:
        for text in (name, name + "x", name[:-1], name[1:], name.swapcase()):
            assert (tree.match(text) is not None) == any(text.startswith(n) for n in names), text


@given(st.sets(st.text(alphabet="ab.", min_size=1, max_size=4), min_size=1, max_size=8), st.text(alphabet="ab.", max_size=6))
def test_prefix_tree_matches_where_one_of_its_words_starts(words: set[str], text: str) -> None:
    tree = _decode.re.compile(_decode._prefix_tree(words))  # (words that are prefixes of others among them)
    assert (tree.match(text) is not None) == any(text.startswith(w) for w in words)


@settings(max_examples=300)
@given(_texts(_PCT_PIECES + _AMP_PIECES + _BS_PIECES), st.integers(1, 4))
def test_decode_chain_stopping_mid_round_equals_the_old_chain(value: str, rounds: int) -> None:
    assert _decode.decode_chain(value, rounds) == ref.decode_chain(value, rounds)


def test_decode_chain_of_layers_nested_deeper_than_its_rounds() -> None:
    value = "%2526lt%253B"  # percent, percent, entity
    for rounds in (1, 2, 3):
        assert _decode.decode_chain(value, rounds) == ref.decode_chain(value, rounds)
    assert _decode.decode_chain(value) == ("<", ("percent", "percent", "entity"))


@settings(max_examples=400)
@given(_texts(_CMD_PIECES))
def test_cmdline_on_utf8_bytes_equals_the_old_view(value: str) -> None:
    assert _decode.cmdline(value) == ref.cmdline(value)


@given(st.text(max_size=16))
def test_cmdline_on_any_text_equals_the_old_view(value: str) -> None:
    assert _decode.cmdline(value) == ref.cmdline(value)


@settings(max_examples=300)
@given(_texts(_PATH_PIECES))
def test_path_view_with_its_dot_segment_test_equals_the_old_one(value: str) -> None:
    assert _decode.normalize_path(value) == ref.normalize_path(value)


@given(_texts(_PATH_PIECES + ["*", "/*", "*/", "**", "/**/"]))
def test_comments_removed_after_a_one_character_test_as_before(value: str) -> None:
    assert _decode.remove_comments(value) == ref.remove_comments(value)


_UTF8_EDGES = [b"\x00", b"a", b"\x7f", b"\x80", b"\xbf", b"\xc0", b"\xc1", b"\xc2", b"\xdf", b"\xe0", b"\xe1", b"\xec", b"\xed",
               b"\xee", b"\xef", b"\xf0", b"\xf1", b"\xf3", b"\xf4", b"\xf5", b"\xff", b"\x8f", b"\x90", b"\x9f", b"\xa0"]  # fmt: skip


@settings(max_examples=500)
@given(st.binary(max_size=24) | st.lists(st.sampled_from(_UTF8_EDGES), max_size=8).map(b"".join)
       | st.text(max_size=8).map(lambda t: t.encode("utf-8", "surrogatepass")))  # fmt: skip
def test_utf8_read_after_a_regex_check_equals_the_error_handler_reading(raw: bytes) -> None:
    assert _decode._utf8(raw) == ref.utf8(raw)


def test_utf8_check_on_every_lead_and_second_byte() -> None:
    for lead in range(0x80, 0x100):
        for second in range(0x100):
            for tail in (b"", b"\x80", b"\x80\x80", b"\xbf\xbf", b"a"):
                raw = bytes([lead, second]) + tail
                assert _decode._utf8(raw) == ref.utf8(raw), raw


_B64_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_"


@settings(max_examples=500)
@given(st.binary(min_size=4, max_size=24).map(lambda b: base64.b64encode(b).decode()) | st.lists(st.sampled_from(_B64_DIGITS + "= "),
       min_size=6, max_size=24).map("".join) | st.text(max_size=12).map(lambda t: base64.urlsafe_b64encode(t.encode("utf-8",
       "surrogatepass")).decode().rstrip("=")))  # fmt: skip
def test_base64_rejecting_digits_that_start_no_utf8_equals_decoding_them(value: str) -> None:
    assert _decode.try_base64(value) == ref.try_base64(value)


def test_base64_digits_that_start_no_utf8_are_exactly_those_of_bytes_0x80_to_0xbf_and_past_0xf7() -> None:
    for digit in _B64_DIGITS:
        first = base64.b64decode((digit + "AAA").replace("-", "+").replace("_", "/"))[0]
        assert (digit in _decode._NO_UTF8_START) == (0x80 <= first <= 0xBF or first >= 0xF8), digit


@settings(max_examples=300)
@given(st.lists(st.sampled_from(_CMD_PIECES + ["\u4e2d\u6587", "ä", "A" * 40, "x" * 60]), max_size=24).map("".join))
def test_lowercase_by_bytes_is_str_lower(value: str) -> None:
    """Past ASCII and long enough, lowered as UTF-8 bytes when no character past ASCII changes; Python's
    own lowering otherwise, compiled or not (a final capital sigma becomes ς, not mypyc's σ)."""
    assert _decode.lowercase(value) == value.lower()
