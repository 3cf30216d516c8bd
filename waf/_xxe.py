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

_REFERENCE = re.compile(r"&([A-Za-z_][\w.:-]{0,40});")
_KNOWN = frozenset(name[:-1] for name in html.entities.html5 if name.endswith(";"))


def has_custom_entity(value: str) -> bool:
    """Whether `value` references an entity that only a DTD could declare."""
    return any(m.group(1) not in _KNOWN for m in _REFERENCE.finditer(value))
