"""The core imports nothing from the packages built on it (DESIGN.md's layering). The composition roots
may: the CLI, and the demo that drives every part end to end."""

import ast
from pathlib import Path

import netguard

CORE = Path(netguard.__file__).parent
UPPER = ("policygen", "waf", "visualizer")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_the_core_never_imports_policygen_waf_or_visualizer():
    offenders = {
        str(path.relative_to(CORE)): sorted(_imports(path) & set(UPPER))
        for path in CORE.rglob("*.py")
        if path != CORE / "cli.py" and "demo" not in path.relative_to(CORE).parts
    }
    assert {k: v for k, v in offenders.items() if v} == {}
