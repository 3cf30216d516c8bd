"""The demo where the lab cannot run (not root, no network namespaces) or with `--replay`: a recorded
capture of bookinfo's traffic through the same pipeline. Policies are generated and verified from
the recording, the attacker's lateral moves are checked against them with `policy explain` (the
semantics engine the lab's nftables compiler agrees with), and the attacker's requests go through
the WAF's engine, the library the sidecar runs."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from netguard.demo._report import policy_table, read_policies
from netguard.demo._run import Progress, netguard

STEPS = 5


def sample() -> Path:
    return Path(str(resources.files("netguard") / "data" / "bookinfo"))


def run(out: Path, report: dict[str, Any]) -> None:
    from netguard.demo._live import data_dir

    progress = Progress(STEPS)
    data = sample()
    inventory = [str(data / "bookinfo.yaml"), str(data / "bookinfo-cluster.yaml")]
    flows = [str(data / "bookinfo-flows.jsonl")]
    policies = out / "policies"
    attacks = yaml.safe_load((data_dir() / "attacks.yaml").read_text())
    progress.say(f"netguard demo (replay): Istio's bookinfo with a recorded capture of its traffic ({flows[0]}).")

    progress.step("generate least-privilege NetworkPolicies from the recorded flows")
    if policies.exists():
        for old in policies.rglob("*.yaml"):
            old.unlink()
    netguard(progress, "policy", "generate", "--inventory", *inventory, "--flows", *flows, "-o", str(policies))
    files = read_policies(policies)

    progress.step("verify: every observed flow allowed, nothing extra inside the cluster")
    verify = netguard(progress, "policy", "verify", "--inventory", *inventory, "--flows", *flows,
                      "--policies", str(policies), ok=(0, 1))
    from netguard.demo._live import _verify_json

    report["policies"] = {"dir": str(policies), "count": len(files), "table": policy_table(files),
                          "verify": _verify_json(verify)}
    report["capture"] = {"flows": flows[0], "recorded_flows": sum(1 for _ in open(flows[0]))}

    progress.step("lateral moves bookinfo never makes: denied by the policies (`policy explain`)")
    moves = []
    # the recording has no attacker pod: the same moves, made by productpage (the internet-facing pod)
    for src, dst, port in (("productpage-v1", "ratings-v1", 9080), ("details-v1", "reviews-v1", 9080),
                           ("ratings-v1", "productpage-v1", 9080), ("reviews-v1", "details-v1", 9080)):
        proc = netguard(progress, "policy", "explain", "--inventory", *inventory, "--policies", str(policies),
                        "--from", f"default/{src}", "--to", f"default/{dst}", "--port", str(port), ok=(0, 1), show=False)
        denied = proc.returncode == 1
        progress.say(f"  {src} -> {dst}:{port}: {'denied' if denied else 'ALLOWED'}"
                     f" ({(proc.stdout.strip().splitlines() or [''])[0]})")
        moves.append({"from": src, "to": f"{dst}:{port}", "workload": dst, "port": port, "dropped": denied,
                      "why": "denied by the generated policies (semantics engine)"})
    report["lateral"] = moves

    progress.step("the attacker's requests through the WAF engine (the sidecar's library)")
    from waf import Request, inspect

    requests_ = []
    for item in attacks["web"]["requests"]:
        verdict = inspect(Request.make(item["method"], item["path"], {"Host": "productpage"}))
        entry = {**item, "blocked": verdict.blocked, "categories": verdict.categories, "score": verdict.score}
        entry["as_expected"] = verdict.blocked == (item["expect"] == "block")
        requests_.append(entry)
        shown = "blocked " + ",".join(verdict.categories) if verdict.blocked else "passed"
        progress.say(f"  {item['method']} {item['path']:<58} {shown}")
    report["web"] = {"target": "waf.inspect (no sidecar process in a replay)", "requests": requests_}

    progress.step("the topology picture (Graphviz) and the graph as JSON")
    svg = out / "topology.svg"
    svg.unlink(missing_ok=True)
    drawn = netguard(progress, "graph", "export", "--inventory", *inventory, "--flows", *flows, "--policies", str(policies),
                     "--format", "svg", "-o", str(svg), ok=(0, 1, 2))
    netguard(progress, "graph", "export", "--inventory", *inventory, "--flows", *flows, "--policies", str(policies),
             "--format", "json", "-o", str(out / "graph.json"))
    report["topology"] = {"graph_json": str(out / "graph.json"), "svg": str(svg) if svg.exists() else "",
                          "note": "" if drawn.returncode == 0 else (drawn.stderr.strip().splitlines() or [""])[-1]}
    report["ui"] = {"command": f"netguard ui --inventory {' '.join(inventory)} --flows {flows[0]} --policies {policies}"}
    report["seconds"] = round(progress.elapsed(), 1)
