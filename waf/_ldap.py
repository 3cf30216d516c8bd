"""LDAP filter injection read with an LDAP filter tokenizer (RFC 4515), not a regex over parentheses.

An application builds a search filter around a value: `(&(uid=` + value + `)(objectClass=person))`.
An injection closes the application's item and opens filters of its own (`*)(uid=*))(|(uid=*`,
`admin)(&)`, `x)(|(mail=*))`, `)(cn=*`: the application's own `)` closes the last one), sends a
whole filter (`(|(sn=a*)(cn=b*))`, `*(|(objectclass=*))`), or an extensible match
(`userPassword:2.5.13.18:=x`, `cn:dn:=admin`). Each is checked by parsing: after a `)` of the value, a
filter must follow that the grammar accepts — `(`, then `&`, `|` or `!` and their filters (`(&)` and
`(|)` are the absolute true and false of RFC 4526), or an item `attr`, `=`/`~=`/`>=`/`<=`/`:=`, value.

Parentheses in prose (`(see above)`), emoticons (`:-)(`), calls in code (`})(window)`, `f(a)(b)`),
e-mail addresses, CSS and search words with `*` hold no such filter. A simple item after a `)` with an
ordinary value (`(a=b)(c=d)` in maths) needs a wildcard or an LDAP attribute name to count.
Written for netguard.
"""

from __future__ import annotations

import re
from typing import Final

MAX_DEPTH: Final = 32
_ATTR: Final = re.compile(r"\s*([A-Za-z0-9][\w.-]*(?:;[\w-]+)*)\s*")
_EXT: Final = re.compile(r"(?::dn)?(?::([A-Za-z0-9][\w.-]*))?:=", re.I)
_OP: Final = re.compile(r"[~<>]?=")
_PAREN: Final = re.compile(r"[()]")
_EXTENSIBLE: Final = re.compile(
    r"(?:^|[\s(*&|!])[A-Za-z][\w-]*(?:;[\w-]+)*(?::dn(?::[\w.-]+)?|:(?:\d+(?:\.\d+)+|[a-z][\w-]*match)):=", re.I
)
# Attribute names of directory entries (LDAP core, inetOrgPerson, posix, Active Directory) and the
# names applications give their login fields. Words that name arguments in code as often (`o`, `name`,
# `title`, `description`, `member`: minified `(0,r.f)(o=e)`) are left out.
LDAP_ATTRS: Final = frozenset(
    """objectclass objectcategory uid cn sn givenname mail userpassword samaccountname userprincipalname
    memberof uniquemember ou dc displayname telephonenumber homedirectory loginshell uidnumber gidnumber
    gecos distinguishedname admincount useraccountcontrol pwdlastset accountexpires employeeid userid
    username user login password pass pwd""".split()
)


class _Filter:
    """What a parse saw: a composite (`&`, `|`, `!`), a wildcard value, an LDAP attribute name."""

    __slots__ = ("composite", "wildcard", "ldap_attr", "items")

    def __init__(self) -> None:
        self.items = 0
        self.composite = False
        self.wildcard = False
        self.ldap_attr = False

    @property
    def telling(self) -> bool:
        return self.composite or self.wildcard or self.ldap_attr


def _value_end(text: str, i: int) -> int:
    """The end of an assertion value: up to an unescaped `(` or `)` (`\\29` is an escape)."""
    return _VALUE.match(text, i).end()  # type: ignore[union-attr]  # `*`: always matches


# The characters of an assertion value, run over in C (a loop in Python read 50 ns a character).
_VALUE: Final = re.compile(r"[^()\x00]*")


def parse(text: str, i: int, seen: _Filter, open_end: bool, depth: int = 0) -> int | None:
    """The index after the filter opening at `text[i] == '('`, or None when none parses there.
    `open_end`: the value may stop inside the filter, which the application's suffix then closes."""
    n = len(text)
    if depth > MAX_DEPTH or i >= n or text[i] != "(":
        return None
    j = i + 1
    while j < n and text[j] in " \t":
        j += 1
    if j >= n:
        return None
    c = text[j]
    if c in "&|!":
        seen.composite = True
        j += 1
        count = 0
        while True:
            while j < n and text[j] in " \t":
                j += 1
            if j >= n:
                return n if open_end else None
            if text[j] == ")":
                return j + 1 if (c != "!" or count == 1) else None
            end = parse(text, j, seen, open_end, depth + 1)
            if end is None:
                return None
            count += 1
            j = end
            if c == "!" and count > 1:
                return None
    m = _ATTR.match(text, j)
    if m is None:
        return None
    attr = m.group(1)
    j = m.end()
    op = _OP.match(text, j) or _EXT.match(text, j)
    if op is None:
        return None
    seen.items += 1
    if attr.lower().split(";", 1)[0] in LDAP_ATTRS:
        seen.ldap_attr = True
    end = _value_end(text, op.end())
    if "*" in text[op.end() : end]:
        seen.wildcard = True
    if end >= n:
        return n if open_end else None
    return end + 1 if text[end] == ")" else None


# The malformed shape of public lists (`admin*)((|userPassword=*)`): an operator right before an item.
_LOOSE_COMPOSITE: Final = re.compile(r"\)\s*\(+\s*[&|!]\s*[A-Za-z][\w.;-]*\s*[~<>]?=")


def _breaks_out(text: str) -> bool:
    """After a `)` of the value, a filter the grammar accepts (the application closes the last one)."""
    if _LOOSE_COMPOSITE.search(text):
        return True
    start = 0
    while (p := text.find(")", start)) >= 0:
        j = p + 1
        while j < len(text) and text[j] in " \t)":
            j += 1
        start = j  # the `)` skipped lead to this same place: never read again (linear in the value)
        if j < len(text) and text[j] in "&|!":  # `val)&(cn=admin`, `*)!(sn=*`: an operator between items
            j += 1
            while j < len(text) and text[j] in " \t":
                j += 1
        if j < len(text) and text[j] == "(":
            seen = _Filter()
            end = parse(text, j, seen, open_end=True)
            if end is not None and (seen.telling or text[j:end].replace(" ", "") in ("(&)", "(|)")):
                return True
    return False


class _Group:
    """An open parenthesis of `_whole_filter`: where its next child may start, its operator, whether
    all it held so far is a filter, its children and the items inside them."""

    __slots__ = ("cursor", "op", "ok", "children", "items")

    def __init__(self, cursor: int) -> None:
        self.cursor = cursor
        self.op = ""
        self.ok = True
        self.children = 0
        self.items = 0


def _item(content: str) -> tuple[bool, bool]:
    """(whether `attr op value` is an item, whether it tests a directory attribute with a wildcard)."""
    m = _ATTR.match(content)
    op = (_OP.match(content, m.end()) or _EXT.match(content, m.end())) if m else None
    if m is None or op is None or "\0" in content:
        return False, False
    return True, m.group(1).lower().split(";", 1)[0] in LDAP_ATTRS and "*" in content[op.end() :]


_COMPOSITE_OPEN: Final = re.compile(r"\([ \t]*[&|!][ \t]*\(")


def _whole_filter(text: str) -> bool:
    """A composite filter (`(|(sn=a*)(cn=b*))`) or a presence test of a directory attribute
    (`(objectClass=*)`) anywhere in the value, closed. One pass over the parentheses with a stack (a
    parse from every `(` would read nested groups again and again).

    Either needs an item, so a `=` (of `[~<>]?=` or `:=`); a leaf tells only with a `*` in its value, a
    composite only when its operator sits between its `(` and its first child's (`_COMPOSITE_OPEN`):
    a value without them (JSON, user agents with parentheses) skips the pass."""
    if "=" not in text or ("*" not in text and _COMPOSITE_OPEN.search(text) is None):
        return False
    # A telling leaf opens with its attribute, a directory one (_item: the greedy `[\w.-]` word, its
    # lowercase in LDAP_ATTRS; IGNORECASE matches every such spelling), right after its `(` and blanks.
    if _COMPOSITE_OPEN.search(text) is None and _DIRECTORY_ATTR_OPEN.search(text) is None:
        return False
    return _whole_filter_pass(text)


_DIRECTORY_ATTR_OPEN: Final = re.compile(r"\(\s*(?:" + "|".join(sorted(LDAP_ATTRS, key=len, reverse=True)) + r")(?![\w.-])", re.I)


def _whole_filter_pass(text: str) -> bool:
    stack: list[_Group] = []
    for m in _PAREN.finditer(text):
        i = m.start()
        if text[i] == "(":
            if stack:
                parent = stack[-1]
                gap = text[parent.cursor : i].strip(" \t")
                if parent.children == 0 and not parent.op and gap in ("&", "|", "!"):
                    parent.op = gap
                elif gap:
                    parent.ok = False
            stack.append(_Group(i + 1))
            continue
        if not stack:
            continue
        group = stack.pop()
        rest = text[group.cursor : i]
        if group.children == 0:
            absolute = rest.strip(" \t") in ("&", "|")
            valid, telling = (True, False) if absolute else _item(rest)
            items = 0 if absolute else 1
        else:
            valid = group.ok and bool(group.op) and not rest.strip(" \t") and (group.op != "!" or group.children == 1)
            telling, items = valid and group.items > 0, group.items
        if telling:
            return True
        if stack:
            parent = stack[-1]
            parent.children += 1
            parent.ok = parent.ok and valid
            parent.items += items if valid else 0
            parent.cursor = i + 1
    return False


# Every character of an _EXTENSIBLE match but its first (a blank, `(*&|!`, or none at the value's start)
# is one of these, and the first is none of them: a match ending at a `:=` starts right before the run
# of them that leads to it (or at the start, `^`, where the run starts the value).
_EXTENSIBLE_RUN: Final = re.compile(r"[\w.;:-]*")


def _extensible(text: str) -> bool:
    """`_EXTENSIBLE.search(text)`, matched only where a match ending at a `:=` can start (every match
    ends with one): the regex, led by an alternation, tried every position of the value (50 ns a
    character on a telemetry blob). (`^` matches at the value's start alone, whatever `pos` is.)"""
    p = text.find(":=")
    rev = ""
    while p >= 0:
        rev = rev or text[::-1]
        start = len(text) - _EXTENSIBLE_RUN.match(rev, len(text) - p).end()  # type: ignore[union-attr]  # `*`: always matches
        if _EXTENSIBLE.match(text, max(start - 1, 0), p + 2):
            return True
        p = text.find(":=", p + 1)
    return False


def is_ldap_injection(text: str) -> bool:
    """See the module docstring (rule 237100)."""
    if _extensible(text):
        return True
    if "(" not in text:
        return False
    return _breaks_out(text) or _whole_filter(text)
