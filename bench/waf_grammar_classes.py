# ruff: noqa: E501  (a bench script: long report lines read better unwrapped)
"""NoSQL, LDAP and mail injection: attacks built here from each grammar's parts, and the ordinary text that
only looks like them, placed by bench/waf_placements.py (9 placements × 6 encodings) and inspected in process.

The payload files in ../shared hold no NoSQL, LDAP or IMAP/SMTP class, so this bench makes its own (written
for netguard from the protocols' grammars: MongoDB operators and server-side JavaScript, RFC 4515 filters,
mail headers and SMTP/IMAP/POP3 commands). Prints, per class, the share of attack requests blocked (overall,
per placement, per encoding) and the share of look-alike requests passed (mail look-alikes, multi-line text, only where text belongs:
forms, multipart, JSON values, XML).

    .venv/bin/python bench/waf_grammar_classes.py [--paranoia N] [--peer] [--shared DIR]

--peer also sends every request to nginx + ModSecurity + CRS 4.28 at paranoia 1 (bench/waf_peer.py; blocked
means a 4xx answer) and prints its share beside netguard's.
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

from waf_peer import CRS4, Peer, send_raw  # noqa: E402
from waf_placements import Encoding, Payload, Placed, Placement, default_shared, generate  # noqa: E402

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


def _rate(hits: int, total: int) -> str:
    return f"{100 * hits / total:.1f}%" if total else "-"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paranoia", type=int, default=1)
    ap.add_argument("--peer", action="store_true", help="also measure nginx + ModSecurity + CRS 4.28")
    ap.add_argument("--shared", type=Path, default=default_shared())
    args = ap.parse_args(argv)
    engine = Engine(EngineConfig(paranoia=args.paranoia))
    peer = Peer((CRS4,), crs4_dir=args.shared / "waf" / "crs-4.28.0") if args.peer else None
    if peer is not None:
        peer.__enter__()
    try:
        return _report(engine, peer, args.paranoia)
    finally:
        if peer is not None:
            peer.close()


def _run(engine: Engine, peer: Peer | None, placed: Placed) -> tuple[bool, bool]:
    ours = engine.inspect(Request.make(placed.method, placed.target, list(placed.headers), placed.body)).blocked
    theirs = False
    if peer is not None:
        status = send_raw(peer.peer_port, placed.method, placed.target, list(placed.headers), placed.body).status
        theirs = 400 <= status < 500
    return ours, theirs


def _report(engine: Engine, peer: Peer | None, paranoia: int) -> int:
    attacks = {"nosql": nosql_attacks(), "ldap": ldap_attacks(), "mail": mail_attacks()}
    print(f"### NoSQL, LDAP and mail injection, paranoia {paranoia} (payloads × {len(Placement)} placements × {len(Encoding)} encodings)\n")
    cols = " | CRS 4.28 blocked | CRS 4.28 passed" if peer else ""
    print(f"| class | payloads | attack requests | blocked | look-alike requests | passed{cols} |")
    print("|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if peer else ""))
    per_place: dict[str, Counter[str]] = {}
    for cls, texts in attacks.items():
        got = Counter[str]()
        miss = per_place.setdefault(cls, Counter())
        for placed in generate([Payload(cls, t) for t in texts]):
            ours, theirs = _run(engine, peer, placed)
            got.update(attack=1, ours=ours, theirs=theirs)
            if not ours:
                miss[f"{placed.placement}/{placed.encoding}"] += 1
        # multi-line text is at home in forms, JSON and XML; in a URL, a cookie or a header it is itself suspect
        places = _TEXT_PLACES if cls == "mail" else tuple(Placement)
        for placed in generate([Payload(cls, t) for t in LOOKALIKES[cls]], places):
            ours, theirs = _run(engine, peer, placed)
            got.update(clean=1, ours_pass=not ours, theirs_pass=not theirs)
        row = f"| {cls} | {len(texts)} | {got['attack']:,} | {_rate(got['ours'], got['attack'])} | {got['clean']:,} | {_rate(got['ours_pass'], got['clean'])} |"
        if peer:
            row += f" {_rate(got['theirs'], got['attack'])} | {_rate(got['theirs_pass'], got['clean'])} |"
        print(row)
    for cls, miss in per_place.items():
        if miss:
            print(f"\n{cls}: netguard missed by placement/encoding: " + ", ".join(f"{k} {n}" for k, n in miss.most_common(12)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
