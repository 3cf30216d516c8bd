"""`netguard policy connectivity` output: txt (netpol-analyzer's and roxctl's `SRC => DST : CONNS`, so
outputs diff across tools), json, csv, md, dot and svg. The map itself is netguard.connectivity's."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from netguard.connectivity import Connection, ConnectivityMap, Exposure
from netguard.files import write_atomic
from netguard.netpol import Direction


def _exposure_lines(exposure: list[Exposure]) -> list[str]:
    lines = ["", "Exposure Analysis Result:", "Egress Exposure:"]
    lines += [str(e) for e in exposure if e.direction is Direction.EGRESS]
    lines += ["", "Ingress Exposure:"]
    lines += [str(e) for e in exposure if e.direction is Direction.INGRESS]
    return lines


def to_txt(cmap: ConnectivityMap, exposure: bool = False) -> str:
    lines = [str(c) for c in cmap.connections]
    if exposure:
        lines += _exposure_lines(cmap.exposure)
    return "\n".join(lines) + "\n" if lines else ""


def _conn_json(c: Connection) -> dict:
    ports = [{"protocol": proto, "from": lo, "to": hi} for proto, lo, hi in c.ports.intervals()]
    return {"src": c.src.label, "dst": c.dst.label, "conn": str(c.ports), "ports": ports}


def _exposure_json(e: Exposure) -> dict:
    src, dst = (e.peer, e.workload.label) if e.direction is Direction.INGRESS else (e.workload.label, e.peer)
    return {"src": src, "dst": dst, "conn": str(e.ports), "opened_by": list(e.opened_by)}


def to_json(cmap: ConnectivityMap, exposure: bool = False) -> str:
    conns = [_conn_json(c) for c in cmap.connections]
    if not exposure:
        return json.dumps(conns, indent=2) + "\n"
    data = {
        "connlist_results": conns,
        "exposure_results": {
            "egress_exposure": [_exposure_json(e) for e in cmap.exposure if e.direction is Direction.EGRESS],
            "ingress_exposure": [_exposure_json(e) for e in cmap.exposure if e.direction is Direction.INGRESS],
        },
    }
    return json.dumps(data, indent=2) + "\n"


def to_csv(cmap: ConnectivityMap, exposure: bool = False) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["src", "dst", "conn"])
    writer.writerows([c.src.label, c.dst.label, str(c.ports)] for c in cmap.connections)
    if exposure:
        writer.writerow([])
        writer.writerow(["exposure", "src", "dst", "conn", "opened_by"])
        for e in cmap.exposure:
            row = _exposure_json(e)
            writer.writerow([str(e.direction), row["src"], row["dst"], row["conn"], "; ".join(e.opened_by)])
    return buf.getvalue()


def to_md(cmap: ConnectivityMap, exposure: bool = False) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| src | dst | conn |", "|-----|-----|------|"]
    lines += [f"| {cell(c.src.label)} | {cell(c.dst.label)} | {c.ports} |" for c in cmap.connections]
    if exposure:
        for direction, title in ((Direction.EGRESS, "Egress Exposure"), (Direction.INGRESS, "Ingress Exposure")):
            lines += ["", f"## {title}", "| workload | peer | conn | opened by |", "|-----|-----|------|------|"]
            lines += [
                f"| {cell(e.workload.label)} | {cell(e.peer)} | {e.ports} | {cell('; '.join(e.opened_by))} |"
                for e in cmap.exposure
                if e.direction is direction
            ]
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(cmap: ConnectivityMap, exposure: bool = False) -> str:
    """Namespaces as clusters, outside ranges as ellipses, one edge per connection labelled with its ports."""
    lines = [
        "digraph connectivity {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10, shape=box, style="rounded,filled", fillcolor="#e3f2fd"];',
        '  edge [fontname="Helvetica", fontsize=9, color="#2e7d32"];',
    ]
    peers = {p for c in cmap.connections for p in (c.src, c.dst)}
    by_ns: dict[str, list] = {}
    for peer in sorted(peers):
        by_ns.setdefault(peer.namespace, []).append(peer)
    for i, (namespace, members) in enumerate(sorted(by_ns.items())):
        indent = "    " if namespace else "  "
        if namespace:
            lines += [f"  subgraph cluster_{i} {{", f'    label={_quote(namespace)}; style=rounded; color="#90a4ae";']
        for peer in members:
            if peer.is_external:
                label = peer.label.replace(",", "\\n")
                lines.append(f'{indent}{_quote(peer.label)} [label="{label}", shape=ellipse, fillcolor="#fffde7"];')
            else:
                lines.append(f"{indent}{_quote(peer.label)} [label={_quote(f'{peer.name}[{peer.kind}]')}];")
        if namespace:
            lines.append("  }")
    for c in cmap.connections:
        lines.append(f"  {_quote(c.src.label)} -> {_quote(c.dst.label)} [label={_quote(str(c.ports))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(cmap: ConnectivityMap, exposure: bool = False) -> str:
    from visualizer.export import run_graphviz

    return run_graphviz(to_dot(cmap), "svg").decode("utf-8")


FORMATS = {"txt": to_txt, "json": to_json, "csv": to_csv, "md": to_md, "dot": to_dot, "svg": to_svg}


def write_output(path: Path, text: str) -> None:
    """Whole or not at all: a temporary file beside the target, renamed over it."""
    if path.is_dir():
        from netguard.errors import InputError

        raise InputError("is a folder, expected a file", source=str(path))
    write_atomic(path, text)
