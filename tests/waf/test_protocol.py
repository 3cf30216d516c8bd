"""The protocol checks (waf/_protocol.py, waf/rules/protocol.yaml) and the generic rules they sit beside:
for each, a request that breaks the rule is blocked, and the nearest request a browser or an ordinary
client sends passes. Requests are synthetic, written for these tests."""

from __future__ import annotations

import json

import pytest

from waf import Request, inspect

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
BROWSER = {"Host": "shop.example", "User-Agent": UA, "Accept": "*/*"}
FORM = {**BROWSER, "Content-Type": "application/x-www-form-urlencoded"}


def rules_of(req: Request) -> set[int]:
    return {m.rule_id for m in inspect(req).matches}


def blocked_by(req: Request, rule: int) -> bool:
    v = inspect(req)
    return v.blocked and rule in {m.rule_id for m in v.matches}


def get(headers: dict[str, str] | list[tuple[str, str]], uri: str = "/") -> Request:
    return Request.make("GET", uri, headers)


# --- Host (RFC 9112 §3.2) ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        [("Host", "shop.example"), ("Host", "evil.example")],
        [("Host", "shop.example@evil.example")],
        [("Host", "shop.example/admin")],
        [("Host", "shop.example evil.example")],
    ],
)
def test_two_hosts_or_a_host_that_is_not_host_port_is_blocked(headers):
    assert blocked_by(get([*headers, ("User-Agent", UA)]), 242126)


@pytest.mark.parametrize("host", ["shop.example", "127.0.0.1:8080", "[::1]:8443", "[fe80::1%25eth0]", "xn--bcher-kva.example", ""])
def test_names_addresses_and_ports_as_host_pass(host):
    assert 242126 not in rules_of(get({**BROWSER, "Host": host}))


# --- Range (RFC 9110 §14) -------------------------------------------------------------------------------


@pytest.mark.parametrize("rng", ["bytes=5-0", "bytes=0-,5-0,5-1", "bytes=" + ",".join(f"{i}-{i + 1}" for i in range(0, 40, 2)), "bytes=a-b"])
def test_invalid_or_many_byte_ranges_are_blocked(rng):
    assert blocked_by(get({**BROWSER, "Range": rng}, "/video.mp4"), 242127)


@pytest.mark.parametrize("rng", ["bytes=0-", "bytes=1048576-2097151", "bytes=-500", "bytes=0-99, 200-299", "items=5-0"])
def test_media_resume_ranges_pass(rng):
    assert not inspect(get({**BROWSER, "Range": rng}, "/video.mp4")).blocked


# --- Accept-Encoding (RFC 9110 §12.5.3) ----------------------------------------------------------------


def test_overlong_or_malformed_accept_encoding_is_blocked():
    long_value = ",".join(["A" * 60, "B" * 60 + "&&**C", "*", " "])
    assert blocked_by(get({**BROWSER, "Accept-Encoding": long_value}), 242128)
    assert blocked_by(get({**BROWSER, "Accept-Encoding": "gzip;q=high"}), 242128)


@pytest.mark.parametrize("value", ["gzip, deflate, br, zstd", "gzip;q=1.0, identity; q=0.5, *;q=0", "gzip;Q=0.8", "identity", ""])
def test_clients_accept_encodings_pass(value):
    assert 242128 not in rules_of(get({**BROWSER, "Accept-Encoding": value}))


# --- Content-Type and multipart framing (RFC 9110 §5.6.6, RFC 2046 §5.1.1) -------------------------------


@pytest.mark.parametrize(
    "ctype", ["multipart/related", "multipart/form-data", "multipart/form-data; boundary=  abc123", "multipart/form-data; boundary = abc123"]
)
def test_multipart_without_a_valid_boundary_is_blocked(ctype):
    assert blocked_by(Request.make("POST", "/upload", {**BROWSER, "Content-Type": ctype}, "foo"), 242122)


def test_charset_with_spaces_around_the_equals_sign_is_blocked():
    ctype = "application/x-www-form-urlencoded; charset = utf-8"
    assert blocked_by(Request.make("POST", "/", {**BROWSER, "Content-Type": ctype}, "a=1"), 242122)


@pytest.mark.parametrize(
    "ctype",
    [
        "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
        "multipart/form-data; boundary=---------------------------9051914041544843365972754266",
        'multipart/form-data; boundary="simple boundary"',
        'multipart/mixed; boundary="----=_Part_0_1234.5678"',
        "application/x-www-form-urlencoded;charset=UTF-8",
    ],
)
def test_browser_and_library_content_types_pass(ctype):
    assert 242122 not in rules_of(Request.make("POST", "/upload", {**BROWSER, "Content-Type": ctype}, "a=1"))


def test_multipart_type_on_a_request_without_a_body_passes():
    # clients that label every request (a GET, an empty POST) with the API's usual type
    assert 242122 not in rules_of(Request.make("GET", "/items", {**BROWSER, "Content-Type": "multipart/form-data"}))


def _multipart(disposition: str) -> Request:
    b = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
    body = f"--{b}\r\nContent-Disposition: form-data; {disposition}\r\nContent-Type: application/octet-stream\r\n\r\nhello\r\n--{b}--\r\n"
    return Request.make("POST", "/upload", {**BROWSER, "Content-Type": f"multipart/form-data; boundary={b}"}, body)


@pytest.mark.parametrize("disposition", ['name="test"; filename="shell.j\\s\\p"', 'name="cv.p\\d\\f"; filename="cv.pdf"'])
def test_backslash_in_a_multipart_name_is_blocked(disposition):
    assert blocked_by(_multipart(disposition), 242124)


@pytest.mark.parametrize(
    "disposition", ['name="cv"; filename="cv.pdf"', 'name="cv"; filename="C:\\Users\\me\\cv.pdf"', 'name="photo[]"; filename="IMG 0042 (1).jpg"']
)
def test_file_names_and_windows_paths_pass(disposition):
    assert 242124 not in rules_of(_multipart(disposition))


# --- the request path -----------------------------------------------------------------------------------


def test_editor_backup_file_before_path_info_is_blocked():
    assert blocked_by(get(BROWSER, "/index.php~/foo/bar/"), 242129)
    assert 242129 not in rules_of(get(BROWSER, "/~alice/index.php"))


@pytest.mark.parametrize("path", ["/get/dump.rdb", "/get/dump%2Erdb", "/default.ida", "/App/Global.asax"])
def test_server_artifacts_by_extension_are_blocked(path):
    assert blocked_by(get(BROWSER, path), 242130)


@pytest.mark.parametrize(
    "path", ["/docs/redis-rdb.html", "/src/Program.cs", "/ideas/", "/api/v2/host/example.com", "/devices/org.cups.printer"]
)
def test_pages_and_sources_by_extension_pass(path):
    assert 242130 not in rules_of(get(BROWSER, path))


# --- request smuggling in a body --------------------------------------------------------------------------


def test_request_line_and_header_in_a_text_body_is_blocked():
    body = "barGET /a.html HTTP/1.1\r\nSomething: GET /b.html HTTP/1.1\r\nHost: foo.example\r\n\r\n"
    assert blocked_by(Request.make("POST", "/", {**BROWSER, "Content-Type": "text/plain"}, body), 242104)


def test_prose_about_http_requests_passes():
    body = json.dumps({"note": "Call GET /api/items HTTP/1.1 to list them.\nThen POST to /api/items."})
    assert 242104 not in rules_of(Request.make("POST", "/notes", {**BROWSER, "Content-Type": "application/json"}, body))


# --- generic: Node.js / JavaScript ------------------------------------------------------------------------


@pytest.mark.parametrize("uri", ["/get?foo=console.info(1)", "/get?foo=c%5Cu006fnsole.info(1)", "/get?eval=while((true)))"])
def test_server_side_javascript_probes_in_a_url_are_blocked(uri):
    assert inspect(get(BROWSER, uri)).blocked


def test_console_probe_as_a_form_name_is_blocked():
    assert blocked_by(Request.make("POST", "/post", FORM, "console.info(1)\n"), 247100)


def test_console_calls_in_code_sent_as_json_or_form_fields_pass():
    doc = {"files": {"index.js": "const total = items.length;\nconsole.log(total);\n"}}
    assert 247100 not in rules_of(Request.make("POST", "/save", {**BROWSER, "Content-Type": "application/json"}, json.dumps(doc)))
    assert 247100 not in rules_of(get(BROWSER, "/search?q=console.log+not+printing"))
    code = "import%20%7B%20sum%20%7D%20from%20'./sum'%3B%0Aconst%20total%20%3D%20sum(1%2C%202)%3B%0Aconsole.log(total)%3B%0A"
    assert 247100 not in rules_of(Request.make("POST", "/run", FORM, "project%5Bfiles%5D%5Bindex.js%5D=" + code))


def test_rsc_reference_through_a_prototype_is_blocked():
    payload = json.dumps({"then": "$1:__proto__:then", "status": "resolved_model", "reason": -1, "value": '{"then":"$B1337"}'})
    assert blocked_by(Request.make("POST", "/", {**BROWSER, "Content-Type": "application/json"}, payload), 247101)
    assert blocked_by(get(BROWSER, '/get?test={"0":"$7:Module:prototype"}'), 247101)


def test_rsc_plain_references_pass():
    payload = json.dumps(["$@1", {"id": "$K2", "label": "$7:title"}])
    assert 247101 not in rules_of(Request.make("POST", "/", {**BROWSER, "Content-Type": "text/plain;charset=UTF-8"}, payload))


@pytest.mark.parametrize("segment", ["%7B%7B3*3%7D%7D", "$%7B%7B3*3%7D%7D", "I3sgMyAqIDMgfQ==", "%2A%7B7%2A7%7D"])
def test_template_expression_in_a_path_segment_is_blocked(segment):
    assert blocked_by(get(BROWSER, f"/api/items/{segment}/details"), 240100)


def test_template_placeholders_in_a_path_pass():
    # a page requesting an image before its template engine filled the placeholder in
    assert 240100 not in rules_of(get(BROWSER, "/img/%7B%7B%20item.image%20%7D%7D"))


@pytest.mark.parametrize("method", ["|GET", "GET;", "G%ET", "1GET", ""])
def test_methods_that_are_not_words_are_blocked(method):
    assert blocked_by(Request.make(method, "/", BROWSER), 242103)


@pytest.mark.parametrize("method", ["GET", "POST", "PROPFIND", "VERSION-CONTROL", "PURGE"])
def test_registered_and_extension_methods_pass(method):
    assert 242103 not in rules_of(Request.make(method, "/", BROWSER))


@pytest.mark.parametrize("probe", ["{% debug %}", "{{dump(app)}}", '{{#with "s" as |string|}}', "{{'a'.toUpperCase()}}", "${{<%[%'\"}}%\\."])
def test_template_engine_probes_are_blocked(probe):
    from urllib.parse import quote

    assert blocked_by(get(BROWSER, "/preview?tpl=" + quote(probe)), 240101)


def test_templates_a_cms_saves_pass():
    from urllib.parse import quote_plus

    tpl = "{% if user %}Hello {{ user.name }}{% endif %}\n{{#each items}}<li>{{ this.title }}</li>{{/each}}\n{{ 'TITLE' | translate }}"
    assert 240101 not in rules_of(Request.make("POST", "/admin/templates/7", FORM, "body=" + quote_plus(tpl)))
