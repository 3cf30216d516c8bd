"""Files netguard writes follow the umask like any program's; secrets are 0600 whatever the umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from netguard.files import umask, write_atomic

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "policygen" / "data"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_write_atomic_follows_the_umask_and_private_is_0600(tmp_path, mask, expected):
    old = os.umask(mask)
    try:
        assert umask() == mask
        write_atomic(tmp_path / "policy.yaml", "kind: NetworkPolicy\n")
        write_atomic(tmp_path / "token", "s3cret\n", private=True)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "policy.yaml") == expected
    assert _mode(tmp_path / "token") == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".netguard-")] == []


def test_generated_policies_are_readable_files_under_umask_022(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "netguard", "policy", "generate", "--inventory", str(DATA / "bookinfo-cluster.yaml"),
           "--flows", str(DATA / "bookinfo-flows.jsonl"), "-o", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT, preexec_fn=lambda: os.umask(0o022))  # noqa: PLW1509
    files = list(out.glob("*/*.yaml"))
    assert files and {_mode(f) for f in files} == {0o644}
