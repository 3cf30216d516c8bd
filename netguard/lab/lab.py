"""`lab up` and `lab down`: create the pods' namespaces, veths, routes, ClusterIPs and servers, and
remove all of it again, also after a crash.

Containers whose command is `netguard ...` (the WAF sidecar that `netguard inject` adds) run for real
in their pod's network namespace, `python -m netguard ...` with the container's env; their ports are
theirs, and the stand-in server answers the app's (moved) port behind them.

The state (the plan, the server's and the processes' pids, the sysctls found) is written to
`/run/netguard-lab/<name>/state.json` before anything is created, so `down` always knows what to
remove; it also sweeps anything named `ng-<name>-...` that the state does not list.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netguard.errors import InputError
from netguard.inventory import iter_objects
from netguard.lab import system
from netguard.lab.plan import GATEWAY, NAME_RE, LabPlan, PodSpec, build_plan

STATE_ROOT = Path(os.environ.get("NETGUARD_LAB_STATE", "/run/netguard-lab"))
ETC_NETNS = Path("/etc/netns")
SYSCTLS = {"net.ipv4.ip_forward": "1", "net.netfilter.nf_conntrack_acct": "1"}
SERVER_START_TIMEOUT = 15.0
PROCESS_START_TIMEOUT = 30.0


def leftovers(name: str) -> list[str]:
    """Everything of lab `name` still on the machine: namespaces, links, nftables tables, state."""
    prefix = f"ng-{name}-"
    tables = {f"ip {base_table(name)}", f"ip {policy_table(name)}"}
    out = [f"netns {n}" for n in system.netns_list(prefix)] + [f"link {n}" for n in system.links(prefix)]
    out += [f"nft table {t}" for t in system.nft_tables(f"ng-{name}") if t in tables]
    if state_dir(name).exists():
        out.append(f"state {state_dir(name)}")
    return out


def state_dir(name: str) -> Path:
    return STATE_ROOT / name


def base_table(name: str) -> str:
    return f"ng-{name}"


def policy_table(name: str) -> str:
    return f"ng-{name}-pol"


def _check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise InputError(f"invalid lab name {name!r}: 1-7 characters, a-z and 0-9, starting with a letter")


def load(name: str) -> tuple[LabPlan, dict[str, Any]]:
    _check_name(name)
    path = state_dir(name) / "state.json"
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"lab {name!r} is not up (no {path}); run `netguard lab up -f MANIFESTS --name {name}`") from None
    return LabPlan.from_dict(state["plan"]), state


def _save(name: str, state: dict[str, Any]) -> None:
    path = state_dir(name) / "state.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(path)


def labs() -> list[str]:
    if not STATE_ROOT.is_dir():
        return []
    return sorted(p.name for p in STATE_ROOT.iterdir() if (p / "state.json").is_file())


def _free_slot() -> int:
    taken = set()
    for other in labs():
        with contextlib.suppress(Exception):
            taken.add(json.loads((state_dir(other) / "state.json").read_text())["plan"]["slot"])
    routes = system.run("ip", "-4", "route", "show", "root", "10.244.0.0/16", check=False).stdout
    for line in routes.split("\n"):
        parts = line.split()[0].split(".") if line.strip() else []
        if len(parts) == 4:
            taken.add(int(parts[2]))
    for slot in range(1, 255):
        if slot not in taken:
            return slot
    raise InputError("no free lab address range in 10.244.0.0/16")


def service_rules(plan: LabPlan) -> list[str]:
    """kube-proxy-like DNAT: a ClusterIP port to its backends on their target port, round robin
    (kube-proxy picks at random; round robin makes N calls reach each of N backends once)."""
    rules = []
    for svc in plan.services:
        backends = svc.backends(plan.pods)
        for sport in svc.ports:
            if sport.protocol not in ("TCP", "UDP"):
                continue
            proto = sport.protocol.lower()
            targets = [(pod.ip, svc.target_port(sport, pod)) for pod in backends]
            targets = [(ip, port) for ip, port in targets if port]
            match = f"ip daddr {svc.cluster_ip} {proto} dport {sport.port}"
            if not targets:
                continue  # no backend: the forward chain rejects it
            entries = ", ".join(f"{i} : {ip} . {port}" for i, (ip, port) in enumerate(targets))
            rules.append(f"{match} dnat ip to numgen inc mod {len(targets)} map {{ {entries} }}")
    return rules


def base_ruleset(plan: LabPlan) -> str:
    table = base_table(plan.name)
    nat = "\n".join(f"    {r}" for r in service_rules(plan))
    pods = f'"ng-{plan.name}-*"'
    cluster_ips = ", ".join(s.cluster_ip for s in plan.services)
    reject = f"    ip daddr {{ {cluster_ips} }} counter reject\n" if cluster_ips else ""
    # Hairpin: a pod reaching itself through its Service must get the answer back through the host.
    hairpin = ", ".join(f"{p.ip} . {p.ip}" for p in plan.pods)
    return f"""table ip {table} {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
{nat}
  }}
  chain output {{
    type nat hook output priority -100; policy accept;
{nat}
  }}
  chain forward {{
    type filter hook forward priority filter - 10; policy accept;
    ct state invalid counter
    iifname {pods} oifname != {pods} counter drop
{reject}  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr . ip daddr {{ {hairpin} }} snat ip to {GATEWAY}
  }}
}}
"""


def up(manifests: list[str], name: str = "lab") -> LabPlan:
    """Create the lab; on any failure, remove what was made and re-raise."""
    system.require_root()
    _check_name(name)
    if (state_dir(name) / "state.json").exists():
        raise InputError(f"lab {name!r} is already up; run `netguard lab down --name {name}` first")
    if leftovers(name):
        down(name)  # remains of a lab whose state was lost: sweep them by name first
    plan = build_plan(iter_objects(manifests), name, _free_slot())
    directory = state_dir(name)
    directory.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"plan": plan.to_dict(), "phase": "creating", "created": time.time(), "server_pid": 0,
                             "sysctl": {}, "manifests": [str(Path(m).resolve()) for m in manifests], "enforced": ""}
    _save(name, state)
    try:
        _create(plan, state)
    except BaseException:
        down(name)
        raise
    state["phase"] = "up"
    _save(name, state)
    return plan


def _create(plan: LabPlan, state: dict[str, Any]) -> None:
    name = plan.name
    found = {key: system.read_sysctl(key) for key in SYSCTLS}
    if not labs() or all(other == name for other in labs()):
        state["sysctl"] = {k: v for k, v in found.items() if v is not None}
    _save(name, state)
    system.write_sysctl("net.ipv4.ip_forward", "1")
    system.nft(base_ruleset(plan))  # its `ct state` rule makes conntrack track forwarded traffic
    system.write_sysctl("net.netfilter.nf_conntrack_acct", "1")
    system.forget_connections([pod.ip for pod in plan.pods])
    for pod in plan.pods:
        system.ip_batch([
            f"netns add {pod.netns}",
            f"link add {pod.veth} type veth peer name eth0 netns {pod.netns}",
            f"link set {pod.veth} up",
            f"route add {pod.ip}/32 dev {pod.veth} scope link",
        ])
        system.run("ip", "-n", pod.netns, "-batch", "-", input_="\n".join([
            "link set lo up",
            f"addr add {pod.ip}/32 dev eth0",
            "link set eth0 up",
            f"route add {GATEWAY} dev eth0 scope link",
            f"route add default via {GATEWAY} dev eth0",
        ]) + "\n")
        system.write_sysctl(f"net.ipv4.conf.{pod.veth}.proxy_arp", "1")
        system.write_sysctl(f"net.ipv4.neigh.{pod.veth}.proxy_delay", "0")  # answer ARP at once
        etc = ETC_NETNS / pod.netns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(
            f"nameserver {plan.dns_ip}\nsearch {pod.namespace}.svc.cluster.local svc.cluster.local cluster.local\n"
            "options ndots:5\n")
    _start_processes(plan, state, native=True)  # native sidecars start before the app, as the kubelet does
    _start_server(plan, state)  # the stand-in apps
    _start_processes(plan, state, native=False)


def process_log(name: str, pod: PodSpec, container: str) -> Path:
    """Where a real container's stdout and stderr go (the WAF's audit log among them)."""
    return state_dir(name) / f"{pod.name}.{container}.log"


def _start_processes(plan: LabPlan, state: dict[str, Any], *, native: bool) -> None:
    """Run each `netguard ...` container (the native sidecars, or the others) in its pod's namespace;
    wait until its TCP ports listen."""
    started = []
    for pod in plan.pods:
        for spec in pod.processes:
            if spec.native is not native:
                continue
            log = process_log(plan.name, pod, spec.container).open("ab")
            argv = ["ip", "netns", "exec", pod.netns, sys.executable, "-m", "netguard", *spec.argv[1:]]
            env = {**os.environ, **spec.env, "PYTHONUNBUFFERED": "1"}
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                    start_new_session=True)
            log.close()
            state.setdefault("processes", []).append({"pid": proc.pid, "netns": pod.netns, "pod": pod.ref,
                                                      "container": spec.container})
            _save(plan.name, state)
            started.append((pod, spec, proc))
    deadline = time.monotonic() + PROCESS_START_TIMEOUT
    for pod, spec, proc in started:
        ports = [p.port for p in pod.ports if p.process == spec.container and p.protocol == "TCP"]
        while not all(_listening(pod.netns, port) for port in ports):
            if proc.poll() is not None:
                tail = process_log(plan.name, pod, spec.container).read_text(errors="replace").strip().splitlines()[-1:]
                raise system.SystemError_(f"{pod.ref} container {spec.container} exited: "
                                          f"{tail[0] if tail else proc.returncode}")
            if time.monotonic() > deadline:
                raise system.SystemError_(f"{pod.ref} container {spec.container} did not listen on {ports} in time")
            time.sleep(0.1)


def _listening(netns: str, port: int) -> bool:
    sock = system.socket_in(netns)
    try:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
    finally:
        sock.close()


def _start_server(plan: LabPlan, state: dict[str, Any]) -> None:
    directory = state_dir(plan.name)
    ready = directory / "server.ready"
    ready.unlink(missing_ok=True)
    log = (directory / "server.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "netguard.lab.server", str(directory)], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, start_new_session=True)
    log.close()
    state["server_pid"] = proc.pid
    _save(plan.name, state)
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not ready.exists():
        if proc.poll() is not None:
            tail = (directory / "server.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise system.SystemError_(f"the lab's server exited: {tail[0] if tail else proc.returncode}")
        if time.monotonic() > deadline:
            raise system.SystemError_("the lab's server did not start in time")
        time.sleep(0.05)


def _is_our_server(pid: int, directory: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"netguard.lab.server" in cmdline and str(directory).encode() in cmdline


def _terminate(pid: int, still_ours: Callable[[], bool]) -> None:
    """SIGTERM, up to 5 s for the process to go, then SIGKILL; `still_ours` guards against a pid that
    was reused meanwhile."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while still_ours() and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if still_ours():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_server(name: str, pid: int) -> None:
    directory = state_dir(name)
    if pid and _is_our_server(pid, directory):
        _terminate(pid, lambda: _is_our_server(pid, directory))


def _in_netns(pid: int, netns: str) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(system.NETNS_DIR / netns).st_ino
    except OSError:
        return False


def stop_process(pid: int, netns: str) -> bool:
    """Stop a container process the lab started (only if `pid` still runs in that pod's namespace)."""
    if not pid or not _in_netns(pid, netns):
        return False
    _terminate(pid, lambda: _in_netns(pid, netns))
    return True


def _pids_in(netns_names: list[str]) -> list[tuple[int, str]]:
    """The processes running inside these network namespaces (the lab's pods), by the namespace's inode."""
    inodes = {}
    for netns in netns_names:
        with contextlib.suppress(OSError):
            inodes[os.stat(system.NETNS_DIR / netns).st_ino] = netns
    found = []
    for entry in Path("/proc").iterdir() if inodes else []:
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                owner = inodes.get(os.stat(entry / "ns" / "net").st_ino)
                if owner is not None:
                    found.append((int(entry.name), owner))
    return found


def down(name: str = "lab") -> list[str]:
    """Remove everything of lab `name` (by its state and by its name prefix); returns what was removed."""
    system.require_root()
    _check_name(name)
    removed: list[str] = []
    directory = state_dir(name)
    state: dict[str, Any] = {}
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        state = json.loads((directory / "state.json").read_text())
    if state.get("server_pid"):
        stop_server(name, int(state["server_pid"]))
        removed.append(f"server pid {state['server_pid']}")
    for proc in state.get("processes") or []:
        if stop_process(int(proc["pid"]), proc["netns"]):
            removed.append(f"{proc['pod']} container {proc['container']} pid {proc['pid']}")
    for pid, netns in _pids_in(system.netns_list(f"ng-{name}-")):  # a lost state's: whatever runs in the pods
        if stop_process(pid, netns):
            removed.append(f"pid {pid} in netns {netns}")
    for table in (policy_table(name), base_table(name)):
        if f"ip {table}" in system.nft_tables(f"ng-{name}"):
            system.run("nft", "delete", "table", "ip", table)
            removed.append(f"nft table {table}")
    prefix = f"ng-{name}-"
    planned = [p["netns"] for p in (state.get("plan") or {}).get("pods", [])]
    for netns in sorted(set(planned) | set(system.netns_list(prefix))):
        if (system.NETNS_DIR / netns).exists():
            system.run("ip", "netns", "del", netns, check=False)
            removed.append(f"netns {netns}")
        etc = ETC_NETNS / netns
        if etc.is_dir():
            shutil.rmtree(etc, ignore_errors=True)
    for link in system.links(prefix):
        system.run("ip", "link", "del", link, check=False)
        removed.append(f"link {link}")
    for etc in ETC_NETNS.glob(f"{prefix}*") if ETC_NETNS.is_dir() else []:
        shutil.rmtree(etc, ignore_errors=True)
    with contextlib.suppress(OSError):
        ETC_NETNS.rmdir()  # only when empty: nobody else keeps namespace configuration there
    if directory.exists():
        shutil.rmtree(directory, ignore_errors=True)
    if not labs():
        for key, value in (state.get("sysctl") or {}).items():
            with contextlib.suppress(OSError):
                system.write_sysctl(key, value)
    return removed
