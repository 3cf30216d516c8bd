"""Lab fixtures: real network namespaces as root; skipped with the reason otherwise.

Every lab a test makes is named `t<pid>` and removed by a finalizer, even when the test fails; the
finalizer then checks that nothing of it is left (`ip netns`, `ip link`, `nft list ruleset`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from netguard.lab.lab import leftovers  # noqa: F401  (the lab tests assert on it)
from netguard.lab.system import unavailable

DATA = Path(__file__).parent / "data"
BOOKINFO = DATA / "bookinfo.yaml"
NETGUARD = [sys.executable, "-m", "netguard"]


REASON = unavailable()
needs_lab = pytest.mark.skipif(REASON is not None, reason=REASON or "")




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
