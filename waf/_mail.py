"""Mail header and IMAP/SMTP/POP3 command injection: a line break, then a line a mail protocol obeys.

A value an application puts into a message header (an address, a subject) or into a command it sends
to a mail server (a mailbox name, a message number) must hold one line. An injection adds lines: a
header (`\\r\\nBcc: all@example.net`, `%0ACc:`, `\\nSubject:`), an SMTP envelope or a command
(`\\r\\nRCPT TO: <x@evil>`, `\\r\\nDATA`, `\\r\\nQUIT`), a tagged IMAP command (`\\r\\na1 LOGOUT`,
`\\r\\nV101 FETCH 4791`) or a POP3 one (`\\r\\nRETR 1`).

Where it applies decides how much a line means. A URL, a cookie or a header never holds several lines,
so there any header or command line after a line break is injection (`is_mail_injection`). Form fields
and JSON or XML string values are often text: stack traces, logged headers (`from:`, `content-type:`),
multi-line comments and addresses, pasted e-mails that mention `Subject:` (a false-positive class of
issue 11). There (`is_mail_injection_in_text`) a header or bare command counts only in a value that is a
one-line field otherwise — it starts with the line break, or its first line is an address (or one
word, and the header adds an address: `hi\\nBcc: x@y`, not a memo's `Memo\\nTo: all staff`) — while
envelope commands with an address (`RCPT TO: <x@y>`), upper-case tagged IMAP commands and an SMTP
message body (`DATA`, lines, a lone `.`), which no text holds, count anywhere.
Written for netguard.
"""

from __future__ import annotations

import re
from typing import Final

_LINES: Final = re.compile(r"\r\n|\r|\n")
MAIL_HEADERS: Final = frozenset(
    """to cc bcc from subject reply-to sender return-path content-type content-transfer-encoding
    mime-version x-mailer in-reply-to references errors-to disposition-notification-to""".split()
)
_HEADER: Final = re.compile(r"[ \t]*([A-Za-z][\w-]{0,40})[ \t]*:")
# SMTP and POP3 commands alone on their line, and with an argument.
_BARE: Final = frozenset("data rset quit noop starttls stat list uidl capa turn".split())
_WITH_ARG: Final = re.compile(
    r"[ \t]*(helo|ehlo|vrfy|expn|help|auth|user|pass|retr|dele|top|apop|bdat|etrn|list|uidl)[ \t]+\S", re.I
)
_ENVELOPE: Final = re.compile(
    r"[ \t]*(?:mail[ \t]+from|rcpt[ \t]+to)[ \t]*:[ \t]*<?[^\s<>@]*@?[^\s<>]*>?", re.I
)
_ENVELOPE_ADDRESS: Final = re.compile(
    r"[ \t]*(?:mail[ \t]+from|rcpt[ \t]+to)[ \t]*:[ \t]*(?:<[^<>\s]*>|[^\s@<>]+@[^\s@<>]+)", re.I
)
IMAP_COMMANDS: Final = frozenset(
    """capability noop logout starttls authenticate login select examine create delete rename subscribe
    unsubscribe list lsub status append check close expunge search fetch store copy move uid idle enable
    namespace getquota getquotaroot setquota getacl setacl myrights listrights unselect id""".split()
)
_TAGGED: Final = re.compile(r"[ \t]*([A-Za-z0-9.]{1,12})[ \t]+([A-Za-z]+)\b")
# A one-word first line (a name, a subject word, an id), not a greeting (`Hello,`) or a sentence.
_TOKEN: Final = re.compile(r"[^\s,;:.!?]{1,40}")
_ADDRESSED: Final = re.compile(r"[ \t]*(?:to|cc|bcc|reply-to|from|sender)[ \t]*:.*@", re.I)
_ADDRESS: Final = re.compile(r"[^\s@<>]+@[^\s@<>]+|[^<>\r\n]*<[^\s@<>]+@[^\s@<>]+>")


def _lines(text: str) -> list[str]:
    return _LINES.split(text)


def _is_header(line: str) -> bool:
    m = _HEADER.match(line)
    return m is not None and m.group(1).lower() in MAIL_HEADERS


def _is_command(line: str, upper_only: bool) -> bool:
    """An SMTP, POP3 or tagged IMAP command line (`upper_only`: its verb written in capitals)."""
    word = line.strip()
    if word.lower() in _BARE and (word.isupper() or not upper_only):
        return True
    if _ENVELOPE.match(line):
        return True
    m = _WITH_ARG.match(line)
    if m and (not upper_only or m.group(1).isupper()):
        return True
    return _is_tagged_imap(line, in_text=upper_only)


def _is_tagged_imap(line: str, in_text: bool) -> bool:
    """`a1 LOGOUT`, `V101 FETCH 4791`: a tag, then an IMAP verb. Prose starts lines with words too
    (`please check this`, `I LIST`): the tag holds a digit or the verb is in capitals; in text, both."""
    m = _TAGGED.match(line)
    if m is None or m.group(2).lower() not in IMAP_COMMANDS:
        return False
    digit, upper = any(c.isdigit() for c in m.group(1)), m.group(2).isupper()
    return (digit and upper) if in_text else (digit or upper)


def _data_block(lines: list[str]) -> bool:
    """An SMTP message body: `DATA` on a line of its own, later a lone `.` that ends it."""
    try:
        start = [line.strip() for line in lines[1:]].index("DATA") + 2
    except ValueError:
        return False
    return any(line.strip() == "." for line in lines[start:])


def is_mail_injection(text: str) -> bool:
    """In a one-line place (URL, cookie, header): any line after a break is a header or a command
    (rule 248100)."""
    lines = _lines(text)
    return any(_is_header(line) or _is_command(line, upper_only=False) for line in lines[1:])


def is_mail_injection_in_text(text: str) -> bool:
    """In a place that may hold text (form, multipart, JSON, XML): see the module docstring (rule 248101)."""
    lines = _lines(text)
    first = lines[0].strip()
    one_line_field = not first or _ADDRESS.fullmatch(first) is not None
    # a one-word first line (`hi`, a subject, a mailbox) is a field too, but a memo's title starts text
    # (`Memo\nTo: all staff\nSubject: holidays`): there only a header that adds an address counts
    one_word = not one_line_field and _TOKEN.fullmatch(first) is not None
    if _data_block(lines):
        return True
    for line in lines[1:]:
        if _ENVELOPE_ADDRESS.match(line) or _is_tagged_imap(line, in_text=True):
            return True
        if (one_line_field or one_word) and (_is_command(line, upper_only=True) or _is_tagged_imap(line, False)):
            return True
        if _is_header(line) and (one_line_field or (one_word and _ADDRESSED.match(line) is not None)):
            return True
    return False
