"""The demo on the lab: bookinfo as network namespaces with the WAF sidecar in productpage, the agent
shipping to the controller, learning, policies, enforcement, monitor mode, an attacker, a report.

Every step runs a `netguard` command (printed as typed) or, for the traffic and the attacker's
requests, the lab's own Python functions from inside the pods' network namespaces. Whatever happens
(a failure, Ctrl-C, SIGTERM), `finally` stops every process the demo started, by its pid, and takes
the lab down; the report says what was left (it must be nothing).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import secrets
import subprocess
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from netguard.demo._report import policy_table, read_policies
from netguard.demo._run import Api, DemoFailed, Progress, Supervisor, free_port, netguard, wait_until
from netguard.files import write_atomic

STEPS = 14


def data_dir() -> Path:
    return Path(str(resources.files("netguard") / "data" / "demo"))


@dataclass
class Options:
    out: Path
    quick: bool
    duration: float
    lab: str
    ui: bool  # start `netguard ui` at the end and wait for the user


def lab_leftovers(name: str) -> list[str]:
    """Anything of lab `name` still in `ip netns list`, `ip link` or `nft list tables`."""
    from netguard.lab.lab import leftovers

    return [item for item in leftovers(name) if not item.startswith("state ")]


def run(opts: Options, report: dict[str, Any], write: Callable[[], None]) -> None:
    """Fill `report` step by step; raises DemoFailed (or KeyboardInterrupt) with the lab cleaned up.
    With `opts.ui`, `write()` saves the report while the UI runs, until the user presses Enter."""
    progress = Progress(STEPS)
    procs = Supervisor(opts.out / "logs")
    owned: list[str] = []  # the lab, once this demo creates it: only then does the cleanup take it down
    try:
        _run(opts, report, progress, procs, owned)
        if opts.ui and "ui" in procs.procs:
            write()
            progress.say(f"\nthe report is in {opts.out}/report.html; the UI runs at {report['ui']['url']}")
            with contextlib.suppress(EOFError):
                input("press Enter (or Ctrl-C) to stop the UI and clean up... ")
    finally:
        progress.say(f"\n[cleanup] stopping what the demo started and taking the lab down  ({progress.elapsed():.0f}s)")
        stopped = procs.stop_all()
        for name in stopped:
            progress.say(f"  stopped {name}")
        down_ok = True
        if owned:
            down = subprocess.run([*_ng(), "lab", "down", "--name", opts.lab], capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL)
            down_ok = down.returncode == 0
            progress.say("  " + (down.stdout.strip() or down.stderr.strip()))
        left = lab_leftovers(opts.lab) if owned else []
        report["cleanup"] = {"stopped": stopped, "lab_down": down_ok, "leftovers": left, "lab_gone": down_ok and not left}
        progress.say(f"  lab gone: {'yes' if not left else 'NO: ' + ', '.join(left)}")
        report["seconds"] = round(progress.elapsed(), 1)


def _lab_running(name: str) -> bool:
    """Whether lab `name`'s server process still runs (a lab in use, not one left by a killed demo)."""
    from netguard.lab import lab

    try:
        state = json.loads((lab.STATE_ROOT / name / "state.json").read_text())
    except (OSError, ValueError):
        return False
    pid = int(state.get("server_pid") or 0)
    return bool(pid) and Path(f"/proc/{pid}").exists()


def _ng() -> list[str]:
    from netguard.demo._run import NETGUARD

    return NETGUARD


def _run(opts: Options, report: dict[str, Any], progress: Progress, procs: Supervisor, owned: list[str]) -> None:
    from netguard.lab import lab, traffic

    out, data = opts.out, data_dir()
    name = opts.lab
    manifests = out / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    attacks = yaml.safe_load((data / "attacks.yaml").read_text())
    spec = data / "traffic.yaml"

    progress.step("inject the WAF sidecar into productpage (netguard.io/waf: enabled)")
    injected = manifests / "bookinfo.injected.yaml"
    netguard(progress, "inject", "-f", str(data / "bookinfo-demo.yaml"), "-o", str(injected))
    report["manifests"] = {"source": "netguard/data/demo/bookinfo-demo.yaml", "injected": str(injected)}

    progress.step(f"lab up: every pod a network namespace, Services on ClusterIPs, the sidecar running (lab {name})")
    if (lab.STATE_ROOT / name / "state.json").exists():
        if _lab_running(name):
            raise DemoFailed(f"lab {name!r} is up and running (another demo?): use --lab-name, "
                             f"or `netguard lab down --name {name}`")
        netguard(progress, "lab", "down", "--name", name)  # what a demo killed hard (SIGKILL) left behind
    owned.append(name)
    netguard(progress, "lab", "up", "-f", str(injected), "--name", name, timeout=120)
    plan, _state = lab.load(name)
    netguard(progress, "lab", "status", "--name", name)
    inventory = out / "cluster.yaml"
    inventory.write_text(netguard(progress, "lab", "inventory", "--name", name, show=False).stdout)
    progress.say(f"  inventory of the lab -> {inventory}")
    page = plan.pod("productpage-v1")
    report["lab"] = {
        "name": name, "pods": len(plan.pods), "services": len(plan.services), "pod_cidr": plan.pod_cidr,
        "sidecars": [{"pod": p.ref, "container": s.container, "command": " ".join(s.argv)} for p in plan.pods
                     for s in p.processes],
    }

    progress.step("controller on 127.0.0.1 (SQLite in the output folder, learn mode) and the agent (conntrack)")
    token = secrets.token_urlsafe(24)
    token_file = out / "token"
    write_atomic(token_file, token + "\n", private=True)
    db = out / "netguard.db"
    for old in out.glob("netguard.db*"):
        old.unlink()
    port = free_port()
    api = Api(f"http://127.0.0.1:{port}", token)
    controller_args = ["controller", "--listen", f"127.0.0.1:{port}", "--db", str(db), "--token-file", str(token_file),
                       "--inventory", str(inventory), "--kube", "off"]
    _start_controller(progress, procs, api, controller_args)
    flows = out / "flows.jsonl"
    flows.unlink(missing_ok=True)
    agent_args = ["agent", "--source", "conntrack", "--inventory", str(inventory), "--output", str(flows),
                  "--controller", api.url, "--token-file", str(token_file), "--flush-interval", "1",
                  "--edge-interval", "1", "--node", "lab-node",
                  "--edges", str(out / "edges.json")]
    progress.say("$ netguard " + " ".join(agent_args) + " &")
    procs.start("agent", agent_args)
    procs.wait_log("agent", '"started"')
    report["controller"] = {"url": api.url, "db": str(db), "token_file": str(token_file)}

    progress.step(f"bookinfo's traffic for {opts.duration:.0f}s while the controller learns")
    calls = traffic.load_spec(spec)
    progress.say(f"$ netguard lab traffic --name {name} --spec {spec} --duration {opts.duration:.0f} --rate 20")
    learned = traffic.Report()
    while learned.seconds < opts.duration - 0.5:  # in slices of at most 10 s, each followed by a progress line
        part = traffic.run(plan, calls, duration=min(10.0, opts.duration - learned.seconds), rate=20, timeout=2)
        learned.results += part.results
        learned.seconds += part.seconds
        progress.say(f"  {learned.seconds:4.0f}s: {len(learned.results)} calls, {len(learned.unexpected)} failed")
    progress.say(learned.summary())
    report["traffic"] = _traffic_json(learned, opts.duration)
    if not learned.ok:
        raise DemoFailed(f"{len(learned.unexpected)} bookinfo calls failed before any policy")
    # stopping the agent (SIGTERM) writes and ships every flow it holds; it starts again right after
    progress.say(f"  agent (pid {procs.procs['agent'].pid}) stopped to flush: exit {procs.stop('agent')}")
    n_flows = _count(flows)
    # the agent captures the whole machine (other labs, other tests): the policies come from the lab's pods' flows
    learn_flows = out / "flows-lab.jsonl"
    kept = _lab_only([flows], plan.pod_cidr, learn_flows)
    progress.say(f"  the agent captured {n_flows} flows -> {flows}; {kept} started by the lab's pods -> {learn_flows}")
    report["capture"] = {"learning_flows": n_flows, "learning_lab_flows": kept}
    if not kept:
        raise DemoFailed(f"the agent captured no connection of the lab's pods (see {out / 'logs' / 'agent.log'})")
    after_flows = out / "flows-after.jsonl"
    after_flows.unlink(missing_ok=True)
    agent_args[agent_args.index(str(flows))] = str(after_flows)
    agent_args.remove("--edges")
    agent_args.remove(str(out / "edges.json"))
    progress.say("$ netguard " + " ".join(agent_args) + " &   # the agent again, for what follows")
    procs.start("agent", agent_args)
    procs.wait_log("agent", '"started"')

    progress.step("generate least-privilege NetworkPolicies from the capture, and verify them")
    policies = out / "policies"
    if policies.exists():
        for old in policies.rglob("*.yaml"):
            old.unlink()
    netguard(progress, "policy", "generate", "--inventory", str(inventory), "--flows", str(learn_flows), "-o", str(policies))
    verify = netguard(progress, "policy", "verify", "--inventory", str(inventory), "--flows", str(learn_flows),
                      "--policies", str(policies), ok=(0, 1))
    files = read_policies(policies)
    report["policies"] = {"dir": str(policies), "count": len(files), "table": policy_table(files),
                          "verify": _verify_json(verify)}

    progress.step("the controller learned the same: GET /api/v1/policies equals the files; approve them")
    equal, detail = _wait_equal(api, files)
    progress.say(f"  controller's policies equal the generated files: {'yes' if equal else 'NO: ' + detail}")
    report["policies"]["controller_equal"] = equal
    if not equal:
        raise DemoFailed(f"the controller's policies differ from the generated files: {detail}")
    for item in api.get("/api/v1/policies")["policies"]:
        api.post("/api/v1/policies/approve", {"workload": item["workload"], "decision": "approved"})
        progress.say(f"  POST /api/v1/policies/approve {item['workload']} approved")

    progress.step("enforce the policies in the lab's kernel dataplane (nftables)")
    netguard(progress, "lab", "enforce", "--name", name, "--policies", str(policies))
    progress.say(f"$ netguard lab traffic --name {name} --spec {spec}   # one round: every call must still pass")
    enforced = traffic.run(plan, calls, timeout=2)
    progress.say(enforced.summary())
    report["enforced"] = _traffic_json(enforced, 0)
    if not enforced.ok:
        raise DemoFailed(f"{len(enforced.unexpected)} bookinfo calls were denied by the generated policies")

    progress.step("switch namespace default to monitor mode at runtime (PUT /api/v1/modes/default)")
    switched = api.request("PUT", "/api/v1/modes/default", {"mode": "monitor"})
    progress.say(f"  PUT /api/v1/modes/default {{\"mode\": \"monitor\"}} -> {json.dumps(switched)}")
    if switched.get("mode") != "monitor":
        raise DemoFailed(f"namespace default is not in monitor mode after the switch: {switched}")
    report["controller"]["mode"] = {"default": "monitor"}
    # conntrack reports a connection when the kernel confirms it, and a SYN dropped in the forward hook
    # never is: the agent's sniff source sees that SYN on the attacker's veth, before the drop.
    sniff_flows = out / "flows-sniff.jsonl"
    sniff_flows.unlink(missing_ok=True)
    sniff_args = ["agent", "--source", "sniff", "--inventory", str(inventory), "--output", str(sniff_flows),
                  "--controller", api.url, "--token-file", str(token_file), "--flush-interval", "1",
                  "--edge-interval", "1", "--node", "lab-node"]
    progress.say("$ netguard " + " ".join(sniff_args) + " &   # sees SYNs the policies drop, which conntrack never confirms")
    procs.start("agent-sniff", sniff_args)
    procs.wait_log("agent-sniff", '"started"')

    attacker = plan.pod(attacks["attacker"])
    progress.step(f"the attacker ({attacker.ref}) tries lateral moves")
    driver = traffic.Driver(plan, timeout=1.5)
    moves = []
    for move in attacks["lateral"]:
        if "pod" in move:
            target = plan.pod(move["pod"])
            host, port, label = target.ip, int(move["port"]), f"pod {target.ref}:{move['port']}"
            dst_workload = move["pod"]
        else:
            host, port = traffic.parse_target(move["to"])
            label = move["to"]
            svc = plan.service(host, attacker.namespace)
            dst_workload = svc.backends(plan.pods)[0].owner_name.rsplit("-", 1)[0] if svc else host
        result = driver.call(traffic.Call(attacks["attacker"], host, port), attacker)
        dropped = not result.ok and "timed out" in result.error
        moves.append({"to": label, "address": result.address, "workload": dst_workload, "port": port,
                      "why": move.get("why", ""), "connected": result.ok, "dropped": dropped,
                      "error": result.error, "alerts": 0, "reasons": []})
        progress.say(f"  {attacker.name} -> {label:<28} {'DROPPED' if dropped else 'NOT DROPPED'} "
                     f"({result.error or result.served_by})")
    report["lateral"] = moves

    progress.step("the attacker sends attacks to productpage through its Service (the WAF sidecar answers)")
    web_host, web_port = traffic.parse_target(attacks["web"]["to"])
    svc = plan.service(web_host, attacker.namespace)
    if svc is None:
        raise DemoFailed(f"no service {web_host}")
    waf_log = lab.process_log(name, page, "netguard-waf")
    requests_ = []
    for item in attacks["web"]["requests"]:
        sent = _http(attacker.netns, svc.cluster_ip, web_port, item["method"], item["path"], web_host)
        blocked = sent["status"] == 403 and bool(sent.get("request_id"))
        passed = sent["status"] == 200
        entry = {**item, **sent, "blocked": blocked, "as_expected": blocked if item["expect"] == "block" else passed}
        requests_.append(entry)
        progress.say(f"  {item['method']} {item['path']:<58} -> {sent['status']} "
                     f"{'blocked ' + ','.join(sent.get('categories', [])) if blocked else ''} "
                     f"{('request id ' + sent['request_id']) if sent.get('request_id') else ''}")
    audit = waf_log.read_text(errors="replace") if waf_log.exists() else ""
    for entry in requests_:
        entry["in_audit_log"] = bool(entry.get("request_id")) and entry["request_id"] in audit
    report["web"] = {"target": f"{attacks['web']['to']} ({svc.cluster_ip})", "requests": requests_,
                     "audit_log": str(waf_log)}

    progress.step("alerts at the controller (monitor mode): one per lateral move")
    want = {(m["workload"], m["port"]) for m in moves}

    def lateral_alerts() -> list[dict[str, Any]] | None:
        alerts = api.get("/api/v1/alerts")["alerts"]
        got = {(_workload(a["target"]), a["port"]) for a in alerts if _workload(a["source"]) == "attacker"}
        return alerts if want <= got else None

    alerts = wait_until(lateral_alerts, timeout=20, interval=0.5) or api.get("/api/v1/alerts")["alerts"]
    per_edge = Counter((_workload(a["target"]), a["port"]) for a in alerts if _workload(a["source"]) == "attacker")
    for move in moves:
        key = (move["workload"], move["port"])
        move["alerts"] = per_edge.get(key, 0)
        move["reasons"] = sorted({r for a in alerts for r in a["reasons"]
                                  if (_workload(a["target"]), a["port"]) == key and _workload(a["source"]) == "attacker"})
    for a in alerts:
        progress.say(f"  ALERT {a['source']} -> {a['target']} {a['port']}/{a['protocol']}  "
                     f"({', '.join(a['reasons'])}; {a['mode']} mode)")
    report["alerts"] = alerts
    report["unexpected_alerts"] = [a for a in alerts if (_workload(a["target"]), a["port"]) not in want
                                   or _workload(a["source"]) != "attacker"]

    progress.step("the topology: the controller's graph, and the picture (Graphviz)")
    graph = api.get("/api/v1/graph")
    (out / "graph.json").write_text(json.dumps(graph, indent=1))
    progress.say(f"  GET /api/v1/graph -> {out / 'graph.json'}")
    svg = out / "topology.svg"
    svg.unlink(missing_ok=True)
    # the agents capture the whole machine: the picture keeps the connections the lab's pods started
    lab_flows = out / "flows-topology.jsonl"
    kept = _lab_only([flows, after_flows, sniff_flows], plan.pod_cidr, lab_flows)
    progress.say(f"  {kept} flows started by the lab's pods -> {lab_flows}")
    flow_files = [str(lab_flows)]
    drawn = netguard(progress, "graph", "export", "--inventory", str(inventory), "--flows", *flow_files, "--policies",
                     str(policies), "--format", "svg", "-o", str(svg), ok=(0, 1, 2))
    report["topology"] = {"graph_json": str(out / "graph.json"), "svg": str(svg) if svg.exists() else "",
                          "note": "" if drawn.returncode == 0 else (drawn.stderr.strip().splitlines() or [""])[-1]}

    progress.step("the UI")
    ui_cmd = f"netguard ui --controller {api.url}"
    report["ui"] = {"command": ui_cmd, "offline_command": f"netguard ui --inventory {inventory} --flows {' '.join(flow_files)}"
                                                          f" --policies {policies}"}
    if opts.ui:
        ui_port = free_port()
        procs.start("ui", ["ui", "--controller", api.url, "--listen", f"127.0.0.1:{ui_port}"])
        report["ui"]["url"] = f"http://127.0.0.1:{ui_port}/"
        wait_until(lambda: _answers(report["ui"]["url"]) or procs.procs["ui"].poll() is not None, timeout=30)
        progress.say(f"  the traffic map and the policy review: http://127.0.0.1:{ui_port}/  (served by `{ui_cmd}`)")
    else:
        progress.say(f"  with the lab up, `{ui_cmd}` serves the traffic map; after the demo the files still do:")
        progress.say(f"  $ {report['ui']['offline_command']}")

    progress.step("stop the agents (they flush) and the controller")
    for agent in ("agent-sniff", "agent"):
        rc = procs.stop(agent)
        progress.say(f"  {agent} exited {rc}")
    report["capture"].update({"conntrack_flows": _count(flows) + _count(after_flows), "sniff_flows": _count(sniff_flows),
                              "flows": str(flows)})
    # which source saw each lateral move (conntrack: never, the SYN was dropped before the kernel confirmed it)
    for move in moves:
        address = move["address"]
        move["captured_by"] = [source for source, path in (("conntrack", after_flows), ("sniff", sniff_flows))
                               if _saw(path, attacker.ip, address)]


def _start_controller(progress: Progress, procs: Supervisor, api: Api, args: list[str]) -> None:
    progress.say("$ netguard " + " ".join(args) + " &")
    proc = procs.start("controller", args)
    if not wait_until(lambda: api.ready() or proc.poll() is not None, timeout=60, interval=0.2) or proc.poll() is not None:
        raise DemoFailed(f"the controller did not become ready: {(procs.log('controller').strip().splitlines() or [''])[-1]}")
    progress.say(f"  controller ready at {api.url} (pid {proc.pid})")


def _workload(text: str) -> str:
    """`default/Deployment/details-v1` or `default/details-v1` -> `details-v1`."""
    return str(text).rsplit("/", 1)[-1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (our own loopback URL)
            return True
    except (OSError, ValueError):
        return False


def _saw(path: Path, src_ip: str, address: str) -> bool:
    """Whether a flow file has a connection from `src_ip` to `address` (ip:port, before or after DNAT)."""
    if not path.exists():
        return False
    ip, _, port = address.rpartition(":")
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("src_ip") == src_ip and str(r.get("dst_port")) == port and ip in (r.get("dst_ip"), r.get("dst_pod_ip")):
            return True
    return False


def _lab_only(paths: list[Path], pod_cidr: str, out: Path) -> int:
    """The flow records whose source is a lab pod, from `paths` into `out`; returns how many."""
    network = ipaddress.ip_network(pod_cidr)
    kept = 0
    with out.open("w") as sink:
        for path in paths:
            if not path.exists():
                continue
            for line in path.read_text().splitlines():
                try:
                    src = ipaddress.ip_address(json.loads(line).get("src_ip", ""))
                except ValueError:
                    continue
                if src in network:
                    sink.write(line + "\n")
                    kept += 1
    return kept


def _count(path: Path) -> int:
    return sum(1 for _ in path.open()) if path.exists() else 0


def _traffic_json(report: Any, duration: float) -> dict[str, Any]:
    by_call: dict[tuple[str, str], dict[str, Any]] = {}
    for r in report.results:
        key = (str(r.call), r.call.expect)
        row = by_call.setdefault(key, {"call": key[0], "expect": key[1], "calls": 0, "as_expected": 0})
        row["calls"] += 1
        row["as_expected"] += int(r.as_expected)
    ok = sum(r.ok for r in report.results)
    return {"duration": duration, "seconds": round(report.seconds, 1), "calls": len(report.results), "allowed": ok,
            "failed": len(report.results) - ok, "all_allowed": report.ok,
            "by_call": sorted(by_call.values(), key=lambda r: r["call"])}


def _verify_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"sound": proc.returncode == 0}
    for line in proc.stdout.splitlines():
        key, _, rest = line.partition(":")
        if key in ("observed", "allowed", "denied", "extra", "dns"):
            out[key] = rest.strip()
    return out


def _first_difference(ours: dict[str, Any], theirs: dict[str, Any], differing: list[str]) -> str:
    """The first lines that differ in the first differing policy (files first, controller second)."""
    import difflib

    path = differing[0]
    lines = difflib.unified_diff(yaml.safe_dump(ours[path]).splitlines(), yaml.safe_dump(theirs[path]).splitlines(),
                                 "file", "controller", n=1, lineterm="")
    return " (" + "; ".join(line for line in list(lines)[2:12]) + ")"


def _wait_equal(api: Api, files: dict[str, dict[str, Any]], timeout: float = 20.0) -> tuple[bool, str]:
    """The controller's generated policies (parsed YAML, by path) equal the files, once it has ingested all."""
    detail = ""

    def same() -> bool:
        nonlocal detail
        items = api.get("/api/v1/policies")["policies"]
        theirs = {item["path"]: yaml.safe_load(item["yaml"]) for item in items}
        ours = {path: doc for path, doc in files.items()}
        if set(theirs) != set(ours):
            detail = f"files {sorted(ours)} vs controller {sorted(theirs)}"
            return False
        differing = [p for p in ours if ours[p] != theirs[p]]
        detail = f"differ: {', '.join(differing)}{_first_difference(ours, theirs, differing)}" if differing else ""
        return not differing

    return bool(wait_until(same, timeout=timeout, interval=0.5)), detail


def _http(netns: str, address: str, port: int, method: str, path: str, host: str) -> dict[str, Any]:
    """One HTTP/1.1 request from inside `netns`; the status, the request id and the 403's categories."""
    from netguard.lab.system import socket_in

    sock = socket_in(netns)
    data = b""
    try:
        sock.settimeout(5)
        sock.connect((address, port))
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: netguard-demo\r\nConnection: close\r\n\r\n"
                     .encode())
        while chunk := sock.recv(65536):
            data += chunk
    except OSError as exc:
        return {"status": 0, "error": str(exc) or type(exc).__name__}
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return {"status": 0, "error": f"no HTTP answer: {lines[0][:80]!r}"}
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    out: dict[str, Any] = {"status": status, "request_id": headers.get("x-request-id", "")}
    if status == 403:
        try:
            verdict = json.loads(body)
            out["categories"] = list(verdict.get("categories") or [])
            out["request_id"] = verdict.get("request_id") or out["request_id"]
        except ValueError:
            out["categories"] = []
    return out
