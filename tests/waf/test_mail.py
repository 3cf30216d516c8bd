"""The mail injection detector (waf/_mail.py): headers and IMAP/SMTP/POP3 commands after a line break,
generated here from the protocols' parts; and the multi-line text of forms and JSON that mentions them."""

from __future__ import annotations

import itertools
import json
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.waf.placing import PLACES, placements
from waf import Request, inspect
from waf._mail import is_mail_injection, is_mail_injection_in_text

BREAKS = ("\r\n", "\n", "\r")
FIRST = ("", "me@example.org", "Jane Doe <jane@example.org>", "INBOX", "42")
HEADERS = ("Bcc: all@example.net", "Cc: victim@example.net", "To: x@example.net", "Subject: you won",
           "Reply-To: evil@example.net", "Content-Type: text/html")  # fmt: skip
COMMANDS = ("RCPT TO: <x@example.net>", "MAIL FROM:<a@example.net>", "QUIT", "RSET", "DATA", "NOOP", "HELO evil.example",
            "VRFY root", "a1 LOGOUT", "V101 FETCH 4791", "A0 SELECT INBOX", "t2 UID SEARCH ALL", "RETR 1", "USER admin",
            "a001 uid store 231:233", "a2 copy 2:4 MEETING", "HELP postmaster", "LIST 3")  # fmt: skip


def _injections() -> list[str]:
    return [f"{first}{br}{line}{br}" for first, br, line in itertools.product(FIRST, BREAKS[:2], HEADERS + COMMANDS)]


@pytest.mark.parametrize("value", _injections())
def test_generated_injections_are_read_as_mail_in_one_line_and_text_places(value):
    assert is_mail_injection(value), value
    first, _, rest = value.replace("\r\n", "\n").partition("\n")
    header = rest.split(" ", 1)[0].endswith(":")
    memo_title = first in ("INBOX", "42") and header and "@" not in rest  # `Memo\nSubject: x`: text
    assert is_mail_injection_in_text(value) != memo_title, value


TEXT_ANYWHERE = ["Hello there\r\nRCPT TO: <x@example.net>", "Dear team\nA1 LOGOUT", "Hello, all\nV100 CAPABILITY",
                 "a note\r\nDATA\r\nspam body\r\n.\r\n"]  # fmt: skip


@pytest.mark.parametrize("value", TEXT_ANYWHERE)
def test_envelopes_tagged_imap_and_message_bodies_count_even_in_text(value):
    assert is_mail_injection_in_text(value)


@pytest.mark.parametrize("value", ["\r\nV100 CAPABILITY\r\nV101 FETCH 4791", "\r\nQUIT\r\n", "\nRCPT TO: test@example.net\n",
                                   "me@example.org\r\nBcc: all@example.net"])  # fmt: skip
def test_every_placement_and_encoding_blocks(value):
    places = tuple(p for p in PLACES if p != "json-key") + ("json-key",)
    missed = [(where, enc) for where, enc, req in placements(value, places) if not inspect(req).blocked]
    assert missed == []


TEXT = [
    "Please see below.\nSubject: your order 1234\nThanks", "host: shop.example\r\nfrom: bot@example.org\r\ncontent-type: text/html",
    "TypeError: x is undefined\n    at list (app.js:1:2)\n    at select (app.js:3:4)", "Hi,\nI select the blue one\nlist of items",
    "Line 1\nData\nMore", "Street 1\r\nCity 2\r\nCountry", "Hello,\nFrom: Jane\nTo: John\nSubject: lunch", "Notes\n\nQuit smoking plan",
    "Agenda:\n1. Status\n2. Data review", "Memo\nTo: all staff\nFrom: HR\nSubject: holidays", "To do:\n- check the list\n- user guide",
]  # fmt: skip


@pytest.mark.parametrize("text", TEXT)
def test_multi_line_text_that_mentions_headers_or_commands_is_not_mail_in_text(text):
    assert not is_mail_injection_in_text(text), text


@pytest.mark.parametrize("text", ["me@example.org", "Subject: hello", "a\nplease check this", "2024-01-01 user logged in"])
def test_one_line_values_and_prose_are_not_mail(text):
    assert not is_mail_injection(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="\r\n\x85\u2028\u2029\x0b\x0c\x1c\x1d\x1e"), max_size=120))
def test_a_value_of_one_line_never_fires(text):
    assert not is_mail_injection(text)
    assert not is_mail_injection_in_text(text)


def test_cr_lf_text_in_json_and_forms_passes_and_an_injected_address_is_blocked():
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    comment = "Please see below.\r\nSubject: order 1234\r\nFrom: Jane"
    assert not inspect(Request.make("POST", "/contact", form, "name=Jane&message=" + quote(comment))).blocked
    assert inspect(Request.make("POST", "/contact", form, "email=" + quote("me@example.org\r\nBcc: all@example.net"))).blocked
    assert inspect(Request.make("GET", "/contact?subject=" + quote("Hi\r\nBcc: all@example.net"))).blocked
    doc = json.dumps({"mailbox": "INBOX\r\na1 LOGOUT", "n": 1})
    assert inspect(Request.make("POST", "/mail", {"Content-Type": "application/json"}, doc)).blocked
