"""The path normalizer for traversal (waf/_traversal.py): traversal in the shapes of the public lists
(PayloadsAllTheThings' encodings, filter bypasses and targets), written here for these tests; and the
relative links, display URLs and code that contain `../` without escaping anything."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waf import Request, inspect
from waf._decode import deep_decode
from waf._traversal import is_file_read, is_traversal, resolve

ATTACKS = [
    "../../../etc/passwd",
    "..\\..\\..\\windows\\win.ini",
    "....//....//....//etc/passwd",
    "....\\/....\\/etc/passwd",
    "..;/..;/WEB-INF/web.xml",
    ".../.../WINDOWS/win.ini",
    "/var/www/images/../../../etc/shadow",
    "/../../etc/hosts",
    "0x2e0x2e/0x2e0x2e/etc/passwd",
    "..//..//..//proc/self/environ",
    "../../../../var/www/html/.env",
    "..\\pineapple",
    "../.history",
    "..",
    "x.php?page=../../../../boot.ini",
    "templates/../../../../../app/.git/config",
    "see ../../../etc/passwd for the list",  # text, yet a secret
]
ENCODED = [
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    "..%c0%af..%c0%afetc%c0%afpasswd",
    "..%5c..%5c..%5cwindows%5cwin.ini",
    "%2e%2e/%2e%2e/%2e%2e/etc/passwd%00.png",
]
BENIGN = [
    "wait...",
    "1..10",
    "version 1.2.3",
    "a/b/c",
    "/docs/../img/logo.png",
    "/foo/..",
    "./static/app.js",
    "blog.example.com/someone/article/details/...",
    "https://example.com/a/b/../c",
    "import { x } from '../../lib/x';\nimport y from '../../../utils/y';",
    "name: poc\npath: /app/view.dll?page=../../settings.ini\nfollow_redirects: false",
    "See ../README.md and ../../CONTRIBUTING.md for details",
    "and so on... / or not",
]


@pytest.mark.parametrize("text", ATTACKS)
def test_traversal_attacks(text):
    assert is_traversal(text), text


@pytest.mark.parametrize("text", ENCODED)
def test_encoded_traversal_after_the_decoded_view(text):
    assert is_traversal(deep_decode(text)), text


@pytest.mark.parametrize("text", BENIGN)
def test_links_ellipses_and_code_are_no_traversal(text):
    assert not is_traversal(text), text


def test_resolve_counts_climbs_past_the_start():
    assert resolve("a/b/../../c") == ("c", False)
    assert resolve("a/../../c") == ("c", True)
    assert resolve("/x/..;/..;/y") == ("y", True)
    assert resolve("a/b/...")[1] is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [("file:///etc/passwd", True), ("file://localhost/etc/shadow", True), ("file:/proc/self/environ", True),
     ("file:///c:/windows/win.ini", True), ("file:///", False), ("file:///C:/Users/me/Desktop/page.html", False),
     ("file:///home/me/report.html", False)],
)  # fmt: skip
def test_file_urls(text, expected):
    assert is_file_read(text) is expected


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(["a", "bb", "..", ".", "", "...", "x;y"]), max_size=10))
def test_a_path_that_never_goes_up_more_than_down_never_climbs(segs):
    depth, lowest = 0, 0
    for s in segs:
        s = s.split(";")[0]
        if s and s.strip(".") == "" and len(s) >= 2:
            depth -= 1
        elif s not in ("", "."):
            depth += 1
        lowest = min(lowest, depth) if depth < 0 else lowest
        depth = max(depth, 0)
    assert resolve("/".join(segs))[1] is (lowest < 0)


def test_engine_blocks_traversal_in_path_query_json_and_file_names():
    for req in (
        Request.make("GET", "/download?file=..%2f..%2f..%2fetc%2fpasswd"),
        Request.make("GET", "/static/..%2f..%2f..%2f..%2fetc/passwd"),
        Request.make("GET", "/img?name=....//....//....//etc/passwd"),
        Request.make("POST", "/api/read", {"Content-Type": "application/json"}, '{"path": "..\\\\..\\\\boot.ini"}'),
        Request.make("GET", "/view?page=%c0%ae%c0%ae/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd"),
    ):
        assert inspect(req).blocked, req.uri
