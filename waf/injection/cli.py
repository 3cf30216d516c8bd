"""`netguard inject`: the webhook's mutation, offline, on multi-document YAML (like istioctl kube-inject)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import replace
from typing import Any

from waf.injection.documents import DocumentError, join, render, split
from waf.injection.mutation import Outcome, Result, inject_object
from waf.injection.settings import DEFAULT_IMAGE, DEFAULTS, NativeSidecar, Settings

EPILOG = """\
Pods and pod templates labelled (or annotated) netguard.io/waf: enabled get the WAF sidecar; every
other object, the documents' order and their comments are kept as they were. A Service in the same
file that selects the pod tells which port to guard. The run ends with a summary on stderr: what was
injected and how, and why each opted-in workload that was not, was left alone.

exit status: 0 done; 1 with --strict when an opted-in workload was left alone (nothing is written);
2 bad input (nothing is written).

examples:
  netguard inject -f app.yaml -o app.injected.yaml
  netguard inject -f app.yaml | kubectl apply -f -
  helm template shop ./chart | netguard inject --strict -f - | kubectl apply -f -
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
    p.add_argument(
        "--native-sidecar",
        type=NativeSidecar,
        choices=list(NativeSidecar),
        default=NativeSidecar.NEVER,
        help="run the WAF as a native sidecar (an init container with restartPolicy Always, Kubernetes >= "
        "1.29); auto asks the API server's version (default %(default)s: the output fits every cluster)",
    )
    p.add_argument("--kubeconfig", metavar="FILE", help="for --native-sidecar auto (default: ~/.kube/config)")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 and write nothing when an opted-in workload is left alone",
    )
    p.add_argument(
        "-q", "--quiet", action="store_true", help="print only the summary's last line, not each workload"
    )
    return p


def inject_text(
    text: str, *, source: str = "<input>", defaults: Settings = DEFAULTS
) -> tuple[str, list[Outcome]]:
    """The injected YAML text and the outcome of each opted-in workload; DocumentError when not YAML."""
    docs = split(text, source)
    services = [
        o for doc in docs for o in _items(doc.obj) if isinstance(o, dict) and o.get("kind") == "Service"
    ]
    texts: list[str] = []
    opted: list[Outcome] = []
    for doc in docs:
        outcomes = [inject_object(o, defaults=defaults, services=services) for o in _items(doc.obj)]
        opted += [o for o in outcomes if o.opted_in]
        if not any(o.changed for o in outcomes):
            texts.append(doc.text)  # byte for byte
        elif _is_list(doc.obj):
            texts.append(render(doc, {**doc.obj, "items": [o.pod for o in outcomes]}))
        else:
            texts.append(render(doc, outcomes[0].pod))
    return join(docs, texts), opted


def summary(outcomes: list[Outcome], *, detail: bool = True) -> list[str]:
    """The run's summary: one line per opted-in workload (how it was injected, or why not), then counts."""
    lines = []
    if detail:
        for o in outcomes:
            if o.result is Result.INJECTED:
                lines.append(f"{o.what}: injected ({o.how})")
            elif o.result is Result.ALREADY_INJECTED:
                lines.append(f"{o.what}: already injected, unchanged")
            else:
                lines += [f"warning: {w}" for w in o.warnings]
    counts = {r: sum(o.result is r for o in outcomes) for r in Result if r is not Result.NOT_OPTED_IN}
    lines.append(
        f"{len(outcomes)} opted-in workload{'s' if len(outcomes) != 1 else ''}: "
        + ", ".join(f"{n} {r.value}" for r, n in counts.items())
    )
    return lines


def _is_list(obj: Any) -> bool:
    """A `kind: List`, as `kubectl get -o yaml` prints several objects."""
    return isinstance(obj, dict) and obj.get("kind") == "List" and isinstance(obj.get("items"), list)


def _items(obj: Any) -> list[Any]:
    return list(obj["items"]) if _is_list(obj) else [obj]


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
        mask = os.umask(0o022)  # mkstemp makes 0600; the output is an ordinary file: 0666 less the umask
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _ask_version(defaults: Settings, kubeconfig: str | None, source: str) -> Settings:
    """--native-sidecar auto: the API server's version, or (said on stderr) plain sidecar containers."""
    from waf.injection.cluster import ClusterError, server_version

    try:
        version = server_version(kubeconfig)
    except ClusterError as exc:
        print(f"netguard inject: {source}: Kubernetes version unknown ({exc}): no native sidecars", file=sys.stderr)
        return defaults
    print(f"netguard inject: {source}: Kubernetes {version[0]}.{version[1]}", file=sys.stderr)
    return replace(defaults, cluster_version=version)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    source = "<stdin>" if args.filename == "-" else args.filename
    try:
        text = _read(args.filename)
        defaults = Settings(image=args.image, mode=args.mode, native_sidecar=args.native_sidecar)
        if args.native_sidecar is NativeSidecar.AUTO:
            defaults = _ask_version(defaults, args.kubeconfig, source)
        out, outcomes = inject_text(text, source=source, defaults=defaults)
        for line in summary(outcomes, detail=not args.quiet):
            print(f"netguard inject: {source}: {line}", file=sys.stderr)
        left = sum(o.result is Result.LEFT_ALONE for o in outcomes)
        if args.strict and left:
            print(f"netguard inject: --strict: {left} opted-in workload(s) left alone; nothing written", file=sys.stderr)
            return 1
        _write(args.output, out)
    except (OSError, UnicodeDecodeError) as exc:
        what = getattr(exc, "filename", None) or source
        reason = getattr(exc, "strerror", None) or str(exc)
        print(f"netguard inject: error: {what}: {reason}", file=sys.stderr)
        return 2
    except DocumentError as exc:
        print(f"netguard inject: error: {exc}", file=sys.stderr)
        return 2
    return 0
