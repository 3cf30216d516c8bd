"""The grammar-aware SQL detector: injections read as SQL in their context, ordinary text does not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waf import Request, inspect
from waf._sqli import fingerprints, is_sqli

ATTACKS = [
    "' or 1=1--", "or 1=1", "or a=a", "' or 'a'='a", "a' or 1=1--", "admin'--", "'; drop table users",
    "1 union select 1,2", "' or 1 --'", "hi or 1=1 --", "or 1=1 /*", "having 1=1--", "group by userid having 1=1--",
    "select name from sysibm.systables; drop table x", "exec xp_cmdshell 'dir'", "'); --", "x' AND members.email IS NULL; --",
    "' or 2 > 1", "' (select top 1", "or sleep(5)#", "PRINT @@version", "1;SELECT *", "' or username like '%'",
    "1' order by 1--", "select * from users--", "1 or sleep(5)#", "1or1=1", "1 and (1)=1", "hi or a=a",
    "or 2 between 1 and 3", "; or '1'='1'", "1 uni/**/on select all from where", "0x77616974666f722064656c617920",
    "0x770061006900740066006F0072002000640065006C00", "‘ or 1=1 --", "' OR EXISTS(SELECT * FROM users)-- -",
    "'-'", "' '", "'*'", "' or '' '", "'=0--+",
]  # fmt: skip
TEXT = [
    "rock and roll", "salt and pepper = good", "select a plan from the list", "it's or nothing",
    "Tom & Jerry; see you", "please select one", "I'd say it's fine", "don't -- ok", "2 + 2 = 4",
    "O'Reilly books", "the union selected a new leader", "where is my order", "rock 'n' roll", "50% off",
    "user@example.com", "He said \"yes\" or \"no\"", "it's 5 or 6", "choose 1 or 2", "union select 关键字怎么用",
    "@crypt_5f3a", "@@88e99d865f6f1a9e", "select * from users", "select 1 from a", "a or a=ab",
    "SELECT * FROM users WHERE users.slug = 'user411' LIMIT 1;", "sql注入的“and 1=1，and 1=2”测试法可以直接用and代替吗？",
    "0x742d35cc6634c0532925a3b844bc454e4438f44e", "this or that = this", "0AND0F8T5N4N7QT0",
    "{\"html\": \"<a>x</a>\", \"js\": \"document.querySelector('#box_4f')&& (x.style.display='block')\"}",
    # Markdown, command lines, pipe tables, prose and code (FP classes of the detector)
    "the rule comments, and `--format cilium` writes `toFQDNs`", "| 210102 | sqli: UNION SELECT | 58 |",
    "and Last-Modified cache validators.", "warranty; and distribute a copy", "(select the one for your release):",
    "The commands `show w' and `show c' should show", "\"work based on the library\" and a \"work that uses it\"",
    "For the developers' and authors' protection", "'K'        #  0x4B -> LATIN CAPITAL LETTER K", "print(path)",
    "or isinstance(action, _SubParsersAction):", "supportsDataView && hasObjectTag(new DataView(8))",
    "and self.d == other.d", "var terminatorPos = argv.indexOf(\"--\");", "console.log(\"### Servers available\");",
    "`X-Forwarded-Proto` and `X-Request-Id` set", "(at least the part from \"-----BEGIN CERTIFICATE-----\" up to",
    "`)&&(S=``);return g+=S+x", 'function(){try{e(document.querySelector("div[".concat(ey,"]")))}catch(e){}}', "throw new Error(`option '--${key}' should not be passed`)", 'Munchkin.init("%s") options:', "U50||1688379853559",
]  # fmt: skip


@pytest.mark.parametrize("value", ATTACKS)
def test_injections_have_an_injection_fingerprint(value):
    assert is_sqli(value), fingerprints(value)


@pytest.mark.parametrize("value", TEXT)
def test_ordinary_text_does_not(value):
    assert not is_sqli(value), fingerprints(value)


def test_the_detector_confirms_its_prefilter_in_the_engine():
    assert inspect(Request.make("GET", "/search?q=hi%20or%201%3D1%20--")).blocked
    assert not inspect(Request.make("GET", "/search?q=salt%20and%20pepper%20%3D%20good")).blocked


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_the_tokenizer_never_raises(value):
    assert isinstance(is_sqli(value), bool)
