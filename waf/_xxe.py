"""Entity references only a DTD can expand: the second half of an XXE payload.

`<lastName>&ent;</lastName>` names an entity that no HTML or XML parser knows by itself: it stands for
what a DTD declared (`<!ENTITY ent SYSTEM "file:///etc/passwd">`), sent in the same document or
injected into one the server builds. HTML text carries entity references too (`<p>&nbsp;</p>`,
`&hellip;`, `&#233;`), so a reference counts only when its name is none of HTML5's named references
(which include XML's five).
"""

from __future__ import annotations

import html.entities
import re
from typing import Final

_REFERENCE: Final = re.compile(r"&([A-Za-z_][\w.:-]{0,40});")
_KNOWN: Final = frozenset(name[:-1] for name in html.entities.html5 if name.endswith(";"))


def has_custom_entity(value: str) -> bool:
    """Whether `value` references an entity that only a DTD could declare."""
    return any(m.group(1) not in _KNOWN for m in _REFERENCE.finditer(value))


# `<!DOCTYPE root PUBLIC "public id" "system URI"`: the parser fetches the system URI (an out-of-band
# XXE, a server-side request) unless the document is HTML, whose doctype names a DTD no browser
# or HTML parser reads, or the URI is one of the W3C's own DTDs (XHTML, SVG, MathML files).
_PUBLIC_DTD: Final = re.compile(
    r"""<!doctype\s+([\w:.-]+)\s+public\s+(?:"[^"]*"|'[^']*')\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE
)
_W3C: Final = re.compile(r"\s*https?://(?:www\.)?w3\.org/", re.IGNORECASE)


def is_external_public_dtd(value: str) -> bool:
    """Whether `value` declares a doctype whose PUBLIC identifier points at a DTD to fetch from
    somewhere other than the W3C (`<!DOCTYPE foo PUBLIC "-//X//Y" "http://evil.example/a.dtd">`)."""
    for m in _PUBLIC_DTD.finditer(value):
        uri = m.group(2) if m.group(2) is not None else m.group(3)
        if m.group(1).lower() != "html" and not _W3C.match(uri):
            return True
    return False
