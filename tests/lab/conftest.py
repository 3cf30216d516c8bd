"""Lab fixtures: real network namespaces as root; skipped with the reason otherwise.

Every lab a test makes is named `t<pid>` and removed by a finalizer, even when the test fails; the
finalizer then checks that nothing of it is left (`ip netns`, `ip link`, `nft list ruleset`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
BOOKINFO = DATA / "bookinfo.yaml"
NETGUARD = [sys.executable, "-m", "netguard"]


def _lab_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, veths, nftables)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"the lab needs `{tool}` (run scripts/system-deps.sh)"
    probe = f"ng-probe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"network namespaces are not allowed here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


REASON = _lab_unavailable()
needs_lab = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def leftovers(name: str) -> list[str]:
    """Anything of lab `name` still on the machine."""
    prefix = f"ng-{name}-"
    out = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    out += [f"netns {line.split()[0]}" for line in netns.splitlines() if line.startswith(prefix)]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    out += [f"link {line.split(':')[1].strip()}" for line in links.splitlines() if f" {prefix}" in line]
    ruleset = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    out += [f"nft: {line.strip()}" for line in ruleset.splitlines() if f"ng-{name}" in line]
    if Path(f"/run/netguard-lab/{name}").exists():
        out.append(f"state /run/netguard-lab/{name}")
    return out


def lab_name(suffix: str = "") -> str:
    return f"t{os.getpid() % 10000}{suffix}"[:7]


def netguard(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*NETGUARD, *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"netguard {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def bookinfo_lab():
    """Bookinfo as a lab (once for the session), always removed and checked clean afterwards."""
    if REASON is not None:
        pytest.skip(REASON)
    from netguard.lab import lab

    name = lab_name()
    lab.down(name)  # a previous crashed run of the same pid
    try:
        plan = lab.up([str(BOOKINFO)], name)
        yield plan
    finally:
        lab.down(name)
        left = leftovers(name)
        assert not left, f"lab {name} left: {left}"
