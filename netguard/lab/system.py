"""The lab's contact with the kernel: `ip`, `nft`, sysctls and entering network namespaces.

Everything the lab creates is named with the `ng-<lab>-` prefix, so nothing else on the machine is
ever touched, and a crashed lab can be swept by name.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from netguard.errors import InputError

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
_libc = ctypes.CDLL(None, use_errno=True)
_setns_lock = threading.Lock()


class SystemError_(RuntimeError):
    """A command the lab ran failed (not the user's input)."""


def require_root() -> None:
    if os.geteuid() != 0:
        raise InputError("netguard lab needs root (it creates network namespaces, veths and nftables rules)")
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    if missing:
        raise InputError(f"netguard lab needs {' and '.join(missing)} (Debian packages iproute2, nftables: "
                         "run scripts/system-deps.sh)")


def unavailable() -> str | None:
    """Why the lab cannot run on this machine, or None (probes by making a network namespace)."""
    if os.geteuid() != 0:
        return "not root (the lab creates network namespaces, veths and nftables rules)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing (Debian packages iproute2 and nftables: scripts/system-deps.sh)"
    probe = f"ng-probe{os.getpid()}"
    made = run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"network namespaces are not allowed here ({made.stderr.strip() or 'ip netns add failed'})"
    run("ip", "netns", "del", probe, check=False)
    return None


def run(*args: str, input_: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), input=input_, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise SystemError_(f"{' '.join(args[:6])}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def forget_connections(addresses: list[str]) -> None:
    """Delete the kernel's conntrack entries to or from these addresses (as sent, or as answered after DNAT).

    A lab reuses the addresses of the labs before it: their entries (TIME_WAIT for 2 minutes, ESTABLISHED for
    days) would be reported by an agent's start-up dump as this lab's connections."""
    if shutil.which("conntrack") is None:
        return
    for address in addresses:
        for selector in ("--orig-src", "--orig-dst", "--reply-src"):
            run("conntrack", "-D", selector, address, check=False)  # exit 1 when there was nothing to delete


def ip_batch(commands: list[str]) -> None:
    """Run many `ip` commands in one process (`ip -batch -`)."""
    if commands:
        run("ip", "-batch", "-", input_="\n".join(commands) + "\n")


def nft(script: str) -> None:
    run("nft", "-f", "-", input_=script)


def nft_tables(prefix: str) -> list[str]:
    out = run("nft", "list", "tables", check=False).stdout
    tables = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table" and parts[2].startswith(prefix):
            tables.append(f"{parts[1]} {parts[2]}")
    return tables


def netns_list(prefix: str) -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))


def links(prefix: str) -> list[str]:
    out = run("ip", "-o", "link", "show", check=False).stdout
    names = []
    for line in out.splitlines():
        name = line.split(":", 2)[1].strip().split("@")[0]
        if name.startswith(prefix):
            names.append(name)
    return names


def read_sysctl(key: str) -> str | None:
    path = Path("/proc/sys") / key.replace(".", "/")
    try:
        return path.read_text().strip()
    except OSError:
        return None


def write_sysctl(key: str, value: str) -> None:
    path = Path("/proc/sys") / key.replace(".", "/")
    path.write_text(value + "\n")


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the body with this thread in network namespace `name` (sockets made there stay there)."""
    with _setns_lock:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(NETNS_DIR / name, os.O_RDONLY)
        except FileNotFoundError:
            os.close(home)
            raise SystemError_(f"network namespace {name} does not exist (is the lab up?)") from None
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(target)
            os.close(home)


def socket_in(netns: str, family: int = socket.AF_INET, type_: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket that lives in network namespace `netns`."""
    with in_netns(netns):
        return socket.socket(family, type_)
