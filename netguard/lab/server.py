"""The pods' servers: one process that listens on every container port of every lab pod.

Each listening socket is created inside its pod's network namespace (setns, then back), so one
asyncio loop serves them all. A TCP connection gets a one-line HTTP answer naming the pod and port;
a UDP datagram gets the same JSON back; the kube-dns pod answers DNS on 53 (UDP and TCP) for
`svc`, `svc.ns` and `svc.ns.svc.cluster.local`, a bare name relative to the asking pod's namespace.

Ports of a container the lab runs for real (a `netguard ...` command, such as the WAF sidecar) are
left to it: the stand-in app then listens on the app's moved port, behind the sidecar.

Run by `netguard lab up` as `python -m netguard.lab.server STATE_DIR`; stopped by its pid.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import struct
import sys
from functools import partial
from pathlib import Path

from netguard.lab import dns
from netguard.lab.plan import LabPlan, PodSpec
from netguard.lab.system import in_netns

READ_TIMEOUT = 5.0


def _body(pod: PodSpec, port: int, proto: str) -> bytes:
    return json.dumps({"pod": pod.ref, "ip": pod.ip, "port": port, "protocol": proto}).encode()


class Servers:
    def __init__(self, plan: LabPlan) -> None:
        self.plan = plan
        self.ns_by_ip = {p.ip: p.namespace for p in plan.pods}

    def resolve(self, name: str, client_ip: str) -> str | None:
        svc = self.plan.service(name, self.ns_by_ip.get(client_ip, "default"))
        return svc.cluster_ip if svc is not None else None

    def dns_answer(self, packet: bytes, client_ip: str) -> bytes:
        try:
            _, _, name, _, _ = dns.parse_question(packet)
        except ValueError:
            return dns.answer(packet, None)
        return dns.answer(packet, self.resolve(name, client_ip))

    async def start(self) -> list[object]:
        loop = asyncio.get_running_loop()
        handles: list[object] = []
        for pod in self.plan.pods:
            for port in pod.ports:
                if port.process:
                    continue  # served by a container the lab runs for real (lab.start_processes)
                if port.protocol == "TCP":
                    with in_netns(pod.netns):
                        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind(("0.0.0.0", port.port))
                    sock.listen(1024)
                    sock.setblocking(False)
                    handler = self._tcp_dns if pod.dns and port.port == 53 else self._tcp_handler(pod, port.port)
                    handles.append(await asyncio.start_server(handler, sock=sock))
                elif port.protocol == "UDP":
                    with in_netns(pod.netns):
                        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    sock.bind(("0.0.0.0", port.port))
                    sock.setblocking(False)
                    transport, _ = await loop.create_datagram_endpoint(partial(_Udp, self, pod, port.port), sock=sock)
                    handles.append(transport)
        return handles

    def _tcp_handler(self, pod: PodSpec, port: int):  # type: ignore[no-untyped-def]
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await asyncio.wait_for(reader.read(4096), READ_TIMEOUT)
                body = _body(pod, port, "TCP")
                writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
                await writer.drain()
            except (TimeoutError, OSError):
                pass
            finally:
                writer.close()

        return handle

    async def _tcp_dns(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            client_ip = writer.get_extra_info("peername")[0]
            size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), READ_TIMEOUT))[0]
            packet = await asyncio.wait_for(reader.readexactly(size), READ_TIMEOUT)
            reply = self.dns_answer(packet, client_ip)
            writer.write(struct.pack("!H", len(reply)) + reply)
            await writer.drain()
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, servers: Servers, pod: PodSpec, port: int) -> None:
        self.servers, self.pod, self.port = servers, pod, port
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        if self.pod.dns and self.port == 53:
            self.transport.sendto(self.servers.dns_answer(data, addr[0]), addr)
        else:
            self.transport.sendto(_body(self.pod, self.port, "UDP"), addr)


async def _main(state_dir: Path) -> None:
    plan = LabPlan.from_dict(json.loads((state_dir / "state.json").read_text())["plan"])
    servers = Servers(plan)
    handles = await servers.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    (state_dir / "server.ready").write_text(f"{len(handles)}\n")
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(_main(Path(sys.argv[1])))
