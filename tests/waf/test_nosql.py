"""The NoSQL detector (waf/_nosql.py): MongoDB operators in the place of a key and server-side
JavaScript, in attacks generated here from the grammar's parts; and the `$` words of ordinary traffic."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.waf.placing import placements
from waf import Request, inspect
from waf._nosql import OPERATORS, is_js_injection, is_nosql_injection, is_operator_injection

FIELDS = ("username", "password", "email", "token", "id")
COMPARISONS = ("ne", "gt", "gte", "lt", "nin", "in", "regex", "exists", "not")
LITERALS = ("null", '""', "1", "true", '".*"', "[]", '{"$gt": ""}')


def _json_attacks() -> list[str]:
    out = []
    for field, op, lit in itertools.product(FIELDS[:3], COMPARISONS, LITERALS[:4]):
        out.append(f'{{"{field}": {{"${op}": {lit}}}}}')
    out += ['{"$where": "this.role == \'admin\'"}', '{"$or": [{}, {"a": "a"}]}',
            '{"$expr": {"$function": {"body": "function() { return true }", "args": [], "lang": "js"}}}']  # fmt: skip
    return out


def _literal_attacks() -> list[str]:
    """Object literals typed into a scalar: `{$ne: 1}`, `true, $where: '1 == 1'`, `', $or: [ {}, {'x':'x`."""
    out = [f"{{${op}: {lit}}}" for op, lit in itertools.product(COMPARISONS, ("1", "''", "null"))]
    out += [f"{pre}, $where: '{a} == {a}'" for pre, a in itertools.product(("true", "1", "'", "x'"), ("1", "42"))]
    out += [f"', ${op}: [ {{}}, {{ '{f}':'{f}" for op, f in itertools.product(("or", "nor", "and"), ("a", "name"))]
    return out


def _js_attacks() -> list[str]:
    statements = ("return true", "return 1 == 1", "this.password.match(/^a.*/)", "sleep(5000)",
                  "while(true){}", "var d = new Date(); do { x = new Date(); } while (x - d < 3000)",
                  "db.users.drop()", "'a' == 'a")  # fmt: skip
    out = []
    for quote, sep, stmt in itertools.product(("'", '"'), (";", " && ", " || "), statements):
        out.append(f"admin{quote}{sep}{stmt}{'; var z=' + quote if sep == ';' else '//'}")
    out += [f"{q}}}, {{ {f} : {v} }}" for q, f, v in itertools.product(("", "'"), ("password", "'role'"), ("/.*/", "1"))]
    out += ["1; return this.role == 'admin'", "db.accounts.find({})", "db.getCollection('users').remove({})"]
    return out


BRACKETS = [f"{f}[${op}]" for f, op in itertools.product(FIELDS, COMPARISONS)] + ["[$ne]=1", "user[$where]=sleep(100)"]


@pytest.mark.parametrize("value", _json_attacks() + _literal_attacks() + _js_attacks() + BRACKETS)
def test_generated_attacks_are_read_as_nosql(value):
    assert is_nosql_injection(value), value


def test_bracket_parameters_and_json_operators_are_blocked_in_requests():
    for f, op in itertools.product(("user", "password"), ("ne", "gt", "regex", "nin", "exists")):
        assert inspect(Request.make("GET", f"/login?{f}[${op}]=x&other=1")).blocked
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert inspect(Request.make("POST", "/login", form, f"{f}%5B%24{op}%5D=.%2A")).blocked
        doc = json.dumps({f: {f"${op}": None}, "remember": True})
        assert inspect(Request.make("POST", "/login", {"Content-Type": "application/json"}, doc)).blocked


@pytest.mark.parametrize(
    "value", ['{"$ne": null}', "{$gt: ''}", "true, $where: '1 == 1'", "', $or: [ {}, { 'a':'a", "' && this.password.match(/.*/)//",
              "db.injection.insert({ok:1});", "';sleep(5000);'"],  # fmt: skip
)
def test_every_placement_and_encoding_blocks(value):
    missed = [(where, enc) for where, enc, req in placements(value) if not inspect(req).blocked]
    assert missed == []


CLEAN_TEXT = [
    "$5", "US$ 12", "Only $9.99 / month", "Save $20 on orders over $100", "Hello ${name}, you have ${count} messages",
    "export PATH=$HOME/bin:$PATH", "echo $USER in $SHELL", "$('#menu').on('click', fn)", "$.ajax({url: '/x'})",
    "$distinct_id", "$insert_id", "$os", "$browser", "$current_url", "$schema", "$ref", "$id", "$defs", "$type",
    "$values", "$comment", "$filter", "$top", "$search", "$text", "query($id: ID!, $in: [String!]) { a }",
    "it costs $in total", "a ? $gt : $lt", "if (this.password.match(re)) { return true; }",
    "x = \"a\"; this.y = 1", "Fine; return the form by Friday", "Tickets; return 2 adults", "Contact; db.example.com", "salt; pepper", "filters[slug][$eq]",
    "where[price][$lt]", "/api/items/filters[slug][$eq]/details", "ID: $ne-42", "regex: /$ne/", "cost $and tax",
]  # fmt: skip


@pytest.mark.parametrize("text", CLEAN_TEXT)
def test_dollar_words_of_ordinary_traffic_are_not_nosql(text):
    assert not is_nosql_injection(text), text


OPERATOR = st.sampled_from(sorted(OPERATORS))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="$"), max_size=80))
def test_a_value_without_a_dollar_or_javascript_shape_never_is_an_operator(text):
    assert not is_operator_injection(text)
    is_js_injection(text)  # never raises


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(("user", "password", "q")), OPERATOR, st.text(max_size=20))
def test_every_operator_in_a_bracket_name_is_an_injection(field, op, value):
    assert is_operator_injection(f"{field}[${op}]={value}")


def test_long_hostile_values_are_read_in_one_pass():
    """Runs of spaces, separators, quotes and keys (each detector reads them once; a regex searched
    from every character of a run would take minutes here). No timing: a regression hangs the test."""
    n = 20000
    for value in ("x" + " " * n + "y", "'; return true" + " " * n, ";" * n, "; " * n, "'" * n, " " * n + "}", "{$a: " * n):
        is_nosql_injection(value)
    assert is_nosql_injection(" " * n + "'; return true")
