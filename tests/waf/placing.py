"""One value placed where the grammar detectors' tests need it: query, path segment, form, multipart,
JSON value and key, header, cookie; plain, percent-encoded and base64 (written for these tests)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from urllib.parse import quote

from waf import Request

PLACES = ("query", "path", "form", "multipart", "json-value", "json-key", "header", "cookie")
ENCODINGS = ("plain", "percent", "base64")
_BOUNDARY = "----grammar7MA4YWxkTrZu0gW"


def encode(value: str, encoding: str) -> str:
    if encoding == "percent":
        return quote(value, safe="")
    if encoding == "base64":
        return base64.b64encode(value.encode()).decode()
    return value


def place(value: str, where: str) -> Request:
    """The request that hands `value` to the application at `where` (container escaping only)."""
    if where == "query":
        return Request.make("GET", "/search?page=1&q=" + quote(value, safe=""))
    if where == "path":
        return Request.make("GET", "/api/items/" + quote(value, safe="") + "/details")
    if where == "form":
        ctype = {"Content-Type": "application/x-www-form-urlencoded"}
        return Request.make("POST", "/submit", ctype, "id=7&comment=" + quote(value, safe=""))
    if where == "multipart":
        body = (
            f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="id"\r\n\r\n7\r\n'
            f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="comment"\r\n\r\n{value}\r\n--{_BOUNDARY}--\r\n'
        )
        return Request.make("POST", "/submit", {"Content-Type": f"multipart/form-data; boundary={_BOUNDARY}"}, body)
    if where in ("json-value", "json-key"):
        doc = {"id": 7, "comment": value} if where == "json-value" else {"id": 7, value: "1"}
        return Request.make("POST", "/api", {"Content-Type": "application/json"}, json.dumps(doc))
    if where == "header":
        return Request.make("GET", "/", {"X-Custom-Data": quote(value, safe=" :/@=;,()*$[]{}'\"!&|<>.")})
    if where == "cookie":
        return Request.make("GET", "/", {"Cookie": "session=4f2a9c; pref=" + quote(value, safe=" :/@=()*$[]{}'\"!&|<>.")})
    raise ValueError(where)


def placements(value: str, places: tuple[str, ...] = PLACES) -> Iterator[tuple[str, str, Request]]:
    """Every (place, encoding, request) of `value`."""
    for where in places:
        for encoding in ENCODINGS:
            yield where, encoding, place(encode(value, encoding), where)
