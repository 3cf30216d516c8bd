"""GraphQL documents are their own body class: read as GraphQL, only their string literals are data.

A GraphQL request (`{"query": "query Feed($first: Int) { feed(first: $first) @include(if: $x) {...} }",
"variables": {...}}`) carries a program the server parses with its GraphQL grammar before running
anything: `$first` is a variable, `@include(` a directive, `{ }` a selection set. Read as free text they
look like PHP variable calls and `include(` — so a document is inspected as the server reads it: its
string literals (and comments) are the values that reach resolvers, its syntax is not. The variables are
JSON values of their own and are inspected as such.

Only a value that lexes as a whole as a GraphQL executable document (starting with `query`,
`mutation`, `subscription`, `fragment` or `{`, braces balanced) is read this way: a `query` field holding
anything else (`1' or 1=1--`, shell, markup) stays one value and meets every rule.
"""

from __future__ import annotations

import json
from typing import Final

MAX_DOCUMENT: Final = 256 * 1024
_PUNCT: Final = frozenset("!$&():=@[]{}|")
_NAME_START: Final = frozenset("_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_NAME: Final = _NAME_START | frozenset("0123456789")
_IGNORED: Final = frozenset(" \t\r\n,\ufeff")
_OPERATIONS: Final = ("query", "mutation", "subscription", "fragment")


def _string(text: str, i: int) -> tuple[str, int] | None:
    """The value of the string literal opening at `text[i]` and the index after it."""
    if text.startswith('"""', i):
        j = i + 3
        while True:
            end = text.find('"""', j)
            if end < 0:
                return None
            if text[end - 1] != "\\":
                return text[i + 3 : end], end + 3
            j = end + 3
    j = i + 1
    n = len(text)
    while j < n:
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == '"':
            raw = text[i : j + 1]
            try:
                return str(json.loads(raw)), j + 1
            except ValueError:
                return raw[1:-1], j + 1
        if c in "\r\n":
            return None
        j += 1
    return None


def graphql_values(text: str) -> list[str] | None:
    """The string literals and comments of `text` when it is a GraphQL executable document, else None."""
    stripped = text.lstrip(" \t\r\n,\ufeff")
    if not stripped.startswith(("{", *_OPERATIONS)) or len(text) > MAX_DOCUMENT:
        return None
    out: list[str] = []
    depth = 0
    i, n = 0, len(text)
    last = ""
    while i < n:
        c = text[i]
        if c in _IGNORED:
            i += 1
        elif c == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(text[i + 1 : end])
            i = end
        elif c == '"':
            lit = _string(text, i)
            if lit is None:
                return None
            out.append(lit[0])
            i = lit[1]
            last = '"'
        elif c in _NAME_START:
            while i < n and text[i] in _NAME:
                i += 1
            last = "n"
        elif c.isdigit() or c == "-":
            i += 1
            while i < n and (text[i].isdigit() or text[i] in ".eE+-"):
                i += 1
            last = "1"
        elif text.startswith("...", i):
            i += 3
            last = "."
        elif c in _PUNCT:
            depth += (c == "{") - (c == "}")
            if depth < 0:
                return None
            i += 1
            last = c
        else:
            return None
    return out if depth == 0 and last == "}" else None
