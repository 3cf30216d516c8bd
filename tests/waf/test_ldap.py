"""The LDAP filter detector (waf/_ldap.py): injections generated here from RFC 4515's parts — a value
that closes the application's item and opens filters, a whole filter, an extensible match — and the
parentheses of prose, maths, emoticons, code and search text."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.waf.placing import placements
from waf import Request, inspect
from waf._ldap import _Filter, is_ldap_injection, parse

ATTRS = ("uid", "cn", "mail", "objectClass", "userPassword", "sAMAccountName")
PREFIXES = ("", "*", "admin", "admin*", "j.doe")


def _breakouts() -> list[str]:
    out = []
    for pre, attr in itertools.product(PREFIXES, ATTRS):
        out += [f"{pre})({attr}=*", f"{pre})(|({attr}=*))", f"{pre})(&({attr}=*)", f"{pre}))(|({attr}=*"]
    out += [f"{pre})(&)" for pre in PREFIXES] + [f"{pre})(|)" for pre in PREFIXES]
    out += [f"{pre}){op}({attr}=*" for pre, op, attr in itertools.product(PREFIXES, "&|!", ATTRS[:2])]
    out += ["x)(!(cn=nobody))", "*)(uid=*))(|(uid=*", "admin*)((|userPassword=*)"]
    return out


def _whole_filters() -> list[str]:
    out = []
    for a, b in itertools.combinations(ATTRS[:4], 2):
        out += [f"(|({a}=x*)({b}=*))", f"(&({a}=admin)(!({b}=q)))", f"*(|({a}=*))"]
    out += ["(&(uid=admin)(!(&(1=0)(userPassword=q))))", "(objectClass=*)", "(uid=*)"]
    return out


EXTENSIBLE = ["userPassword:2.5.13.18:=secret", "cn:dn:=admin", "uid:caseExactMatch:=Admin", "ou:dn:2.4.6.8.10:=x"]


@pytest.mark.parametrize("value", _breakouts() + _whole_filters() + EXTENSIBLE)
def test_generated_injections_are_read_as_ldap(value):
    assert is_ldap_injection(value), value


@pytest.mark.parametrize("value", ["*)(uid=*))(|(uid=*", "admin)(&)", "*(|(objectclass=*))", "userPassword:2.5.13.18:=123",
                                   "(&(uid=admin)(!(&(1=0)(userPassword=q))))"])  # fmt: skip
def test_every_placement_and_encoding_blocks(value):
    missed = [(where, enc) for where, enc, req in placements(value) if not inspect(req).blocked]
    assert missed == []


CLEAN = [
    "(see above)", "Paris (France) (2019)", "so happy :-)(", "f(x) (y)", "(555) 123-4567", "})(window);",
    "(function(){ return 1 })()", "(0,o.default)(e=n)", "(0,r.f)(o=e.x)", "fetch(url)(name=x)", "(a=b)(c=d)", "if (a == b) (c = d)", "(a=*)",
    "x := 1", "a:b:=c", "jane.doe@example.org", "a:not(.x) { color: red }", "foo* bar*", "name=*", "(x)(y)(z)",
    "Tom (&) Jerry", "(!)", "price (USD) = 5", "see (a) and (b=2)",
]  # fmt: skip


@pytest.mark.parametrize("text", CLEAN)
def test_parentheses_of_ordinary_text_are_not_ldap(text):
    assert not is_ldap_injection(text), text


_FILTERISH = st.text(alphabet="()&|!=*~<>: abcu01\\", max_size=60)


@settings(max_examples=300, deadline=None)
@given(_FILTERISH)
def test_the_tokenizer_never_raises_and_stays_in_bounds(text):
    is_ldap_injection(text)
    for i, c in enumerate(text):
        if c == "(":
            end = parse(text, i, _Filter(), open_end=False)
            assert end is None or i < end <= len(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="():"), max_size=80))
def test_a_value_without_parentheses_or_an_extensible_match_never_fires(text):
    assert not is_ldap_injection(text)


def test_a_search_box_with_parentheses_passes_and_its_breakout_is_blocked():
    assert not inspect(Request.make("GET", "/people?q=Smith%20(Sales)%20(Berlin)")).blocked
    assert inspect(Request.make("GET", "/people?q=Smith)(%7C(uid%3D*))")).blocked


def test_long_hostile_values_are_read_in_one_pass():
    """Nested and unclosed groups, runs of `)` and `) (`: one pass each (a parse from every `(` or a
    skip from every `)` would be quadratic). No timing: a regression hangs the test."""
    n = 20000
    for value in (")(" * n, "(|" * n + "(a=b)" * n, "(&" * n + ")" * n, ") (" * n, "(a=" * n, ")" + " " * n + "("):
        is_ldap_injection(value)
    assert is_ldap_injection("(|" * n + "(uid=*)" + ")" * n)
