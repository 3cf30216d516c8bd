"""Writing files: whole or not at all, with the mode a user expects.

`write_atomic` writes a temporary file beside the target and renames it over the target when complete,
so a reader never sees half a file and a failure leaves the old one. A temporary file is created 0600;
the result gets the mode an ordinary `open()` would give (0666 less the umask: policies, graphs,
reports are shared like any file) unless it is `private` (tokens, keys, approvals: 0600 whatever the
umask).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRIVATE = 0o600


def umask() -> int:
    """The process's umask, read without changing it where Linux tells it (/proc), else by setting it back."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def file_mode(private: bool = False) -> int:
    return PRIVATE if private else 0o666 & ~umask()


def write_atomic(path: str | Path, data: str | bytes, *, private: bool = False) -> None:
    """Write `data` to `path` through a temporary file renamed over it; mode from the umask, or 0600."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=".netguard-", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, file_mode(private))
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
