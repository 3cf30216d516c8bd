# ruff: noqa: E501  (a bench script: long report lines read better unwrapped)
"""Worst-case bodies: the engine's time on hostile 1 MB inputs (the default inspection window).

Every parser and decoder is bounded (target counts, repeats, depth, sizes) and every pattern runs in
Hyperscan, so the time grows linearly with the body and stays bounded by the window.

    .venv/bin/python bench/waf_worstcase.py
"""

from __future__ import annotations

import base64
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from waf import Engine, Request  # noqa: E402

MB = 1024 * 1024


def main() -> int:
    rng = random.Random(1)
    cases = {
        "XML, 1 MB of '<'": ("application/xml", "<" * MB),
        "XML, 175k attributes": ("application/xml", "<a " + 'x="1" ' * (MB // 6) + ">"),
        "JSON, 40k keys": ("application/json", json.dumps({f"k{i}": "v" * 20 for i in range(40000)})),
        "JSON, nested 100k deep": ("application/json", "[" * 100000 + "]" * 100000),
        "form, 100k params": ("application/x-www-form-urlencoded", "&".join(f"a{i}=%27%22" for i in range(100000))),
        "multipart, 20k parts": ("multipart/form-data; boundary=b", "".join(f'--b\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nval{i}\r\n' for i in range(20000)) + "--b--\r\n"),
        "base64 value, 900 kB": ("application/x-www-form-urlencoded", "x=" + base64.b64encode(rng.randbytes(700000)).decode()),
        "1 MB of digits": ("text/plain", "1" * MB),
        "HTML entities": ("application/x-www-form-urlencoded", "x=" + "&#x41;" * (MB // 6)),
        "percent escapes": ("application/x-www-form-urlencoded", "x=" + "%25" * (MB // 3)),
        "backslashes in JSON": ("application/json", json.dumps({"a": "\\" * (MB // 2)})),
        "comment openers": ("application/x-www-form-urlencoded", "x=" + "/*" * (MB // 2)),
    }
    engine = Engine()
    for name, (ctype, body) in cases.items():
        req = Request.make("POST", "/upload", {"Content-Type": ctype}, body[:MB])
        t0 = time.perf_counter()
        engine.inspect(req)
        print(f"  {name:<24} {len(body[:MB]):>8} bytes  {1000 * (time.perf_counter() - t0):7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
