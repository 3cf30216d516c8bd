"""The traffic driver: calls between lab pods by service name, through the lab's DNS.

A spec is YAML: a list of calls (or `{calls: [...]}`), each

    from: productpage-v1     # a workload, [ns/]name; every pod of it makes the call
    to: details:9080         # service[.ns[.svc.cluster.local]][:port], or IP:port
    protocol: TCP            # TCP (default) or UDP
    count: 1                 # calls per source pod per round (default 1, at most 1000)
    expect: allow            # allow (default) or deny: a denied call must fail to connect or get no answer

Every call runs in the source pod's network namespace (its socket is made there): a DNS query to
kube-dns's ClusterIP (the name relative to the pod's namespace), then a TCP connection with a
one-line HTTP request or a UDP datagram, and the answer of the pod that served it. Rounds repeat for
`duration` seconds (at most 600, at most 1,000,000 calls), at most `rate` calls per second.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from netguard.errors import InputError
from netguard.lab import dns
from netguard.lab.plan import LabPlan, PodSpec
from netguard.lab.system import socket_in

MAX_DURATION = 600.0
MAX_CALLS = 1_000_000
MAX_COUNT = 1000


@dataclass(frozen=True)
class Call:
    source: str  # a workload, [ns/]name
    host: str  # a service name or an IP
    port: int = 0  # 0: the service's first port of the protocol
    protocol: str = "TCP"
    count: int = 1
    expect: str = "allow"

    def __str__(self) -> str:
        return f"{self.source} -> {self.host}:{self.port or '?'}/{self.protocol}"


@dataclass
class Result:
    call: Call
    pod: str
    ok: bool  # connected and answered
    address: str = ""
    served_by: str = ""
    error: str = ""

    @property
    def as_expected(self) -> bool:
        return self.ok == (self.call.expect == "allow")


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def unexpected(self) -> list[Result]:
        return [r for r in self.results if not r.as_expected]

    @property
    def ok(self) -> bool:
        return bool(self.results) and not self.unexpected

    def summary(self) -> str:
        counts = Counter((str(r.call), r.call.expect, r.as_expected) for r in self.results)
        lines = []
        for (call, expect, good), n in sorted(counts.items()):
            lines.append(f"  {call:<55} expect {expect:<5} {'as expected' if good else 'UNEXPECTED'} x{n}")
        bad = len(self.unexpected)
        lines.append(f"{len(self.results)} calls in {self.seconds:.1f}s: {len(self.results) - bad} as expected, {bad} not")
        return "\n".join(lines)


def parse_target(text: str) -> tuple[str, int]:
    host, sep, port = str(text).rpartition(":")
    if not sep:
        return str(text), 0
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"invalid port in {text!r}")
    return host, int(port)


def load_spec(path: str | Path) -> list[Call]:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=str(path)) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}".splitlines()[0], source=str(path)) from None
    return parse_spec(raw, str(path))


def parse_spec(raw: Any, source: str = "<spec>") -> list[Call]:
    if isinstance(raw, dict):
        raw = raw.get("calls")
    if not isinstance(raw, list) or not raw:
        raise InputError("a traffic spec is a non-empty list of calls (or {calls: [...]})", source=source)
    calls = []
    for i, item in enumerate(raw):
        where = f"calls[{i}]"
        if not isinstance(item, dict):
            raise InputError(f"{where} must be a mapping with from and to", source=source)
        unknown = set(item) - {"from", "to", "protocol", "count", "expect", "port"}
        if unknown:
            raise InputError(f"{where}: unknown field {sorted(unknown)[0]!r}", source=source)
        if not item.get("from") or not item.get("to"):
            raise InputError(f"{where} needs from (a workload) and to (service[:port])", source=source)
        host, port = parse_target(str(item["to"]))
        if item.get("port") is not None:
            port = item["port"]
        protocol = str(item.get("protocol") or "TCP").upper()
        if protocol not in ("TCP", "UDP"):
            raise InputError(f"{where}: protocol must be TCP or UDP, got {protocol!r}", source=source)
        count = item.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
            raise InputError(f"{where}: count must be an integer 1-{MAX_COUNT}", source=source)
        expect = str(item.get("expect") or "allow")
        if expect not in ("allow", "deny"):
            raise InputError(f"{where}: expect must be allow or deny", source=source)
        if not isinstance(port, int) or not 0 <= port < 65536:
            raise InputError(f"{where}: invalid port {port!r}", source=source)
        calls.append(Call(str(item["from"]), host, port, protocol, count, expect))
    return calls


def env_calls(plan: LabPlan) -> list[Call]:
    """The calls the manifests imply: every `host:port` env value whose host is a lab service."""
    calls = []
    for workload, host, port in plan.env_targets:
        ns = workload.partition("/")[0]
        if plan.service(host, ns) is not None:
            calls.append(Call(workload, host, int(port)))
    if not calls:
        raise InputError("the manifests' env values name no lab service as host:port; use --spec FILE")
    return calls


class Driver:
    """Makes calls from lab pods. Sockets are created in the source pod's network namespace."""

    def __init__(self, plan: LabPlan, timeout: float = 2.0) -> None:
        self.plan = plan
        self.timeout = timeout
        self._qid = random.randrange(1, 65535)

    def resolve(self, pod: PodSpec, name: str) -> str | None:
        """Ask the lab's kube-dns from inside `pod`, as the pod's resolver would."""
        try:
            ipaddress.ip_address(name)
            return name
        except ValueError:
            pass
        for _attempt in range(3):
            self._qid = self._qid % 65535 + 1
            sock = socket_in(pod.netns, socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.settimeout(self.timeout / 2)
                sock.sendto(dns.query(name, self._qid), (self.plan.dns_ip, 53))
                while True:
                    data = sock.recv(1500)
                    try:
                        return dns.parse_answer(data, self._qid)
                    except ValueError:
                        continue  # a late answer to an earlier query
            except OSError:
                continue
            finally:
                sock.close()
        raise OSError(f"DNS: no answer from {self.plan.dns_ip} for {name}")

    def call(self, call: Call, pod: PodSpec) -> Result:
        result = Result(call, pod.ref, False)
        try:
            address = self.resolve(pod, call.host)
            if address is None:
                result.error = f"DNS: no such name {call.host}"
                return result
            port = call.port or self._default_port(call, pod)
            result.address = f"{address}:{port}"
            if call.protocol == "TCP":
                body = self._tcp(pod, address, port, call.host)
            else:
                body = self._udp(pod, address, port)
        except OSError as exc:
            result.error = str(exc) or type(exc).__name__
            return result
        result.ok = bool(body)
        result.served_by = body.decode(errors="replace").rpartition("\r\n\r\n")[2][:200]
        if not body:
            result.error = "no answer"
        return result

    def _default_port(self, call: Call, pod: PodSpec) -> int:
        svc = self.plan.service(call.host, pod.namespace)
        port = next((p.port for p in (svc.ports if svc else []) if p.protocol == call.protocol), 0)
        if not port:
            raise OSError(f"{call.host} has no {call.protocol} port; give one as host:port")
        return port

    def _tcp(self, pod: PodSpec, address: str, port: int, host: str) -> bytes:
        sock = socket_in(pod.netns, socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect((address, port))
            sock.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: netguard-lab\r\n\r\n".encode())
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            sock.close()

    def _udp(self, pod: PodSpec, address: str, port: int) -> bytes:
        sock = socket_in(pod.netns, socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.settimeout(self.timeout)
            sock.sendto(b"netguard-lab\n", (address, port))
            return sock.recv(4096)
        finally:
            sock.close()


def run(plan: LabPlan, calls: list[Call], *, duration: float = 0.0, rate: float = 0.0, timeout: float = 2.0,
        progress: IO[str] | None = None) -> Report:
    """One round of the calls, or rounds for `duration` seconds; bounded in time and count."""
    if duration < 0 or duration > MAX_DURATION:
        raise InputError(f"--duration must be between 0 and {MAX_DURATION:.0f} seconds")
    if rate < 0:
        raise InputError("--rate must be positive")
    sources = [(call, pod) for call in calls for pod in plan.workload_pods(call.source)]
    driver = Driver(plan, timeout)
    report = Report()
    start = time.monotonic()
    deadline = start + duration
    interval = 1.0 / rate if rate else 0.0
    next_at = start
    round_ = 0
    while True:
        for call, pod in sources:
            for _ in range(call.count):
                if interval:
                    pause = next_at - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    next_at = max(next_at + interval, time.monotonic() - 1.0)
                result = driver.call(call, pod)
                report.results.append(result)
                if progress is not None and round_ == 0:
                    state = "ok  " if result.ok else "fail"
                    detail = result.served_by if result.ok else result.error
                    progress.write(f"{state} {pod.ref} -> {call.host}:{call.port} ({result.address}) {detail}\n")
                if len(report.results) >= MAX_CALLS:
                    break
        round_ += 1
        if time.monotonic() >= deadline or len(report.results) >= MAX_CALLS:
            break
    report.seconds = time.monotonic() - start
    return report
