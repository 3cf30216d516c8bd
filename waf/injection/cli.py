"""`netguard inject`: the webhook's mutation, offline, on multi-document YAML (like istioctl kube-inject)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

from waf.injection.documents import DocumentError, join, render, split
from waf.injection.mutation import inject_object
from waf.injection.settings import DEFAULT_IMAGE, DEFAULTS, Settings

EPILOG = """\
Pods and pod templates labelled (or annotated) netguard.io/waf: enabled get the WAF sidecar; every
other object, the documents' order and their comments are kept as they were. A Service in the same
file that selects the pod tells which port to guard.

examples:
  netguard inject -f app.yaml -o app.injected.yaml
  netguard inject -f app.yaml | kubectl apply -f -
  kubectl get deploy web -o yaml | netguard inject -f -
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="netguard inject",
        description="Inject the netguard WAF sidecar into the opted-in workloads of Kubernetes YAML.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-f", "--filename", required=True, metavar="FILE", help="YAML to read ('-' for stdin)")
    p.add_argument("-o", "--output", metavar="FILE", default="-", help="where to write (default: stdout)")
    p.add_argument("--image", default=DEFAULT_IMAGE, help=f"sidecar image (default: {DEFAULT_IMAGE})")
    p.add_argument(
        "--mode",
        choices=("block", "detect"),
        default="block",
        help="default WAF mode when the pod has no netguard.io/waf-mode annotation",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="do not print why a pod was left alone")
    return p


def inject_text(
    text: str, *, source: str = "<input>", defaults: Settings = DEFAULTS
) -> tuple[str, list[str]]:
    """The injected YAML text and the warnings; DocumentError when the text is not YAML."""
    docs = split(text, source)
    services = [obj for doc in docs for obj in _objects(doc.obj) if obj.get("kind") == "Service"]
    texts: list[str] = []
    warnings: list[str] = []
    for doc in docs:
        obj = doc.obj
        if isinstance(obj, dict) and obj.get("kind") == "List" and isinstance(obj.get("items"), list):
            items, changed = [], False
            for item in obj["items"]:
                outcome = inject_object(item, defaults=defaults, services=services)
                items.append(outcome.pod)
                changed |= outcome.changed
                warnings += outcome.warnings
            texts.append(render(doc, {**obj, "items": items}) if changed else doc.text)
            continue
        outcome = inject_object(obj, defaults=defaults, services=services) if isinstance(obj, dict) else None
        if outcome is None:
            texts.append(doc.text)
            continue
        warnings += outcome.warnings
        texts.append(render(doc, outcome.pod) if outcome.changed else doc.text)
    return join(docs, texts), warnings


def _objects(obj: Any) -> list[dict[str, Any]]:
    if isinstance(obj, dict) and obj.get("kind") == "List" and isinstance(obj.get("items"), list):
        return [item for item in obj["items"] if isinstance(item, dict)]
    return [obj] if isinstance(obj, dict) else []


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def _write(path: str, text: str) -> None:
    """All or nothing: a temporary file beside the target, renamed over it when complete."""
    if path == "-":
        sys.stdout.write(text)
        return
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".netguard-inject-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    source = "<stdin>" if args.filename == "-" else args.filename
    try:
        text = _read(args.filename)
        out, warnings = inject_text(text, source=source, defaults=Settings(image=args.image, mode=args.mode))
        _write(args.output, out)
    except (OSError, UnicodeDecodeError) as exc:
        what = getattr(exc, "filename", None) or source
        reason = getattr(exc, "strerror", None) or str(exc)
        print(f"netguard inject: error: {what}: {reason}", file=sys.stderr)
        return 2
    except DocumentError as exc:
        print(f"netguard inject: error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        for warning in warnings:
            print(f"netguard inject: warning: {source}: {warning}", file=sys.stderr)
    return 0
