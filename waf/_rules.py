"""Rules as data: YAML files of rules with id, category, paranoia, severity, targets, view and
either a `pattern` (compiled into a Hyperscan database, never run through backtracking `re`) or a
`check` (a named protocol check written in Python, see `_protocol.py`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from waf._generic import is_active_url
from waf._ldap import is_ldap_injection
from waf._mail import is_mail_injection, is_mail_injection_in_text
from waf._nosql import is_js_injection as is_nosql_js
from waf._nosql import is_operator_injection
from waf._php import is_php_call
from waf._shell import is_command_injection, is_glob_command, is_obfuscated_command, is_substitution
from waf._sqli import is_sqli
from waf._traversal import is_file_read, is_traversal
from waf._xss import (
    is_bare_js,
    is_css_code,
    is_dangerous_element,
    is_event_handler,
    is_js_alias,
    is_js_function_injection,
    is_js_injection,
    is_script_url,
)
from waf._xxe import has_custom_entity, is_external_public_dtd

SEVERITY_SCORE = {"critical": 5, "error": 4, "warning": 3, "notice": 2}
KINDS = frozenset(
    {
        "method",
        "path",
        "uri",
        "arg",
        "arg_name",
        "header",
        "header_name",
        "cookie",
        "cookie_name",
        "filename",
        "body",
    }
)
VIEWS = frozenset({"decoded", "cmdline", "compact", "raw", "path"})
CATEGORIES = frozenset(
    {
        "sqli", "xss", "lfi", "rfi", "rce", "php", "java", "ssrf", "xxe", "ldap", "nosql", "xpath", "ssti",
        "jndi", "crlf", "smuggling", "scanner", "protocol", "protocol-attack", "nodejs", "session-fixation",
        "multipart", "generic", "mail",
    }
)  # fmt: skip


# Grammar-aware detectors: a rule's Hyperscan `pattern` is their prefilter (most values never reach
# Python); the detector then reads the value's grammar and confirms or drops the match.
DETECTORS: dict[str, Callable[[str], bool]] = {
    "sql": is_sqli,
    "xml_entity": has_custom_entity,
    "xml_public_dtd": is_external_public_dtd,
    "php_call": is_php_call,
    "shell": is_command_injection,
    "shell-substitution": is_substitution,
    "shell-obfuscation": is_obfuscated_command,
    "shell-glob": is_glob_command,
    "traversal": is_traversal,
    "file-read": is_file_read,
    "js": is_js_injection,
    "js_bare": is_bare_js,
    "js_alias": is_js_alias,
    "js_function": is_js_function_injection,
    "event_handler": is_event_handler,
    "script_url": is_script_url,
    "html_element": is_dangerous_element,
    "style_block": is_css_code,
    "active_url": is_active_url,
    "nosql_operator": is_operator_injection,
    "nosql_js": is_nosql_js,
    "ldap": is_ldap_injection,
    "mail": is_mail_injection,
    "mail_text": is_mail_injection_in_text,
}

# Where a value came from: the part of its location before `:` (`query:q`, `json:a.b`, `path`).
SOURCES = frozenset({"query", "path", "form", "multipart", "json", "xml", "body", "header", "cookie", "uri", "method"})


class RuleError(ValueError):
    """A rule file that cannot be used: names the file, the rule and the key."""


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    category: str
    paranoia: int
    severity: str
    targets: frozenset[str]
    view: str
    msg: str
    pattern: str | None = None
    check: str | None = None
    detector: str | None = None  # a grammar detector confirming what `pattern` prefilters (see DETECTORS)
    case_sensitive: bool = False
    match: tuple[str, ...] = ()
    nomatch: tuple[str, ...] = ()
    source: str = ""
    sources: frozenset[str] = frozenset()  # where the rule applies (empty: everywhere its targets are)
    navigation_only: bool = False  # only on a navigation an attacker could have lured a user into (`lured_navigation`)
    except_headers: frozenset[str] = frozenset()  # header names (lowercase) the rule skips
    only_headers: frozenset[str] = frozenset()  # header names (lowercase): the only headers the rule reads

    def applies_at(self, location: str) -> bool:
        if self.except_headers and location.startswith("header:") and location[7:].lower() in self.except_headers:
            return False
        if self.only_headers and "header:" in location and not (
            location.startswith("header:") and location[7:].lower() in self.only_headers
        ):
            return False
        if not self.sources:
            return True
        return location.split(":", 1)[0].split("|", 1)[0] in self.sources

    @property
    def score(self) -> int:
        return SEVERITY_SCORE[self.severity]


def _fail(source: str, rid: object, key: str, why: str) -> RuleError:
    return RuleError(f"{source}: rule {rid}: {key}: {why}")


def parse_rules(doc: object, source: str) -> list[Rule]:
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise RuleError(f"{source}: rules: expected a mapping with a `rules:` list")
    defaults = doc.get("defaults") or {}
    out: list[Rule] = []
    for raw in doc["rules"]:
        if not isinstance(raw, dict):
            raise RuleError(f"{source}: rules: every rule must be a mapping")
        item = {**defaults, **raw}
        rid = item.get("id")
        if not isinstance(rid, int) or rid <= 0:
            raise _fail(source, rid, "id", "must be a positive integer")
        category = item.get("category")
        if category not in CATEGORIES:
            raise _fail(source, rid, "category", f"unknown category {category!r}")
        paranoia = item.get("paranoia", 1)
        if paranoia not in (1, 2, 3, 4):
            raise _fail(source, rid, "paranoia", "must be 1, 2, 3 or 4")
        severity = item.get("severity", "critical")
        if severity not in SEVERITY_SCORE:
            raise _fail(source, rid, "severity", f"one of {sorted(SEVERITY_SCORE)}")
        targets = item.get("targets", ["arg", "arg_name", "cookie", "header"])
        if not isinstance(targets, list) or not targets or not set(targets) <= KINDS:
            raise _fail(source, rid, "targets", f"a non-empty list of {sorted(KINDS)}")
        view = item.get("view", "decoded")
        if view not in VIEWS:
            raise _fail(source, rid, "view", f"one of {sorted(VIEWS)}")
        pattern, check = item.get("pattern"), item.get("check")
        if (pattern is None) == (check is None):
            raise _fail(source, rid, "pattern", "exactly one of `pattern` and `check`")
        if pattern is not None and (not isinstance(pattern, str) or not pattern):
            raise _fail(source, rid, "pattern", "must be a non-empty string")
        detector = item.get("detector")
        if detector is not None and (detector not in DETECTORS or pattern is None):
            raise _fail(source, rid, "detector", f"one of {sorted(DETECTORS)}, with a prefilter `pattern`")
        sources = item.get("sources", [])
        if not isinstance(sources, list) or not set(sources) <= SOURCES:
            raise _fail(source, rid, "sources", f"a list of {sorted(SOURCES)}")
        except_headers = item.get("except_headers", [])
        if not isinstance(except_headers, list):
            raise _fail(source, rid, "except_headers", "a list of header names")
        only_headers = item.get("only_headers", [])
        if not isinstance(only_headers, list):
            raise _fail(source, rid, "only_headers", "a list of header names")
        tests = item.get("tests") or {}
        out.append(
            Rule(
                id=rid,
                category=category,
                paranoia=paranoia,
                severity=severity,
                targets=frozenset(targets),
                view=view,
                msg=str(item.get("msg", "")),
                pattern=pattern,
                check=check,
                case_sensitive=bool(item.get("case_sensitive", False)),
                match=tuple(str(t) for t in tests.get("match", ())),
                nomatch=tuple(str(t) for t in tests.get("nomatch", ())),
                source=source,
                sources=frozenset(sources),
                detector=detector,
                navigation_only=bool(item.get("navigation_only", False)),
                except_headers=frozenset(str(h).lower() for h in except_headers),
                only_headers=frozenset(str(h).lower() for h in only_headers),
            )
        )
    return out


def load_file(path: str | Path) -> list[Rule]:
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RuleError(f"{p}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise RuleError(f"{p}: not valid YAML: {exc}") from exc
    return parse_rules(doc, str(p))


def builtin_rules() -> list[Rule]:
    """The rules shipped in waf/rules/*.yaml, sorted by id; ids are unique."""
    rules: list[Rule] = []
    folder = resources.files("waf") / "rules"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            rules.extend(parse_rules(yaml.safe_load(entry.read_text(encoding="utf-8")), f"waf/rules/{entry.name}"))
    seen: dict[int, str] = {}
    for r in rules:
        if r.id in seen:
            raise RuleError(f"{r.source}: rule {r.id}: id: duplicate of a rule in {seen[r.id]}")
        seen[r.id] = r.source
    return sorted(rules, key=lambda r: r.id)
