"""The engine's fast paths decide exactly what the value-by-value scan decides.

Many values of a request are scanned together (joined by newlines, with a multi-line twin database) and
only the flagged ones again alone; what a value's scans found is remembered across requests; a plain
value skips the decoders; a one-segment path skips the path normalizer. Each must leave verdicts alone:
anchored rules still match a value in the middle of a batch, CR/LF rules still see line breaks, layers
(percent, entities, base64) are still decoded on a value seen before.
"""

import base64
import binascii
import html
import re
from unittest.mock import patch
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waf import Engine, EngineConfig, Request, Verdict, _decode
from waf._decode import html_decode, normalize_path
from waf._engine import _Group, _plain

_ENGINE = Engine()
_FORGETFUL = Engine(EngineConfig(value_memory=0))

# Pieces that trip rules (anchored ones among them) and pieces of ordinary text, to mix into values.
_PIECES = [
    "4294967296",  # anchored: the whole value is an integer-overflow probe
    "$where",  # anchored NoSQL operator name
    "' OR 1=1--",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "${jndi:ldap://x/a}",
    "hello",
    "price",
    "en-US,en;q=0.9",
    "Mozilla/5.0 (X11; Linux x86_64)",
    "a\r\nb",
    " ",
    "\n",
    "%27%20OR%201%3D1--",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",  # base64 of <script>alert(1)</script>
    "1",
    "",
]
_values = st.lists(st.lists(st.sampled_from(_PIECES), max_size=3).map("".join), min_size=1, max_size=12)


def _query(values: list[str]) -> Request:
    return Request.make("GET", "/s?" + "&".join(f"p{i}={quote(v, safe='')}" for i, v in enumerate(values)))


def _one_by_one(engine: Engine, req: Request) -> Verdict:
    """The verdict of the plain value-by-value scan: every value flagged, so every value is scanned alone."""
    with patch.object(_Group, "flag", lambda _self, batch: set(range(len(batch.texts)))):
        return engine.inspect(req)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_values)
def test_a_batch_of_values_matches_what_each_value_alone_matches(values: list[str]) -> None:
    req = _query(values)
    assert _FORGETFUL.inspect(req) == _one_by_one(_FORGETFUL, req)


def test_anchored_rule_matches_a_value_in_the_middle_of_a_batch() -> None:
    values = ["hello", "world", "4294967296", "price", "en"]
    v = _FORGETFUL.inspect(_query(values))
    assert any(m.location == "query:p2" and "4294967296" in m.matched for m in v.matches)


def test_line_break_rule_still_sees_the_line_break_of_one_name_among_many() -> None:
    query = "&".join([f"f{i}=x" for i in range(20)] + ["a%0D%0Ab=1", "z=2"])
    batched = _FORGETFUL.inspect(Request.make("GET", "/f?" + query))
    crlf = [m for m in batched.matches if m.category == "crlf"]
    assert crlf and crlf[0].location == "query:a\r\nb"
    clean = Request.make("GET", "/f?" + query.replace("%0D%0A", ""))
    assert not [m for m in _FORGETFUL.inspect(clean).matches if m.category == "crlf"]


def test_a_remembered_value_keeps_its_layers_and_locations() -> None:
    engine = Engine(EngineConfig(value_memory=64))
    clean = _query(["hello", "a%20b"])
    attack = _query(["hello", "%27%20OR%201%3D1--", "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="])
    first = engine.inspect(attack)
    assert not engine.inspect(clean).blocked
    again = engine.inspect(attack)
    assert first == again and again.blocked
    assert any("base64" in m.decode_chain for m in again.matches)
    assert first == _FORGETFUL.inspect(attack)
    moved = Request.make("GET", "/s?other=%27%20OR%201%3D1--")
    assert {m.location for m in engine.inspect(moved).matches if m.category == "sqli"} == {"query:other"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_values, min_size=1, max_size=4))
def test_memory_never_changes_a_verdict(requests: list[list[str]]) -> None:
    engine = Engine(EngineConfig(value_memory=8))  # small: entries are forgotten and learned again
    for values in requests * 2:
        req = _query(values)
        assert engine.inspect(req) == _FORGETFUL.inspect(req)


# The one-regex form of the plainness test `_plain` replaced (two-character alternatives made it slow).
_NOT_PLAIN = re.compile(
    r"[%&\\\"'^,+\x00-\x1f\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]|/\*| {2}|^ | $"
)


@given(st.text(alphabet=" a1/*%'\n\u3000\ufeff\x85é²", max_size=12))
def test_plain_values_are_those_the_one_regex_finds_nothing_in(value: str) -> None:
    assert _plain(value) == (_NOT_PLAIN.search(value) is None)


@given(st.text(alphabet="ab./\\;", max_size=16))
def test_one_segment_path_fast_path_equals_the_full_normalizer(path: str) -> None:
    def slow(p: str) -> str:
        segs: list[str] = []
        for seg in p.replace("\\", "/").split("/"):
            seg = seg.split(";", 1)[0]
            if seg in ("", "."):
                continue
            if seg == "..":
                if segs:
                    segs.pop()
                continue
            segs.append(seg)
        return "/" + "/".join(segs)

    assert normalize_path(path) == slow(path)


def test_json_body_locations_keep_their_paths() -> None:
    body = '{"a": {"b": [1, {"c": "x\\u0027 OR 1=1--"}]}, "d": "<script>alert(1)</script>"}'
    v = _ENGINE.inspect(Request.make("POST", "/api", {"Content-Type": "application/json"}, body))
    locations = {m.location for m in v.matches}
    assert "json:a.b.1.c" in locations and "json:d" in locations
    nested = Request.make("GET", "/s?q=" + quote('{"k": ["<script>alert(1)</script>"]}'))
    assert {m.location for m in _ENGINE.inspect(nested).matches} >= {"query:q|json.k.0"}


@given(st.text(alphabet="&;#abglmnoqtuxAELMPTX0129 =%", max_size=16))
def test_entity_precheck_skips_only_values_unescape_leaves_alone(value: str) -> None:
    full = _decode._HTML_ENTITY_LOOSE.sub(_decode._entity_sub, value)
    full = _decode._WS_ENTITY.sub(lambda m: "\t" if m.group(0)[1] in "tT" else "\n", full)
    assert html_decode(value) == html.unescape(full)


def test_entity_layer_is_still_decoded_in_a_url_with_query_strings() -> None:
    assert html_decode("/a?x=1&y=2&not=3") == "/a?x=1&y=2¬=3"
    assert html_decode("/a?x=1&utm_source=y") == "/a?x=1&utm_source=y"
    assert html_decode("q=&lt;script&gt;") == "q=<script>"


_PCT = re.compile(r"%(?:u([0-9a-fA-F]{4})|([0-9a-fA-F]{2}))")


def _pct_sub(m: re.Match[str]) -> str:
    """The reference: one regex match and one Python call per escape (what the engine did before)."""
    return _decode._chr(int(m.group(1), 16)) if m.group(1) is not None else chr(int(m.group(2), 16))


@given(st.text(alphabet="%uU0aF9g\u00e9\u4e2d+ /\\x\udcff\U0001f600", max_size=24))
def test_percent_decoding_without_callbacks_equals_the_regex(value: str) -> None:
    assert _decode._pct_sub_all(value) == _PCT.sub(_pct_sub, value)


@given(st.text(alphabet="aB\\\"'^ ,\r\n\r\n\t\u0130x", max_size=16))
def test_cmdline_deletions_equal_a_translate_table(value: str) -> None:
    slow = value.translate(str.maketrans("", "", "\\\"'^")).lower()
    slow = re.sub(r"[\s,]+", " ", re.sub(r"[\r\n]+", ";", slow))
    assert _decode.cmdline(value) == slow


@given(st.text(alphabet=" \t\n\x1c\u3000\xa0\x85\u2028\u200ba,bé", max_size=16))
def test_whitespace_runs_squeezed_by_split_equal_the_regex(value: str) -> None:
    assert _decode.compress_ws(value) == re.sub(r"\s+", " ", value)


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=4), kids, max_size=4),
    max_leaves=12,
))  # fmt: skip
def test_json_values_read_by_orjson_equal_json(doc: object) -> None:
    import json

    from waf._targets import extract

    body = json.dumps(doc)
    req = Request.make("POST", "/api", {"Content-Type": "application/json"}, body)
    got = extract(req).targets
    with patch("waf._targets.orjson.loads", side_effect=ValueError):
        want = extract(req).targets
    assert got == want


def _decode_with_exceptions(value: str) -> str | None:
    """`try_base64`'s decoding step as it was: the base64 module and a strict UTF-8 decode that raises."""
    v = value.strip()
    s = v.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(s + "=" * (-len(s) % 4), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


@given(st.one_of(st.binary(max_size=40), st.text(max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_base64_decoding_without_exceptions_reads_what_the_raising_decoder_reads(raw: bytes) -> None:
    for value in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")):
        if len(value) >= 8 and len(value.rstrip("=")) % 4 != 1:
            expected = _decode_with_exceptions(value)
            got = _decode._utf8(base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_"))
            assert got == expected


# Pieces of text around `&`: entities with and without `;`, legacy names that prefix longer runs
# (`&notify`), numeric ones, and the `&name=value;` of forms and query strings.
_AMP_PIECES = ["&", "#", ";", "x", "X", "1", "amp", "not", "lt", "notin", "Tab", "b=2", " ", "\t", "é", "frac12", "a" * 33]


@given(st.lists(st.sampled_from(_AMP_PIECES), max_size=10).map("".join))
def test_entities_decoded_where_they_start_give_what_unescape_gives_on_the_whole(text: str) -> None:
    assert _decode._ENTITY.sub(_decode._unescape, text) == html.unescape(text)
    if _decode._ENTITY.search(text) is None:
        assert html.unescape(_decode._HTML_ENTITY_LOOSE.sub(_decode._entity_sub, text)) == text


@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=40) | st.text(max_size=20))
def test_printable_share_counted_in_c_equals_the_per_character_count(text: str) -> None:
    def slow(t: str) -> bool:
        n = len(t)
        bad = sum(1 for c in t if not (c.isprintable() or c in "\r\n\t"))
        if bad <= n // 20:
            return True
        if n < 10 or bad > 2 or "\0" in t:
            return False
        return all(" " <= c <= "~" or c in "\r\n\t" for c in t[3:])

    assert _decode._mostly_printable(text) == slow(text)
