"""NoSQL operator injection: a MongoDB query operator where an application expected a scalar.

A `$` word is everywhere in ordinary traffic: prices (`$5`, `US$ 12`), templates (`${name}`), shell
variables in documentation (`$HOME`), jQuery (`$(".x")`), GraphQL variables (`query($id: ID!)`),
analytics properties (`$distinct_id`, `$os`, `$current_url`), JSON Schema (`$schema`, `$ref`, `$defs`),
.NET type hints (`$type`, `$values`). What makes an injection is a word of the closed list of query
operators (`$ne`, `$gt`, `$regex`, `$where`, ...) in the place of an object key: a JSON key, a bracket
parameter (`user[$ne]=x`, which PHP, Express' qs and Rails turn into `{"user": {"$ne": "x"}}`), or a
key of an object literal typed into a value (`{$ne: 1}`, `', $or: [ {}, {'a':'a`, `true, $where: '1'`).
The place turns a comparison with a value into a condition the attacker chooses.

Server-side JavaScript (`$where`, `$function`, `mapReduce`) is the other shape: a value that leaves
its JavaScript string (a quote, then `;`, `&&` or `||`) and goes on with JavaScript that reads the
document or stalls the server (`this.password.match(...)`, `return true`, `sleep(5000)`,
`while(true)`), or a shell call on a collection (`db.users.insert(`). JavaScript posted as data
(`if (this.password.match(re))` in a saved script) leaves no string and passes.
Written for netguard.
"""

from __future__ import annotations

import re
from typing import Final

from waf._decode import lowercase

# Query operators (and the JavaScript ones) whose place a key takes. Left out on purpose, as they
# name ordinary keys elsewhere: $type/$values/$id/$ref (.NET, JSON Schema), $text/$search/$count/
# $filter/$top/$skip/$select/$orderby (XML-to-JSON text nodes, OData system query options),
# $comment (JSON Schema), $options (only beside $regex).
OPERATORS: Final = frozenset(
    "ne eq gt gte lt lte in nin exists regex where expr function accumulator jsonschema mod all "
    "size elemmatch or and nor not bitsallset bitsanyset bitsallclear bitsanyclear".split()
)
JS_OPERATORS: Final = frozenset({"where", "function", "accumulator"})
# Roots of a designed Mongo-style filter API (Strapi `filters[slug][$eq]=x`, `where[age][$gt]=3`):
# there a comparison operator is the API, only a JavaScript one is an injection.
FILTER_ROOTS: Final = frozenset({"filters", "filter", "where", "criteria", "conditions"})

_ROOT: Final = re.compile(r"([\w-]*)\s*$")  # the parameter's name before its first bracket
_BRACKET: Final = re.compile(r"\[\s*\$(\w+)\s*\]")
# `$op` as an object key in text: after `{`, `,`, `[` or the start (quotes around it allowed), then `:`
# and a value (a literal, an object or array, a quote, a regex, a function).
_KEY: Final = re.compile(
    r"""(?:^|[{,\[(])\s*['"]?\$(\w+)['"]?\s*:\s*(?=[-\d{\['"/]|true\b|false\b|null\b|undefined\b|function\b|new\b|this\b|\w+\s*\()""",
    re.I,
)
_GRAPHQL_TYPE: Final = re.compile(r"\s*:\s*\[?\s*[A-Z]\w*\s*[!\]]?")
# JavaScript after a separator. Matched at each separator (never searched across the value: a search
# that starts at every character of a long run of spaces costs quadratic time).
_SEPARATOR: Final = re.compile(r";|&&|\|\|")
_JS_AFTER: Final = re.compile(
    r"""[ \t\r\n]*(?:"""
    r"""return\s*(?:true\b|false\b|\d+\s*(?:[=!<>]=?|;|//|$)|this\.|['"!(]|\w+\s*\()"""
    r"""|this\.\w+"""
    r"""|(?:sleep|emit|tojson|printjson|load)\s*\("""
    r"""|while\s*\(|do\s*\{|for\s*\(\s*;\s*;"""
    r"""|(?:var|let|const)\s+\w+\s*=\s*new\s+date\b|\w+\s*=\s*new\s+date\s*\("""
    r"""|db\.\w+\s*(?:\.\s*\w+\s*)?\("""
    r"""|['"]?\w+['"]?\s*==\s*['"]?\w*['"]?)""",
    re.I,
)
_LOOKBACK: Final = 16  # spaces and a `)` between the string's quote and the separator
# (Led by the literal `db`, its word boundary a lookbehind over it: `\bdb` before it tried every position.)
_DB_CALL: Final = re.compile(
    r"db(?<!\wdb)\s*\.\s*(?:\w+\s*\.\s*)?(?:find|findone|insert|insertone|insertmany|drop|remove|update|updateone|"
    r"updatemany|deleteone|deletemany|mapreduce|aggregate|getcollection|getcollectionnames|dropdatabase|eval|"
    r"createuser|runcommand|adminommand)\s*\(",
    re.I,
)
# A value that closes the application's query object and opens another: `}, { password : /.*/ }`.
_OBJECT_BREAKOUT: Final = re.compile(r"""\s*(?:['"]\s*)?\}\s*,\s*\{\s*['"]?[\w$]+['"]?\s*:""")
_JS_BODY: Final = re.compile(r"\bthis\.\w+|\bsleep\s*\(|\breturn\b|\bwhile\s*\(|==|\bfunction\s*\(|\bemit\s*\(", re.I)


def _operator(word: str) -> str | None:
    low = word.lower()
    return low if low in OPERATORS else None


def _bracket_injection(text: str) -> bool:
    """`user[$ne]=x`, `[$regex]=.*`: a bracket operator, unless a designed filter API carries it."""
    for m in _BRACKET.finditer(text):
        op = _operator(m.group(1))
        if op is None:
            continue
        found = _ROOT.search(text, 0, text.find("["))
        root = found.group(1).lower() if found else ""
        if op in JS_OPERATORS or root not in FILTER_ROOTS:
            return True
    return False


def _key_injection(text: str) -> bool:
    """`{"$ne": null}`, `{$gt: ''}`, `true, $where: '1 == 1'`, `', $or: [ {}, {...`."""
    for m in _KEY.finditer(text):
        op = _operator(m.group(1))
        if op is None:
            continue
        # a GraphQL variable definition (`query($in: [ID!])`) names a type, never a value
        if _GRAPHQL_TYPE.match(text, m.end(1) + (1 if text[m.end(1) : m.end(1) + 1] in "'\"" else 0)):
            continue
        return True
    return False


def is_operator_key(text: str) -> bool:
    """A JSON object key (or any name) that is exactly a query operator: `$ne`, `$where`."""
    value = text.strip().strip("'\"")
    return value.startswith("$") and _operator(value[1:]) is not None


_PLAIN_PREFIX: Final = re.compile(r"[\w.\s-]{0,40}")


def _leaves_string(text: str, at: int) -> bool:
    """The breakout at the separator `text[at]` leaves the application's string: the quote before it
    (spaces and a `)` between) is the value's first of that kind (`admin' && this.a`), or a bare number
    or word comes before it (`1; return true`). A quote that closes one of the value's own strings
    (`x = "a"; this.y = 1`, code posted as data) does not."""
    q = at
    low = max(0, at - _LOOKBACK)
    while q > low and text[q - 1] in " \t\r\n":
        q -= 1
    if q > low and text[q - 1] == ")":
        q -= 1
        while q > low and text[q - 1] in " \t\r\n":
            q -= 1
    if q > 0 and text[q - 1] in "'\"":
        return text.find(text[q - 1]) == q - 1
    return at <= 48 and _PLAIN_PREFIX.fullmatch(text, 0, at) is not None


def _js_breakout(text: str) -> bool:
    return any(
        _JS_AFTER.match(text, m.end()) is not None and _leaves_string(text, m.start()) for m in _SEPARATOR.finditer(text)
    )


def is_js_injection(text: str) -> bool:
    """(Rule 238101.) Server-side JavaScript for `$where`/`mapReduce`: a string left for JavaScript, a `$where`
    holding JavaScript, a shell call on a collection, or a value that closes the query object and
    opens its own (`}, { password : /.*/ }`)."""
    if _OBJECT_BREAKOUT.match(text) or _DB_CALL.search(text) or _js_breakout(text):
        return True
    low = lowercase(text)
    i = low.find("$where")
    return i >= 0 and _JS_BODY.search(text, i + 6) is not None


def is_operator_injection(text: str) -> bool:
    """A query operator in the place of a key (rule 238100): see the module docstring."""
    return "$" in text and (is_operator_key(text) or _bracket_injection(text) or _key_injection(text))


def is_nosql_injection(text: str) -> bool:
    """Either shape of the module docstring."""
    return is_operator_injection(text) or is_js_injection(text)
