"""A path normalizer for traversal: is a value a path that escapes its root or reaches a secret?

A regex over `../` flags a page's own relative links and display URLs cut with an ellipsis
(`blog.example.com/u/article/details/...`), and code posted as data (`import x from '../../lib'`). A
traversal has a meaning instead: resolved as a path, after the decodings an attacker relies on (percent
and overlong UTF-8 are done by the decoded view; here textual hex `0x2e`, backslashes, `..;/` path
parameters, doubled slashes, `....//` left over when a filter strips `../`), it climbs above where it
starts (more `..` than segments before them) or reaches a sensitive target (/etc/passwd, win.ini,
boot.ini, /proc/self, WEB-INF, .git, .env, ssh keys...).

A value that is one token (no whitespace: a parameter, a file name, a URL and its query parts) is read as
a path: climbing alone is enough. In text with words (prose, markdown, YAML or code posted as data) a
relative path climbing from an unknown start is ordinary; there only a sensitive target counts.
Written for netguard.
"""

from __future__ import annotations

import re
from typing import Final

_HEX: Final = re.compile(r"0x(2e|2f|5c)", re.I)
_HEX_CHARS: Final = {"2e": ".", "2f": "/", "5c": "\\"}
_QUERY_SPLIT: Final = re.compile(r"[?&=#]")
_TOKEN_SPLIT: Final = re.compile(r"[\s'\"`<>(){}\[\],|;]+|(?<=[=:])")
_SENSITIVE: Final = re.compile(
    r"(?:^|/)(?:etc/(?:passwd|shadow|group|hosts|issue|motd|sudoers|master\.passwd|crontab|fstab|"
    r"subuid|subgid|security|ssh|mysql|httpd|apache2?|nginx|php[\w.]*|[\w.-]+\.conf\b)"
    r"|proc/(?:self|\d+|version|cmdline|environ|mounts|sched_debug)|sys/(?:class|kernel|devices|firmware)"
    r"|(?:windows|winnt)/(?:win\.ini|system\.ini|system32|repair|panther)|win\.ini|boot\.ini|system\.ini"
    r"|autoexec\.bat|inetpub/|web-inf(?:/|$)|meta-inf(?:/|$)|\.git(?:/|$)|\.svn(?:/|$)|\.env(?:\.\w+)?$"
    r"|\.htaccess|\.htpasswd|\.ssh(?:/|$)|id_rsa|id_dsa|id_ecdsa|id_ed25519|authorized_keys"
    r"|\.bash_history|\.aws/|\.docker/config|\.kube/config|wp-config\.php|config\.inc\.php|localsettings\.php"
    r"|var/log/|var/www/|root/|boot/grub|usr/local/apps/|php\.ini|my\.cnf|httpd\.conf|\.npmrc|\.netrc|\.pgpass)",
    re.I,
)


def _clean(token: str) -> str:
    t = _HEX.sub(lambda m: _HEX_CHARS[m.group(1).lower()], token) if "0x" in token.lower() else token
    return t.replace("\\", "/").replace("\0", "")


def resolve(token: str) -> tuple[str, bool]:
    """(the path resolved, whether it climbed above its start). Segments of dots only (`..`, `...`,
    `....` as left by a stripped `....//`) go up; `;params` are dropped (`..;/`); empty and `.` stay."""
    segs: list[str] = []
    climbed = False
    for raw in _clean(token).split("/"):
        seg = raw.split(";", 1)[0].rstrip(" ")
        if seg in ("", "."):
            continue
        if len(seg) >= 2 and seg.strip(".") == "":
            if segs:
                segs.pop()
            else:
                climbed = True
            continue
        segs.append(seg)
    return "/".join(segs), climbed


def _has_dotdot(token: str) -> bool:
    t = _clean(token)
    return any(len(s) >= 2 and s.strip(".") == "" for s in (x.split(";", 1)[0].rstrip(" ") for x in t.split("/")))


def sensitive(path: str) -> bool:
    return _SENSITIVE.search(path.lstrip("/")) is not None or _SENSITIVE.search(path) is not None


def is_traversal(text: str) -> bool:
    """See the module docstring (rule 230100)."""
    value = text.strip()
    if not value:
        return False
    one_token = re.search(r"\s", value) is None
    parts = _QUERY_SPLIT.split(value) if one_token else [t for t in _TOKEN_SPLIT.split(value) if t]
    for part in parts:
        if not _has_dotdot(part):
            continue
        resolved, climbed = resolve(part)
        if one_token and climbed:
            return True
        if sensitive(resolved) or sensitive(_clean(part)):
            return True
    return False


_FILE_URL: Final = re.compile(r"\bfile\s*:\s*(?:/{2,3}(?:localhost|127\.0\.0\.1)?)?(/?[^\s'\"<>]*)", re.I)
_SYSTEM_TOP: Final = frozenset("etc proc sys dev root var boot bin sbin usr tmp lib lib64 opt srv".split())


def is_file_read(text: str) -> bool:
    """A file: URL that reads a system file (rule 230106): its path climbs, is sensitive, or lies under a
    system folder (`file:///etc/passwd`, `file:///c:/windows/win.ini`, `file:/proc/self/environ`). A
    local page (`file:///C:/Users/me/page.html`) or the bare `file:///` of a browser's telemetry is no
    read of a secret."""
    for m in _FILE_URL.finditer(text):
        path = m.group(1)
        if not path.strip("/"):
            continue
        resolved, climbed = resolve(path)
        if climbed or sensitive(resolved):
            return True
        top = re.sub(r"^[a-z]:/", "", resolved.lower().lstrip("/")).split("/", 1)[0]
        if top in _SYSTEM_TOP or top in ("windows", "winnt", "inetpub"):
            return True
    return False
