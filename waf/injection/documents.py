"""Multi-document YAML in and out, keeping every document that is not changed byte for byte.

The text is cut at document markers (`---` at the start of a line); each piece is parsed on its own, and
only the pieces whose object changed are written again. A changed piece is loaded a second time with
ruamel.yaml's round-trip loader, which keeps comments, quoting, flow style and key order; only the fields
the injection changed are edited in that tree (`_apply`), and it is dumped with the indentation the piece
itself uses. So the file's order, its comments and the formatting of every other line, inside the
injected object too, stay as they were. Should the round trip ever not give back exactly the injected
object, the piece is written plainly instead (its leading comments kept): correct before pretty.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError as RoundTripError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString, ScalarString

_MARKER = re.compile(r"^---(?=[ \t]|$)", re.MULTILINE)


class _Dumper(yaml.SafeDumper):
    """Block YAML with multi-line strings (scripts) as literal blocks, as a person would write them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value.rstrip("\n") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


class DocumentError(ValueError):
    """A document that is not YAML; the message names its number and line."""


@dataclass
class Document:
    separator: str  # the '---' line that opened it ('' for the first)
    text: str  # its text, up to the next separator
    obj: Any  # the parsed object (None for an empty document)
    line: int  # 1-based line of its first text line


def split(text: str, source: str = "<input>") -> list[Document]:
    docs: list[Document] = []
    starts = [m.start() for m in _MARKER.finditer(text)]
    bounds = [0] + starts + [len(text)]
    for i in range(len(bounds) - 1):
        chunk = text[bounds[i] : bounds[i + 1]]
        separator = ""
        if i > 0:
            newline = chunk.find("\n")
            separator, chunk = (chunk, "") if newline < 0 else (chunk[: newline + 1], chunk[newline + 1 :])
            rest = separator.rstrip("\n")[3:].strip()
            if rest:  # `--- {...}` or `--- !tag`: keep the content with the document
                chunk, separator = rest + "\n" + chunk, "---\n"
        line = text.count("\n", 0, bounds[i]) + (2 if i > 0 else 1)
        try:
            obj = yaml.safe_load(chunk)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f"line {line + mark.line}" if mark is not None else f"document starting at line {line}"
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise DocumentError(f"{source}: {at}: not YAML: {problem}") from None
        docs.append(Document(separator, chunk, obj, line))
    return docs


def render(doc: Document, obj: Any) -> str:
    """The document's text for its changed object: the round-tripped text, or else the plain one."""
    try:
        text = _round_trip(doc.text, doc.obj, obj)
    except (RoundTripError, ValueError, TypeError, KeyError, IndexError):
        text = None
    if text is not None and yaml.safe_load(text) == obj:
        return text
    return _plain(doc, obj)


def _plain(doc: Document, obj: Any) -> str:
    """Its leading comments, then the object as block YAML."""
    lines = doc.text.splitlines(keepends=True)
    head = []
    for line in lines:
        if line.strip() == "" or line.lstrip().startswith("#"):
            head.append(line)
        else:
            break
    body = yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)
    return "".join(head) + body


def _round_trip(text: str, before: Any, after: Any) -> str:
    mapping, offset = _guess_indent(text)
    rt = YAML()  # round-trip mode
    rt.preserve_quotes = True
    rt.width = 4096  # never fold a long line that was not folded
    rt.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    tree = rt.load(text)
    tree = _edit(tree, before, after, _quote(text))
    out = io.StringIO()
    rt.dump(tree, out)
    return out.getvalue()


def _guess_indent(text: str) -> tuple[int, int]:
    """(mapping indent, offset of a block sequence's dash under its key), read off the text itself:
    `kubectl` and kustomize write `containers:\\n- name`, Helm charts mostly `containers:\\n  - name`."""
    mapping = offset = None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for a, b in zip(lines, lines[1:], strict=False):
        ia, ib = len(a) - len(a.lstrip()), len(b) - len(b.lstrip())
        if not a.rstrip().endswith(":"):
            continue
        key = ia + 2 if a.lstrip().startswith("- ") else ia
        if b.lstrip().startswith("- ") and ib >= key and offset is None:
            offset = ib - key
        elif ib > key and mapping is None and not b.lstrip().startswith("- "):
            mapping = ib - key
        if mapping is not None and offset is not None:
            break
    return mapping or 2, offset or 0


def _quote(text: str) -> str:
    """The quote the file mostly uses for values (`"8080"` in Helm charts and kustomize, `'8080'` in
    PyYAML's output), so new values that need quotes look like the old ones."""
    double = len(re.findall(r'(?::|^\s*-) "', text, re.MULTILINE))
    single = len(re.findall(r"(?::|^\s*-) '", text, re.MULTILINE))
    return '"' if double > single else "'"


_INDICATORS = tuple(",[]{}#&*!|>'\"%@`")  # `-`, `?`, `:` only when a space or nothing follows


def _needs_quotes(value: str) -> bool:
    """Whether a plain scalar could not carry the string (ruamel then quotes it itself)."""
    if not value or value.startswith(_INDICATORS) or value != value.strip():
        return True
    if value[0] in "-?:" and value[1:2] in ("", " ") or ": " in value or " #" in value:
        return True
    try:
        return yaml.safe_load(value) != value
    except yaml.YAMLError:
        return True


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _node(value: Any, quote: str) -> Any:
    """A new value as the round-trip tree holds it: a multi-line string (a script) as a literal block, a
    string that needs quotes in the file's quotes (unless that would mean escaping)."""
    if isinstance(value, dict):
        node = CommentedMap()
        for key, item in value.items():
            node[key] = _node(item, quote)
        return node
    if isinstance(value, list):
        return CommentedSeq(_node(item, quote) for item in value)
    if isinstance(value, str) and "\n" in value.rstrip("\n"):
        return LiteralScalarString(value)
    if isinstance(value, str) and quote == '"' and '"' not in value and "\\" not in value and _needs_quotes(value):
        return DoubleQuotedScalarString(value)
    return value


def _edit(rt: Any, before: Any, after: Any, quote: str) -> Any:
    """`rt` (the round-trip tree of `before`) made equal to `after`, changing only what differs."""
    if isinstance(rt, CommentedMap) and isinstance(before, dict) and isinstance(after, dict):
        for key in [k for k in before if k not in after]:
            del rt[key]
        previous = None
        for key, value in after.items():
            if key not in before:
                rt.insert(list(rt).index(previous) + 1 if previous in rt else 0, key, _node(value, quote))
            elif not _same(before[key], value):
                rt[key] = _edit(rt[key], before[key], value, quote)
            previous = key
        return rt
    if isinstance(rt, list) and isinstance(before, list) and isinstance(after, list):
        _edit_list(rt, before, after, quote)
        return rt
    if isinstance(rt, ScalarString) and isinstance(after, str) and "\n" not in after:
        return type(rt)(after)  # keep its quotes
    return _node(after, quote)


def _edit_list(rt: list[Any], before: list[Any], after: list[Any], quote: str) -> None:
    """Lists of named items (containers, ports, env, volumes) are matched by name, so an item put in
    front (an init container) is inserted rather than every item after it rewritten; others by index."""
    names_before = _names(before)
    names_after = _names(after)
    if names_before is not None and names_after is not None:
        kept = [n for n in names_after if n in names_before]
        if kept == [n for n in names_before if n in names_after]:
            for i in reversed(range(len(before))):
                if names_before[i] not in names_after:
                    del rt[i]
            by_name = dict(zip(names_before, before, strict=True))
            for i, (name, item) in enumerate(zip(names_after, after, strict=True)):
                if name not in by_name:
                    rt.insert(i, _node(item, quote))
                elif not _same(by_name[name], item):
                    rt[i] = _edit(rt[i], by_name[name], item, quote)
            return
    for i in range(min(len(before), len(after))):
        if not _same(before[i], after[i]):
            rt[i] = _edit(rt[i], before[i], after[i], quote)
    for i in reversed(range(len(after), len(before))):
        del rt[i]
    for item in after[len(before) :]:
        rt.append(_node(item, quote))


def _names(items: list[Any]) -> list[Any] | None:
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if None in names or len(set(names)) != len(names):
        return None
    return names


def join(docs: list[Document], texts: list[str]) -> str:
    out: list[str] = []
    for doc, text in zip(docs, texts, strict=True):
        if doc.separator and "".join(out[-1:]) and not out[-1].endswith("\n"):
            out.append("\n")
        out.append(doc.separator + text)
    return "".join(out)
