"""Detectors behind the generic rules (waf/rules/generic.yaml): they confirm what a rule's Hyperscan
prefilter found, by reading the value rather than matching more text."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

_DATA_URI: Final = re.compile(r"\s*data\s*:\s*([\w.+-]*/[\w.+-]*)?((?:\s*;[^,;]*)*),(.*)", re.I | re.S)
# Leading bytes of the raster image formats pages inline as data URIs.
_IMAGE_MAGIC: Final = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "apng": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
    "jpg": (b"\xff\xd8\xff",),
    "gif": (b"GIF87a", b"GIF89a"),
    "webp": (b"RIFF",),
    "bmp": (b"BM",),
    "x-icon": (b"\x00\x00\x01\x00",),
    "vnd.microsoft.icon": (b"\x00\x00\x01\x00",),
    "avif": (b"\x00\x00\x00",),
}


def is_active_url(text: str) -> bool:
    """False only for a data URI that is what it says, a raster image (`data:image/png;base64,`
    followed by PNG bytes): screenshots in session replays and inline images in editors. An image
    label on other bytes (PHP code behind `data:image/png`, which PHP's data wrapper includes all
    the same), text, scripts, SVG and every other scheme stay confirmed."""
    m = _DATA_URI.match(text)
    if m is None or not m.group(1):
        return True
    kind, _, sub = m.group(1).lower().partition("/")
    magic = _IMAGE_MAGIC.get(sub) if kind == "image" else None
    if magic is None or "base64" not in m.group(2).lower():
        return True
    head = re.sub(r"\s+", "", m.group(3)[:64])
    head = head[: len(head) - len(head) % 4]
    try:
        data = base64.b64decode(head, validate=True)
    except (binascii.Error, ValueError):
        return True
    if sub == "webp":
        return not (data.startswith(b"RIFF") and data[8:12] == b"WEBP")
    if sub == "avif":
        return data[4:8] != b"ftyp"
    return not data.startswith(magic)
