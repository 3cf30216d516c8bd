"""RFC 6902 JSON Patch between two JSON documents, as an admission webhook returns it.

Maps are compared key by key; lists and scalars that differ are replaced whole (the injection replaces
`spec.containers` rather than editing it element by element: simpler, and exact, because the API server
applies the patch to the very object it sent).
"""

from __future__ import annotations

from typing import Any


def pointer(path: list[str]) -> str:
    """A JSON Pointer (RFC 6901), '~' and '/' escaped: /metadata/annotations/netguard.io~1waf."""
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in path)


def json_patch(before: Any, after: Any, path: list[str] | None = None) -> list[dict[str, Any]]:
    path = path or []
    if isinstance(before, dict) and isinstance(after, dict):
        ops: list[dict[str, Any]] = []
        for key in before:
            if key not in after:
                ops.append({"op": "remove", "path": pointer(path + [key])})
        for key, value in after.items():
            if key not in before:
                ops.append({"op": "add", "path": pointer(path + [key]), "value": value})
            else:
                ops.extend(json_patch(before[key], value, path + [key]))
        return ops
    if before == after and type(before) is type(after):
        return []
    return [{"op": "replace", "path": pointer(path), "value": after}]
