"""`netguard demo`: the whole mission end to end on the lab, with a report.

As root where network namespaces work: bookinfo in the lab with the WAF sidecar injected into
productpage, the agent shipping to a controller that learns, traffic, policies generated (and equal
to the controller's), enforced in nftables, monitor mode, an attacker pod whose lateral moves are
dropped and alerted and whose attacks the sidecar blocks; a report on stdout and in
`report.json` + `report.html`. Elsewhere (or with `--replay`) a recorded capture goes through the
same pipeline, and the report says so.

Modules: `_run` (progress, subprocesses, the controller's API), `_live` (the lab), `_replay` (the
recording), `_report` (checks, text, HTML).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EPILOG = """what it does (on the lab, as root):
   1. netguard inject: the WAF sidecar into productpage (bookinfo, shipped in the package)
   2. netguard lab up: every pod a network namespace, Services on ClusterIPs, the sidecar running
   3. netguard controller (127.0.0.1, SQLite in DIR) and netguard agent (conntrack) shipping to it
   4. bookinfo's traffic for 60 s (--quick: 10 s) while the controller learns
   5. netguard policy generate + verify; the controller's GET /api/v1/policies must be equal; approve
   6. netguard lab enforce: the policies as nftables rules; every bookinfo call must still pass
   7. the namespace in monitor mode; an attacker pod tries lateral moves (dropped, one alert each)
      and sends SQL injection, XSS and path traversal to productpage (403 from the sidecar)
   8. the UI, the topology picture, and the report: stdout, DIR/report.json, DIR/report.html
Ctrl-C or a failure stops everything the demo started and takes the lab down.
Not root, or no network namespaces here: a recorded capture goes through the same pipeline (also --replay).

examples:
  sudo netguard demo                 # about 2 minutes; then the UI until you press Enter
  sudo netguard demo --quick         # about a minute, no UI (what CI runs)
  netguard demo --replay -o /tmp/d   # the recorded capture, no root needed
exit status: 0 when every check passed, 1 when one failed, 2 on bad usage."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netguard demo", description="Run netguard end to end on bookinfo, with a report.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", default="netguard-demo", metavar="DIR",
                        help="where to write the report, policies, capture and logs (default ./netguard-demo)")
    parser.add_argument("--quick", action="store_true", help="about 10 s of traffic instead of a minute, and no UI")
    parser.add_argument("--duration", type=float, metavar="S", help="seconds of traffic while learning (default 60; --quick 10)")
    parser.add_argument("--replay", action="store_true", help="replay the recorded capture even where the lab could run")
    parser.add_argument("--no-ui", action="store_true", help="do not start the UI at the end (print its command)")
    parser.add_argument("--lab-name", default="demo", metavar="N", help="the lab's name (default demo)")
    return parser


def lab_unavailable() -> str | None:
    """Why the lab cannot run here, or None."""
    from netguard.lab.system import unavailable

    return unavailable()


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from netguard.demo import _report
    from netguard.demo._run import DemoFailed

    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    duration = args.duration if args.duration is not None else (10.0 if args.quick else 60.0)
    if not 1 <= duration <= 600:
        print("netguard demo: --duration must be between 1 and 600 seconds", file=sys.stderr)
        return 2
    reason = "--replay was given" if args.replay else lab_unavailable()
    report: dict[str, Any] = {"mode": "replay" if reason else "lab", "quick": args.quick, "output": str(out),
                              "started": datetime.now(UTC).isoformat(timespec="seconds"), "notes": []}

    def write() -> None:
        report["checks"] = [{"check": w, "ok": ok, "figures": f} for w, ok, f in _report.checks(report)]
        (out / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
        (out / "report.html").write_text(_report.html_page(report))

    previous = signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    try:
        if reason:
            report["reason"] = reason
            print(f"netguard demo: REPLAY of a recorded capture, not live traffic: {reason}.", flush=True)
            from netguard.demo import _replay

            _replay.run(out, report)
        else:
            from netguard.demo import _live

            report["duration"] = duration
            report["notes"].append(
                "conntrack reports a connection when the kernel confirms it; a SYN the policies drop in the forward "
                "hook is never confirmed, so the attacker's attempts are captured by the agent's sniff source "
                "(AF_PACKET, on the attacker's veth before the drop), which ships to the same controller.")
            ui = not args.quick and not args.no_ui and sys.stdin.isatty()
            _live.run(_live.Options(out, args.quick, duration, args.lab_name, ui), report, write)
    except DemoFailed as exc:
        report["error"] = str(exc)
    except Exception as exc:  # noqa: BLE001 (the lab is already down: say what failed, in the report too)
        report["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    except KeyboardInterrupt:
        report["error"] = "interrupted"
        print("\nnetguard demo: interrupted; everything it started was stopped and the lab taken down.", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, previous)
    report.setdefault("seconds", round(time.monotonic() - started, 1))
    report["ok"] = "error" not in report and all(ok for _, ok, _ in _report.checks(report))
    write()
    print("\n" + _report.text(report), flush=True)
    if report.get("error") == "interrupted":
        return 130
    if report.get("error"):
        print(f"netguard demo: failed: {report['error']} (the lab was taken down; logs in {out}/logs)", file=sys.stderr)
    return 0 if report["ok"] else 1
