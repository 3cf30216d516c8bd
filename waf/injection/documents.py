"""Multi-document YAML in and out, keeping every document that is not changed byte for byte.

The text is cut at document markers (`---` at the start of a line); each piece is parsed on its own, and
only the pieces whose object changed are written again (with their leading comments kept). So the file's
order, its comments and the formatting of every other object stay as they were.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

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
    """The document's text for a changed object: its leading comments, then the object as block YAML."""
    lines = doc.text.splitlines(keepends=True)
    head = []
    for line in lines:
        if line.strip() == "" or line.lstrip().startswith("#"):
            head.append(line)
        else:
            break
    body = yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)
    return "".join(head) + body


def join(docs: list[Document], texts: list[str]) -> str:
    out = []
    for doc, text in zip(docs, texts, strict=True):
        if doc.separator and out and not out[-1].endswith("\n"):
            out.append("\n")
        out.append(doc.separator + text)
    return "".join(out)
