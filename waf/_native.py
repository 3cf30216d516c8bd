"""Which code runs: the compiled modules of the native build (setup.py, mypyc) or their sources.

Python imports an extension module before a source file of the same name, so a compiled module built
from older sources would run in place of the code beside it, silently: a checkout edited since its last
build would test and serve the old code. `use_sources_when_stale` (called by `waf/__init__.py` before any
other module of the package is imported) compares each source's hash with the one the build recorded and,
when any differs (or `NETGUARD_WAF_PURE=1`), has every compiled module imported from its source
instead. All or none: compiled modules call each other directly, not through `sys.modules`.

This module is never compiled itself.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

_HERE = Path(__file__).parent
_BUILT = _HERE / "_native.json"  # written by the build (setup.py): module name -> its source's sha256
_SHARED_LIB = "waf._native__mypyc"  # the build's shared library, which the compiled modules load themselves

# Whether the compiled modules run (set by `use_sources_when_stale`).
ACTIVE = False


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Finds the named modules' source files, ahead of the compiled modules beside them."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname not in self.names:
            return None
        return importlib.util.spec_from_file_location(fullname, _HERE / (fullname.rpartition(".")[2] + ".py"))


def _compiled() -> dict[str, str]:
    """The compiled modules beside their sources, each with its source's hash at the build; "" for one
    the build did not record (a build that failed before recording, another tool's build): stale."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    present = {f"waf.{p.name[: -len(suffix)]}" for p in _HERE.glob("_*" + suffix)}
    present.discard(_SHARED_LIB)
    if not present:
        return {}
    try:
        built = json.loads(_BUILT.read_text())
    except (OSError, ValueError):
        built = {}
    return {name: str(built.get(name, "")) for name in present}


def _stale(compiled: dict[str, str]) -> list[str]:
    """The compiled modules whose source changed since the build."""
    out = []
    for name, built in compiled.items():
        source = _HERE / (name.rpartition(".")[2] + ".py")
        try:
            now = hashlib.sha256(source.read_bytes()).hexdigest()
        except OSError:  # an installed build without its sources: the compiled module is all there is
            continue
        if now != built:
            out.append(name)
    return out


def use_sources_when_stale() -> bool:
    """Run the compiled modules when they match their sources, the sources otherwise; True when compiled."""
    global ACTIVE
    compiled = _compiled()
    if not compiled:
        return False
    stale = _stale(compiled)
    if stale or os.environ.get("NETGUARD_WAF_PURE") == "1":
        if stale:
            warnings.warn(
                f"netguard waf: {', '.join(sorted(stale))} changed since the native build: running every "
                "module from its source (`make native` rebuilds)",
                RuntimeWarning,
                stacklevel=2,
            )
        sys.meta_path.insert(0, _SourceFinder(frozenset(compiled)))
        return False
    ACTIVE = True
    return True
