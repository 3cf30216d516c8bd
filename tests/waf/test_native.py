"""The native build (setup.py, mypyc): it runs when it matches its sources, and the sources run otherwise."""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import waf
from waf import _native

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
BUILT = Path(waf.__file__).parent / "_native.json"


def _engine_file(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", "import waf._engine as e; print(e.__file__)"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.mark.skipif(not BUILT.exists(), reason="no native build (NETGUARD_PURE=1)")
def test_a_fresh_build_is_what_runs() -> None:
    assert _native.ACTIVE
    assert _engine_file({}).endswith(SUFFIX)


def test_pure_mode_runs_the_sources() -> None:
    assert _engine_file({"NETGUARD_WAF_PURE": "1"}).endswith("_engine.py")


def _fake_build(folder: Path, sources: dict[str, bytes], built: dict[str, bytes]) -> None:
    """A package folder as a build leaves it: sources, a compiled module each, their hashes then."""
    for name, text in sources.items():
        (folder / f"{name}.py").write_bytes(text)
        (folder / f"{name}{SUFFIX}").write_bytes(b"")
    hashes = {f"waf.{n}": hashlib.sha256(t).hexdigest() for n, t in built.items()}
    (folder / "_native.json").write_text(json.dumps(hashes))


def test_a_source_edited_since_the_build_is_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_build(tmp_path, {"_a": b"x = 1\n", "_b": b"y = 2\n"}, {"_a": b"x = 1\n", "_b": b"y = 1\n"})
    monkeypatch.setattr(_native, "_HERE", tmp_path)
    monkeypatch.setattr(_native, "_BUILT", tmp_path / "_native.json")
    compiled = _native._compiled()
    assert set(compiled) == {"waf._a", "waf._b"}
    assert _native._stale(compiled) == ["waf._b"]


def test_no_build_no_compiled_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashes without the compiled files (a clean after a build) name nothing to run."""
    (tmp_path / "_native.json").write_text(json.dumps({"waf._a": "0" * 64}))
    (tmp_path / "_a.py").write_text("x = 1\n")
    monkeypatch.setattr(_native, "_HERE", tmp_path)
    monkeypatch.setattr(_native, "_BUILT", tmp_path / "_native.json")
    assert _native._compiled() == {}


def test_the_source_finder_finds_the_named_modules_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_native, "_HERE", tmp_path)
    (tmp_path / "_a.py").write_text("x = 1\n")
    finder = _native._SourceFinder(frozenset({"waf._a"}))
    spec = finder.find_spec("waf._a", None)
    assert spec is not None and spec.origin == str(tmp_path / "_a.py")
    assert finder.find_spec("waf._b", None) is None


def test_compiled_modules_the_build_did_not_record_are_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that failed before writing its record (or no record at all) must not run its modules."""
    _fake_build(tmp_path, {"_a": b"x = 1\n"}, {})
    (tmp_path / "_native.json").unlink()
    (tmp_path / f"_native__mypyc{SUFFIX}").write_bytes(b"")
    monkeypatch.setattr(_native, "_HERE", tmp_path)
    monkeypatch.setattr(_native, "_BUILT", tmp_path / "_native.json")
    compiled = _native._compiled()
    assert compiled == {"waf._a": ""}
    assert _native._stale(compiled) == ["waf._a"]
