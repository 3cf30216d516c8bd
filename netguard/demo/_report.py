"""The demo's report: the checks it must pass, as text (stdout), JSON and an HTML page with the
topology picture inline. Pure functions of the report dict (and the SVG's text)."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import yaml


def read_policies(directory: Path) -> dict[str, dict[str, Any]]:
    """`DIR/<namespace>/<workload>.yaml` files, parsed, by their path relative to DIR."""
    return {str(p.relative_to(directory)): yaml.safe_load(p.read_text()) for p in sorted(directory.rglob("*.yaml"))}


def _peer(peer: dict[str, Any]) -> str:
    if "ipBlock" in peer:
        return peer["ipBlock"].get("cidr", "?")
    parts = []
    ns = (peer.get("namespaceSelector") or {}).get("matchLabels") or {}
    if "namespaceSelector" in peer:
        parts.append(f"ns {ns.get('kubernetes.io/metadata.name') or ','.join(f'{k}={v}' for k, v in ns.items()) or '*'}")
    pods = (peer.get("podSelector") or {}).get("matchLabels") or {}
    if "podSelector" in peer:
        parts.append(",".join(f"{k}={v}" for k, v in pods.items()) or "all pods")
    return " ".join(parts) or "*"


def _rules(rules: list[dict[str, Any]] | None, side: str) -> list[str]:
    out = []
    for rule in rules or []:
        ports = ",".join(f"{p.get('port', '*')}/{p.get('protocol', 'TCP')}" for p in rule.get("ports") or []) or "all ports"
        peers = "; ".join(_peer(p) for p in rule.get(side) or []) or "anywhere"
        out.append(f"{peers} on {ports}")
    return out


def policy_table(files: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per policy: the workload, what its ingress and egress allow, the file."""
    rows = []
    for path, doc in files.items():
        spec = doc.get("spec") or {}
        meta = doc.get("metadata") or {}
        rows.append({
            "workload": ((meta.get("annotations") or {}).get("netguard.io/workload")
                         or f"{meta.get('namespace')}/{meta.get('name')}"),
            "policy": f"{meta.get('namespace')}/{meta.get('name')}",
            "ingress": _rules(spec.get("ingress"), "from") or ["deny all"],
            "egress": _rules(spec.get("egress"), "to") or ["deny all"],
            "file": path,
        })
    return rows


def checks(report: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(what, passed, figures) for each thing the demo must show."""
    out: list[tuple[str, bool, str]] = []
    traffic, enforced = report.get("traffic") or {}, report.get("enforced") or {}
    if report.get("mode") == "lab":
        out.append(("bookinfo calls allowed while learning", bool(traffic.get("all_allowed")),
                    f"{traffic.get('allowed', 0)}/{traffic.get('calls', 0)} in {traffic.get('seconds', 0)}s"))
    pol = report.get("policies") or {}
    verify = pol.get("verify") or {}
    out.append(("policies generated and sound (every observed flow allowed)",
                bool(pol.get("count")) and bool(verify.get("sound")),
                f"{pol.get('count', 0)} policies; allowed {verify.get('allowed', '?')}; extra {verify.get('extra', '?')}"))
    if report.get("mode") == "lab":
        out.append(("the controller's policies equal the generated files", bool(pol.get("controller_equal")),
                    "GET /api/v1/policies"))
        out.append(("bookinfo calls allowed under enforcement (nftables)", bool(enforced.get("all_allowed")),
                    f"{enforced.get('allowed', 0)}/{enforced.get('calls', 0)}"))
    moves = report.get("lateral") or []
    dropped = sum(bool(m.get("dropped")) for m in moves)
    out.append(("lateral moves dropped by the policies", bool(moves) and dropped == len(moves), f"{dropped}/{len(moves)}"))
    if report.get("mode") == "lab":
        once = sum(m.get("alerts") == 1 for m in moves)
        out.append(("lateral moves alerted, one alert each (monitor mode)", bool(moves) and once == len(moves),
                    f"{once}/{len(moves)}; other alerts: {len(report.get('unexpected_alerts') or [])}"))
    web = (report.get("web") or {}).get("requests") or []
    attacks = [r for r in web if r.get("expect") == "block"]
    blocked = sum(bool(r.get("blocked")) for r in attacks)
    normal = [r for r in web if r.get("expect") == "pass"]
    out.append(("attacks blocked by the WAF sidecar (403 with a request id)" if report.get("mode") == "lab"
                else "attacks blocked by the WAF engine", bool(attacks) and blocked == len(attacks),
                f"{blocked}/{len(attacks)}; normal requests passed: "
                f"{sum(bool(r.get('as_expected')) for r in normal)}/{len(normal)}"))
    if report.get("mode") == "lab":
        cleanup = report.get("cleanup") or {}
        out.append(("the lab is gone afterwards (ip netns, ip link, nft)", bool(cleanup.get("lab_gone")),
                    ", ".join(cleanup.get("leftovers") or []) or "nothing left"))
    return out


def text(report: dict[str, Any]) -> str:
    mode = report.get("mode")
    head = f"netguard demo report: {'the lab (live traffic)' if mode == 'lab' else 'REPLAY of a recorded capture'}"
    if report.get("quick"):
        head += ", --quick"
    lines = [head, "=" * len(head)]
    if mode == "replay":
        lines.append(f"why a replay: {report.get('reason', '')}")
    if report.get("error"):
        lines.append(f"FAILED: {report['error']}")
    for what, ok, figures in checks(report):
        lines.append(f"  [{'ok' if ok else 'FAIL'}] {what}: {figures}")
    table = (report.get("policies") or {}).get("table") or []
    if table:
        lines.append("\npolicies (one per workload, default deny):")
        for row in table:
            lines.append(f"  {row['workload']}")
            lines.append(f"      ingress: {' | '.join(row['ingress'])}")
            lines.append(f"      egress:  {' | '.join(row['egress'])}")
    moves = report.get("lateral") or []
    if moves:
        lines.append("\nlateral moves of the attacker:")
        for m in moves:
            alert = f", {m['alerts']} alert ({', '.join(m.get('reasons') or [])})" if "alerts" in m else ""
            if "captured_by" in m:
                alert += f"; seen by {', '.join(m['captured_by']) or 'no capture source'}"
            verdict = "dropped" if m.get("dropped") else "NOT dropped"
            lines.append(f"  {m.get('from', 'attacker')} -> {m['to']:<30} {verdict}{alert}")
    web = (report.get("web") or {}).get("requests") or []
    if web:
        lines.append("\nrequests to productpage:")
        for r in web:
            verdict = "blocked" if r.get("blocked") else "passed"
            rid = f" request id {r['request_id']}" if r.get("request_id") and r.get("blocked") else ""
            cats = f" ({','.join(r.get('categories') or [])})" if r.get("categories") else ""
            status = f"{r['status']} " if "status" in r else ""
            lines.append(f"  {r['name']:<22} {status}{verdict}{cats}{rid}")
    ui = report.get("ui") or {}
    if ui:
        if ui.get("url"):
            lines.append(f"\nUI: {ui['url']} (stopped with the demo)")
        if ui.get("offline_command"):
            lines.append(f"\nUI on the demo's files, after it: {ui['offline_command']}")
        elif ui.get("command"):
            lines.append(f"\nUI: {ui['command']}")
    lines.append(f"\nfiles in {report.get('output')}: report.json, report.html, policies/, "
                 + ("topology.svg, " if (report.get("topology") or {}).get("svg") else "") + "logs/")
    lines.append(f"result: {'PASS' if report.get('ok') else 'FAIL'} in {report.get('seconds', 0)}s")
    return "\n".join(lines)


def _svg(path: str) -> str:
    if not path or not Path(path).is_file():
        return ""
    svg = Path(path).read_text(errors="replace")
    svg = re.sub(r"^\s*<\?xml[^>]*\?>", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>", "", svg)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r"<script.*?</script>", "", svg, flags=re.S | re.I)
    return svg.strip()


_CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1d2330;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #dde}
table{border-collapse:collapse;width:100%;margin:.5em 0}td,th{border:1px solid #dde;padding:.3em .5em;text-align:left;
vertical-align:top}th{background:#f3f4f8}.ok{color:#137333;font-weight:600}.fail{color:#b3261e;font-weight:600}
.note{background:#fff4e5;border:1px solid #f0c36d;padding:.6em .8em}code{background:#f3f4f8;padding:0 .25em}
.figure{overflow:auto;border:1px solid #dde;padding:.5em}.figure svg{max-width:100%;height:auto}"""


def html_page(report: dict[str, Any]) -> str:
    e = html.escape
    mode = report.get("mode")
    rows = "".join(f"<tr><td>{e(w)}</td><td class={'ok' if ok else 'fail'}>{'ok' if ok else 'FAIL'}</td><td>{e(f)}</td></tr>"
                   for w, ok, f in checks(report))
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>netguard demo report</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>netguard demo: {'the lab, live traffic' if mode == 'lab' else 'replay of a recorded capture'}</h1>",
             f"<p>Result: <span class={'ok' if report.get('ok') else 'fail'}>{'PASS' if report.get('ok') else 'FAIL'}</span>"
             f" in {e(str(report.get('seconds', 0)))} s{' (--quick)' if report.get('quick') else ''}; started "
             f"{e(str(report.get('started', '')))}.</p>"]
    if mode == "replay":
        parts.append("<p class=note>This run replayed a recorded capture through the same pipeline: "
                     f"{e(report.get('reason', ''))}</p>")
    if report.get("error"):
        parts.append(f"<p class=note>Failed: {e(report['error'])}</p>")
    parts.append(f"<h2>What the demo must show</h2><table><tr><th>check</th><th></th><th>figures</th></tr>{rows}</table>")
    svg = _svg((report.get("topology") or {}).get("svg", ""))
    if svg:
        parts.append(f"<h2>Topology</h2><div class=figure>{svg}</div>")
    table = (report.get("policies") or {}).get("table") or []
    if table:
        body = "".join(f"<tr><td>{e(r['workload'])}</td><td>{'<br>'.join(e(x) for x in r['ingress'])}</td>"
                       f"<td>{'<br>'.join(e(x) for x in r['egress'])}</td><td><code>{e(r['file'])}</code></td></tr>"
                       for r in table)
        parts.append("<h2>Generated NetworkPolicies</h2><table><tr><th>workload</th><th>ingress from</th><th>egress to</th>"
                     f"<th>file</th></tr>{body}</table>")
    for key, title in (("traffic", "Bookinfo's calls while learning"), ("enforced", "Bookinfo's calls under enforcement")):
        t = report.get(key) or {}
        if t.get("by_call"):
            body = "".join(f"<tr><td>{e(r['call'])}</td><td>{r['calls']}</td><td>{r['as_expected']}</td></tr>"
                           for r in t["by_call"])
            parts.append(f"<h2>{title}</h2><table><tr><th>call</th><th>calls</th><th>allowed</th></tr>{body}</table>")
    moves = report.get("lateral") or []
    if moves:
        body = "".join(f"<tr><td>{e(m['to'])}</td><td>{e(m.get('why', ''))}</td>"
                       f"<td class={'ok' if m.get('dropped') else 'fail'}>{'dropped' if m.get('dropped') else 'NOT dropped'}</td>"
                       f"<td>{e(str(m.get('alerts', '-')))} {e(', '.join(m.get('reasons') or []))}</td>"
                       f"<td>{e(', '.join(m.get('captured_by') or []) or '-')}</td></tr>" for m in moves)
        parts.append("<h2>The attacker's lateral moves</h2><table><tr><th>to</th><th>why</th><th>policies</th>"
                     f"<th>alerts</th><th>seen by</th></tr>{body}</table>")
    web = (report.get("web") or {}).get("requests") or []
    if web:
        body = "".join(f"<tr><td>{e(r['name'])}</td><td><code>{e(r['method'] + ' ' + r['path'])}</code></td>"
                       f"<td>{e(str(r.get('status', '')))}</td><td class={'ok' if r.get('as_expected') else 'fail'}>"
                       f"{'blocked' if r.get('blocked') else 'passed'} {e(','.join(r.get('categories') or []))}</td>"
                       f"<td><code>{e(r.get('request_id', '') if r.get('blocked') else '')}</code></td></tr>" for r in web)
        parts.append("<h2>Requests to productpage (WAF sidecar)</h2><table><tr><th>request</th><th></th><th>status</th>"
                     f"<th>verdict</th><th>request id</th></tr>{body}</table>")
    alerts = report.get("alerts") or []
    if alerts:
        body = "".join(f"<tr><td>{e(a['source'])}</td><td>{e(a['target'])}</td><td>{a['port']}/{e(a['protocol'])}</td>"
                       f"<td>{e(', '.join(a['reasons']))}</td><td>{e(a['mode'])}</td></tr>" for a in alerts)
        parts.append("<h2>Alerts (controller, monitor mode)</h2><table><tr><th>source</th><th>target</th><th>port</th>"
                     f"<th>reasons</th><th>mode</th></tr>{body}</table>")
    ui = report.get("ui") or {}
    if ui:
        parts.append(f"<h2>UI</h2><p><code>{e(ui.get('command', ''))}</code> (with the lab up), or from the files: "
                     f"<code>{e(ui.get('offline_command', ''))}</code></p>")
    notes = report.get("notes") or []
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
