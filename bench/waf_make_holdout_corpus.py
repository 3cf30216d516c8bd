# ruff: noqa: E501  (data tables: long literal lines read better unwrapped)
"""A second clean corpus, written after the rules were tuned and never used to tune them
(tests/waf/data/clean_holdout.jsonl): different templates and texts than waf_make_clean_corpus.py —
wiki edits, Q&A posts (some with code), chat messages, webhooks from SaaS services, newsletter and
address forms, travel searches, and so on. Its false-positive rate is the less flattering, more honest
figure.

    .venv/bin/python bench/waf_make_holdout_corpus.py [--n 800]
"""

from __future__ import annotations

import argparse
import json
import random
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WIKI = [
    "The Treaty of Westphalia (1648) ended the Thirty Years' War; it is often cited as the origin of modern sovereignty.",
    "Photosynthesis converts light energy into chemical energy: 6CO2 + 6H2O → C6H12O6 + 6O2.",
    "In mathematics, a function f: X → Y assigns to each x ∈ X exactly one y ∈ Y.",
    "The Beatles' album \"Abbey Road\" (1969) was recorded at EMI Studios, London.",
    "Mount Everest's summit is 8,848.86 m above sea level (as of 2020).",
    "Python's 'list' type is mutable, whereas 'tuple' is immutable.",
    "São Paulo is Brazil's largest city; its metropolitan area has ~22 million people.",
    "The union of two sets A and B, written A ∪ B, contains every element of A or B.",
    "Order of operations: parentheses, exponents, multiplication/division, addition/subtraction.",
    "Alan Turing's 1936 paper \"On Computable Numbers\" introduced the Turing machine.",
    "Le château de Versailles fut la résidence des rois de France de 1682 à 1789.",
    "Die Berliner Mauer fiel am 9. November 1989.",
    "東京タワーは1958年に完成した。高さは333メートルです。",
    "The select committee will publish its report on 3 May; members may drop amendments until then.",
    "Execution of the will was delayed because the executor lived abroad.",
    "A shell company is a company without active business operations or significant assets.",
]
QUESTIONS = [
    ("How do I reverse a list in Python?", "I tried `mylist.reverse()` but it returns None. What's the idiomatic way?"),
    ("Why does my CSS grid overflow?", "I have `grid-template-columns: repeat(3, 1fr);` and the last column overflows on mobile."),
    ("Git: undo last commit but keep changes", "I ran `git commit` too early. How can I undo it and keep my edits?"),
    ("Difference between let and const in JavaScript?", "When should I use `const x = 1` instead of `let x = 1`?"),
    ("How to select rows with max value per group?", "I have a table of orders and want the latest order per customer. Something like a GROUP BY with MAX(date)?"),
    ("Docker container exits immediately", "My Dockerfile ends with CMD [\"npm\", \"start\"] but the container stops right away."),
    ("What does 'static' mean in Java?", "I see `public static void main(String[] args)` everywhere. Why static?"),
    ("Regex to validate an email?", "Is `^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$` good enough for a sign-up form?"),
    ("Rust borrow checker error E0502", "cannot borrow `v` as mutable because it is also borrowed as immutable"),
    ("How to center text vertically in a div?", "I tried `vertical-align: middle` with no luck."),
    ("Kubernetes pod stuck in CrashLoopBackOff", "kubectl describe shows 'Back-off restarting failed container'. Where do I look?"),
    ("Best way to parse dates in Go?", "time.Parse(\"2006-01-02\", s) feels odd. Why that date?"),
]
CHAT = [
    "lol see you @ 5pm & bring snacks", "brb, coffee ☕", "ok :) sounds good!", "can't make it tonight, sorry!!",
    "did you see the game?? 3-2 in extra time 🤯", "<3 thanks so much", "meeting moved to Tue 10:30 (room B)",
    "pls review PR #482 when u have a sec", "who's in for pizza? 🍕 vote 👍/👎", "ETA ~15 min, traffic on I-95",
    "the wifi password is on the fridge", "happy birthday!!! 🎉🎂", "I'll drop the files in the shared folder",
    "order #A-1029 shipped; tracking: 1Z999AA10123456784", "c'est parfait, merci !", "¿dónde está la estación?",
]
TRAVEL = ["flights from NYC to LAX", "hotels in Paris near Louvre", "train Berlin → Prague", "car rental O'Hare airport",
          "things to do in Kyoto", "best time to visit Iceland", "Barcelona 3 nights under €500", "Tokyo (Shinjuku) hostels",
          "cheap flights to São Paulo", "Rome & Florence 7-day itinerary", "visa for Vietnam from UK", "ferry Dover-Calais times"]
PRODUCTS = ["Men's running shoes size 10½", "4K TV 55\" (2024 model)", "Organic green tea – 100 bags", "USB-C hub 7-in-1",
            "Kid's bike w/ training wheels", "Cast-iron skillet 12\"", "Noise-cancelling headphones", "Yoga mat 6mm, non-slip"]
NAMES = ["Aoife O'Sullivan", "Renée Lévesque", "Đặng Thu Hà", "Kwame Mensah", "Ingrid Bergström", "Raj Patel", "D'Angelo Russell",
         "Chloë Grace", "Mikhail Gorbachev", "Łukasz Kowalski", "Nuño Pérez", "Hye-jin Park"]


def headers(rng: random.Random, ctype: str | None = None) -> dict[str, str]:
    h = {"Host": "app.example.net",
         "User-Agent": rng.choice(["Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0",
                                   "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
                                   "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile Safari/537.36"]),
         "Accept": "*/*", "Accept-Language": rng.choice(["en-GB,en;q=0.9", "fr-CA,fr;q=0.8", "vi-VN,vi;q=0.9"])}
    if rng.random() < 0.7:
        h["Cookie"] = f"sid={rng.randbytes(12).hex()}; prefs=" + urllib.parse.quote(json.dumps({"tz": "Europe/Dublin", "dark": rng.random() < 0.5}))
    if ctype:
        h["Content-Type"] = ctype
    return h


def gen(rng: random.Random, kind: str) -> dict:
    if kind == "wiki_edit":
        text = " ".join(rng.sample(WIKI, rng.randint(1, 4)))
        body = urllib.parse.urlencode({"title": "Sandbox", "summary": "copyedit; fix refs", "text": text, "minor": "1"})
        return {"method": "POST", "uri": "/w/index.php?action=submit", "headers": headers(rng, "application/x-www-form-urlencoded"), "body": body}
    if kind == "question":
        t, b = rng.choice(QUESTIONS)
        body = json.dumps({"title": t, "body_markdown": b, "tags": ["python", "css", "git"][: rng.randint(1, 3)]})
        return {"method": "POST", "uri": "/api/questions", "headers": headers(rng, "application/json"), "body": body}
    if kind == "chat":
        body = json.dumps({"channel": "C024BE91L", "text": rng.choice(CHAT), "thread_ts": None})
        return {"method": "POST", "uri": "/api/chat.postMessage", "headers": headers(rng, "application/json; charset=utf-8"), "body": body}
    if kind == "travel_search":
        q = rng.choice(TRAVEL)
        return {"method": "GET", "uri": "/s?" + urllib.parse.urlencode({"q": q, "adults": rng.randint(1, 4), "from": "2025-06-01", "to": "2025-06-08"}), "headers": headers(rng), "body": None}
    if kind == "product_search":
        q = rng.choice(PRODUCTS)
        return {"method": "GET", "uri": "/catalog/search?term=" + urllib.parse.quote(q) + "&sort=relevance", "headers": headers(rng), "body": None}
    if kind == "webhook":
        doc = rng.choice([
            {"ref": "refs/heads/main", "commits": [{"id": rng.randbytes(20).hex(), "message": "fix: handle ' in customer names; bump deps", "author": {"name": rng.choice(NAMES)}}], "repository": {"full_name": "acme/shop", "html_url": "https://github.com/acme/shop"}},
            {"id": "evt_1P" + rng.randbytes(8).hex(), "type": "invoice.paid", "data": {"object": {"amount_paid": 4200, "currency": "eur", "customer_email": "billing@example.ie", "lines": {"data": [{"description": "Pro plan (monthly)"}]}}}},
            {"event": "message.delivered", "recipient": "user@example.com", "timestamp": 1717000000, "tags": ["welcome", "drip-1"], "subject": "Welcome aboard! Here's what's next"},
        ])
        return {"method": "POST", "uri": rng.choice(["/hooks/github", "/hooks/stripe", "/hooks/mail"]), "headers": headers(rng, "application/json"), "body": json.dumps(doc)}
    if kind == "newsletter":
        body = urllib.parse.urlencode({"email": f"{rng.choice(['anna', 'bo', 'c.d'])}+news@example.org", "name": rng.choice(NAMES), "topics[]": "tech", "consent": "yes"})
        return {"method": "POST", "uri": "/newsletter/subscribe", "headers": headers(rng, "application/x-www-form-urlencoded"), "body": body}
    if kind == "address":
        body = json.dumps({"line1": rng.choice(["Flat 3, 12 O'Connell St.", "Apt. #5B, 221 W 42nd St", "Rua Augusta, 1508 – 2º andar", "Hauptstr. 7/2"]), "city": rng.choice(["Dublin", "New York", "São Paulo", "Wien"]), "postcode": "D01 F5P2", "country": "IE", "instructions": "Ring twice; if no answer leave with neighbour (No. 14)."})
        return {"method": "PUT", "uri": "/api/account/address", "headers": headers(rng, "application/json"), "body": body}
    if kind == "listing":
        params = {"category": rng.choice(["books", "garden & outdoor", "toys/games"]), "price_min": "0", "price_max": str(rng.randint(10, 500)), "in_stock": "true", "page": str(rng.randint(1, 20))}
        return {"method": "GET", "uri": "/api/products?" + urllib.parse.urlencode(params), "headers": headers(rng), "body": None}
    if kind == "review":
        body = json.dumps({"product": rng.choice(PRODUCTS), "rating": rng.randint(1, 5), "text": rng.choice(["Works as advertised. 5/5 would buy again.", "Arrived late & the box was damaged :(", "Great value for the price — my kids love it!", "Not bad, but the manual's instructions (step 4) are confusing.", "Meh. It's OK; expected more for $$$."])})
        return {"method": "POST", "uri": "/api/reviews", "headers": headers(rng, "application/json"), "body": body}
    raise ValueError(kind)


KINDS = {"wiki_edit": 10, "question": 10, "chat": 12, "travel_search": 10, "product_search": 10, "webhook": 10,
         "newsletter": 8, "address": 8, "listing": 10, "review": 12}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=800)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "tests" / "waf" / "data" / "clean_holdout.jsonl")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    kinds = [k for k, w in KINDS.items() for _ in range(w)]
    with args.output.open("w", encoding="utf-8") as fh:
        for i in range(args.n):
            kind = rng.choice(kinds)
            fh.write(json.dumps({"id": f"holdout-{i:05d}", "kind": kind, **gen(rng, kind)}, ensure_ascii=False) + "\n")
    print(f"wrote {args.n} requests to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
