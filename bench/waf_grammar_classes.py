# ruff: noqa: E501  (a bench script: long report lines read better unwrapped)
"""NoSQL, LDAP and mail injection: attacks built here from each grammar's parts, and the ordinary text that
only looks like them, placed by bench/waf_placements.py (9 placements × 6 encodings) and inspected in process.

The payload files in ../shared hold no NoSQL, LDAP or IMAP/SMTP class, so this bench makes its own (written
for netguard from the protocols' grammars: MongoDB operators and server-side JavaScript, RFC 4515 filters,
mail headers and SMTP/IMAP/POP3 commands). Prints, per class, the share of attack requests blocked (overall,
per placement, per encoding) and the share of look-alike requests passed (mail look-alikes, multi-line text, only where text belongs:
forms, multipart, JSON values, XML).

    .venv/bin/python bench/waf_grammar_classes.py [--paranoia N]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from waf_placements import Encoding, Payload, Placement, generate  # noqa: E402

from waf import Request  # noqa: E402
from waf._engine import Engine, EngineConfig  # noqa: E402


def nosql_attacks() -> list[str]:
    ops = ("ne", "gt", "gte", "lt", "nin", "in", "regex", "exists", "where", "expr", "or")
    out = [f'{{"{f}": {{"${op}": {v}}}}}' for f, op, v in itertools.product(("user", "pass"), ops[:8], ("null", '""', "1"))]
    out += [f"{{${op}: ''}}" for op in ops[:8]] + [f"{p}, $where: '{n} == {n}'" for p, n in itertools.product(("true", "1", "'"), (3, 77))]
    out += [f"', ${op}: [ {{}}, {{ 'k':'k" for op in ("or", "nor", "and")] + [f"{f}[${op}]=x" for f, op in itertools.product(("login", "pwd"), ops[:8])]
    out += [f"x{q}{s}{js}" for q, s, js in itertools.product("'\"", (";", " && ", " || "), ("return true", "this.pwd.match(/^a/)", "sleep(3000)", "while(1){}"))]
    out += ["db.people.drop();", "db.getCollection('u').remove({})", "}, { pwd : /.*/ }"]
    return out


def ldap_attacks() -> list[str]:
    attrs = ("uid", "cn", "mail", "objectClass", "sn", "userPassword")
    out = [f"{p}){op}({a}=*" for p, op, a in itertools.product(("", "*", "bob"), ("", "|", "&", "!"), attrs)]
    out += [f"{p})(|({a}=*))" for p, a in itertools.product(("*", "bob"), attrs)] + [f"{p})(&)" for p in ("", "bob", "*")]
    out += [f"(|({a}=x*)({b}=*))" for a, b in itertools.combinations(attrs[:4], 2)] + [f"*(|({a}=*))" for a in attrs]
    out += [f"{a}:{rule}:=x" for a, rule in itertools.product(attrs[:3], ("2.5.13.5", "dn", "caseExactMatch"))]
    return out


def mail_attacks() -> list[str]:
    lines = ("Bcc: x@example.net", "Cc: y@example.net", "Subject: z", "RCPT TO:<x@example.net>", "MAIL FROM:<a@example.net>",
             "DATA", "QUIT", "RSET", "VRFY root", "a7 LOGOUT", "B12 FETCH 1:* (FLAGS)", "c3 SELECT INBOX", "RETR 2", "USER root")  # fmt: skip
    return [f"{first}{br}{line}{br}" for first, br, line in itertools.product(("", "me@example.org", "INBOX"), ("\r\n", "\n"), lines)]


LOOKALIKES = {
    "nosql": ["$5 off", "US$ 12", "Hello ${name}", "cd $HOME/src", "$('#a').hide()", "$distinct_id", "$schema", "$ref", "$type",
              "query($id: ID!) { a(id: $id) }", "a ? $in : $out", "x = \"a\"; this.y = 1", "filters[slug][$eq]"],
    "ldap": ["(see above)", "Paris (France) (2019)", ":-)(", "})(window)", "(a=b)(c=d)", "(555) 123-4567", "x := 1",
             "jane@example.org", "foo* bar*", "a:not(.x)"],
    "mail": ["Please see below.\nSubject: order 1\nThanks", "host: a\r\nfrom: b@c.d", "Street 1\r\nCity", "Memo\nTo: all staff",
             "Error\n    at list (a.js:1:2)", "Hello,\nI will check the list"],
}  # fmt: skip


_TEXT_PLACES = (Placement.FORM, Placement.MULTIPART, Placement.JSON_VALUE, Placement.XML)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paranoia", type=int, default=1)
    args = ap.parse_args(argv)
    engine = Engine(EngineConfig(paranoia=args.paranoia))
    attacks = {"nosql": nosql_attacks(), "ldap": ldap_attacks(), "mail": mail_attacks()}
    print(f"### NoSQL, LDAP and mail injection, paranoia {args.paranoia} (payloads × {len(Placement)} placements × {len(Encoding)} encodings)\n")
    print("| class | payloads | attack requests | blocked | look-alike requests | passed |\n|---|---:|---:|---:|---:|---:|")
    per_place: dict[str, Counter[str]] = {}
    for cls, texts in attacks.items():
        total = blocked = 0
        miss = per_place.setdefault(cls, Counter())
        for placed in generate([Payload(cls, t) for t in texts]):
            verdict = engine.inspect(Request.make(placed.method, placed.target, list(placed.headers), placed.body))
            total += 1
            blocked += verdict.blocked
            if not verdict.blocked:
                miss[f"{placed.placement}/{placed.encoding}"] += 1
        clean_total = clean_passed = 0
        # multi-line text is at home in forms, JSON and XML; in a URL, a cookie or a header it is itself suspect
        places = _TEXT_PLACES if cls == "mail" else tuple(Placement)
        for placed in generate([Payload(cls, t) for t in LOOKALIKES[cls]], places):
            verdict = engine.inspect(Request.make(placed.method, placed.target, list(placed.headers), placed.body))
            clean_total += 1
            clean_passed += not verdict.blocked
        print(f"| {cls} | {len(texts)} | {total:,} | {100 * blocked / total:.1f}% | {clean_total:,} | {100 * clean_passed / clean_total:.1f}% |")
    for cls, miss in per_place.items():
        if miss:
            print(f"\n{cls}: missed by placement/encoding: " + ", ".join(f"{k} {n}" for k, n in miss.most_common(12)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
