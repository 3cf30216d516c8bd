# ruff: noqa: E501  (a bench script: long report lines read better unwrapped)
"""Worst-case bodies: the engine's time on hostile inputs of up to 1 MB (the default inspection window).

Every case is built to hold exactly the size and shape its label names, within the window, and the bench
checks that before it times anything (a JSON case parses and has the keys it says, an XML case is
well-formed with that many distinct attributes, a form has that many parameters...): a case cut short by
the window would measure the engine's error path, not the shape.

    .venv/bin/python bench/waf_worstcase.py

Wall and CPU time are both printed: on a shared machine the CPU time is the engine's own cost.
"""

from __future__ import annotations

import base64
import json
import random
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from waf import Engine, Request  # noqa: E402

MB = 1024 * 1024
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Case:
    label: str
    content_type: str
    body: str
    check: Callable[[str], bool]  # does the body hold what the label says?


def fit(make: Callable[[int], str], lo: int = 1, hi: int = 10 * MB) -> tuple[int, str]:
    """The largest n whose make(n) fits in 1 MB (make grows with n)."""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(make(mid).encode()) <= MB:
            lo = mid
        else:
            hi = mid - 1
    return lo, make(lo)


def xml_attrs(n: int) -> str:
    return "<a " + " ".join(f'x{i}="{i:x}"' for i in range(n)) + "/>"


def json_keys(width: int) -> str:
    return json.dumps({f"k{i}": "v" * width for i in range(40000)})


def multipart(n: int) -> str:
    return "".join(f'--b\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nv{i}\r\n' for i in range(n)) + "--b--\r\n"


def cases() -> list[Case]:
    rng = random.Random(1)
    out = [Case("XML, 1 MB of '<'", "application/xml", "<" * MB, lambda b: b == "<" * MB)]
    n_attr, body = fit(xml_attrs, hi=200000)
    out.append(Case(f"XML, {n_attr // 1000}k distinct attributes", "application/xml", body,
                    lambda b, n=n_attr: len(set(ET.fromstring(b).attrib.values())) == n == len(ET.fromstring(b).attrib)))  # fmt: skip
    width, body = fit(json_keys, hi=100)
    out.append(Case("JSON, 40k keys", "application/json", body, lambda b: len(json.loads(b)) == 40000))
    deep = "[" * 100000 + "]" * 100000
    out.append(Case("JSON, nested 100k deep", "application/json", deep, lambda b: b == "[" * 100000 + "]" * 100000))
    form = "&".join(f"{i:x}=%27" for i in range(100000))
    out.append(Case("form, 100k params", FORM, form, lambda b: len(parse_qsl(b, max_num_fields=200000)) == 100000))
    n_parts, body = fit(multipart, hi=100000)
    n_parts = n_parts // 1000 * 1000
    out.append(Case(f"multipart, {n_parts // 1000}k parts", "multipart/form-data; boundary=b", multipart(n_parts),
                    lambda b, n=n_parts: b.count("--b\r\n") == n and b.endswith("--b--\r\n")))  # fmt: skip
    raw = rng.randbytes(700000)
    b64 = "x=" + quote(base64.b64encode(raw).decode(), safe="")
    out.append(Case(f"base64 value, {(len(b64) - 2) // 1000} kB", FORM, b64, lambda b, raw=raw: base64.b64decode(dict(parse_qsl(b))["x"]) == raw))
    out.append(Case("1 MB of digits", "text/plain", "1" * MB, lambda b: b.isdigit() and len(b) == MB))
    n_ent = (MB - 2) // len(quote("&#x41;", safe=""))
    ent = "x=" + quote("&#x41;", safe="") * n_ent
    out.append(Case(f"HTML entities, {n_ent // 1000}k in one value", FORM, ent, lambda b, n=n_ent: dict(parse_qsl(b)) == {"x": "&#x41;" * n}))
    n_pct = (MB - 2) // 3
    out.append(Case(f"percent escapes, {n_pct // 1000}k in one value", FORM, "x=" + "%25" * n_pct, lambda b, n=n_pct: dict(parse_qsl(b)) == {"x": "%" * n}))
    n_bs = (MB - 12) // 2
    out.append(Case(f"backslashes in JSON, {n_bs // 1000}k", "application/json", json.dumps({"a": "\\" * n_bs}), lambda b, n=n_bs: json.loads(b) == {"a": "\\" * n}))
    n_cm = (MB - 2) // 2
    out.append(Case(f"comment openers, {n_cm // 1000}k", FORM, "x=" + "/*" * n_cm, lambda b, n=n_cm: dict(parse_qsl(b)) == {"x": "/*" * n}))
    return out


def outcome(v: object) -> str:
    """blocked (score), refused (status and reason: an inspection budget ran out) or passed."""
    if refusal := getattr(v, "refusal", None):
        return f"refused {getattr(v, 'status', '')}: {refusal}"
    return f"{'blocked' if getattr(v, 'blocked', False) else 'passed'} (score {getattr(v, 'score', 0)})"


def main() -> int:
    engine = Engine()
    for case in cases():
        size = len(case.body.encode())
        assert size <= MB, f"{case.label}: {size} bytes, over the 1 MB window"
        assert case.check(case.body), f"{case.label}: the body does not hold what the label says"
        req = Request.make("POST", "/upload", {"Content-Type": case.content_type}, case.body)
        t0, c0 = time.perf_counter(), time.process_time()
        v = engine.inspect(req)
        ms, cpu = 1000 * (time.perf_counter() - t0), 1000 * (time.process_time() - c0)
        print(f"  {case.label:<36} {size:>8} bytes  {ms:7.1f} ms wall  {cpu:7.1f} ms CPU  {outcome(v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
