"""Build hook: the WAF's per-request path compiled to C by mypyc (README, "The WAF's native build").

Everything else about the package is in pyproject.toml. The modules below are plain typed Python; mypyc
turns each into a C extension module (same names, same behaviour), which takes 15-20% off the engine's CPU
time per request: the per-value work is many short steps (calls, attribute reads, small tuples), and
compiled they skip the interpreter. The `.py` files stay the source of truth, and are what runs where
no build was made: `NETGUARD_PURE=1` skips the build, and `waf/_native.py` falls back to the sources
when they changed since the build (or with `NETGUARD_WAF_PURE=1` at run time).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

# Modules compiled: parsing, decoding, planning, scanning and the detectors. Not the proxy, the server or
# anything else that waits on I/O (nothing to gain, and they are easier to debug as Python).
NATIVE = (
    "_body",
    "_decode",
    "_engine",
    "_generic",
    "_graphql",
    "_ldap",
    "_mail",
    "_nosql",
    "_php",
    "_protocol",
    "_request",
    "_rules",
    "_shell",
    "_sqli",
    "_targets",
    "_traversal",
    "_xss",
    "_xxe",
)
# What the build records beside the compiled modules: each source's hash, so an import can tell a
# compiled module built from other sources (a checkout edited since) and use the sources instead.
BUILT = "_native.json"


def _sources() -> list[str]:
    return [f"waf/{name}.py" for name in NATIVE]


class _BuildExt(build_ext):
    """build_ext that also writes the sources' hashes (`BUILT`) where the compiled modules go."""

    def run(self) -> None:
        super().run()
        root = Path(".") if self.inplace else Path(self.build_lib)
        sources = zip(NATIVE, _sources(), strict=True)
        hashes = {f"waf.{name}": hashlib.sha256(Path(src).read_bytes()).hexdigest() for name, src in sources}
        (root / "waf" / BUILT).write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")


def _ext_modules() -> list:  # type: ignore[type-arg]
    if os.environ.get("NETGUARD_PURE") == "1":
        return []
    from mypyc.build import mypycify

    return mypycify(["--config-file", "pyproject.toml", *_sources()], group_name="waf._native", opt_level="3")


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": _BuildExt})
