"""GraphQL documents read as GraphQL: their string literals and comments are the data."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from waf._graphql import graphql_values


def test_a_document_yields_its_string_literals_and_comments():
    doc = 'query Q($a: Int = -1) { f(s: "x\\"y", b: """block "q" text""", n: 1.5e3) @include(if: $a) { ...F } } # note'
    assert graphql_values(doc) == ['x"y', 'block "q" text', " note"]
    assert graphql_values("{ a { b } }") == []


def test_anything_else_is_not_a_document():
    for text in ("1' or 1=1--", "query", "{ a", "{ a } }", "query { a(x: 'b') }", "{ a } ; rm -rf /",
                 "hello world", '{ a(s: "open', "<script>{ a }</script>", "mutation { a } /* x */"):  # fmt: skip
        assert graphql_values(text) is None, text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_the_lexer_never_raises(text):
    assert graphql_values("{ " + text) is None or isinstance(graphql_values("{ " + text), list)
