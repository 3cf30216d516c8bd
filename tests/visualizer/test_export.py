"""SVG and PNG exports, drawn server-side by Graphviz (so they work headless), from the CLI and the UI."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest
from fastapi.testclient import TestClient

from policygen.pipeline import observe
from policygen.review import build_review
from tests.visualizer.conftest import BOOKINFO_WORKLOADS, FLOWS, INVENTORY
from visualizer.backends import LocalBackend
from visualizer.cli import main as graph_main
from visualizer.server import create_app

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is missing (apt-get install graphviz)")


def svg_texts(data: bytes | str) -> str:
    root = ET.fromstring(data if isinstance(data, bytes) else data.encode("utf-8"))
    assert root.tag.endswith("svg")
    return " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))


@needs_dot
def test_graph_export_svg_is_valid_xml_naming_every_workload(tmp_path):
    out = tmp_path / "graph.svg"
    assert graph_main(["export", "--inventory", str(INVENTORY), "--flows", str(FLOWS), "--format", "svg", "-o", str(out)]) == 0
    texts = svg_texts(out.read_bytes())
    for name in BOOKINFO_WORKLOADS:
        assert name in texts
    assert "namespace default" in texts


@needs_dot
def test_graph_export_png_is_a_png(tmp_path):
    out = tmp_path / "graph.png"
    assert graph_main(["export", "--inventory", str(INVENTORY), "--flows", str(FLOWS), "--format", "png", "-o", str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5_000


@needs_dot
def test_ui_exports_color_by_the_chosen_verdict():
    observed = observe([INVENTORY], [FLOWS])
    with TestClient(create_app(LocalBackend(build_review(observed.inventory, observed.edges)))) as c:
        current = c.get("/ui/export.svg")
        assert current.status_code == 200 and current.headers["content-type"].startswith("image/svg+xml")
        texts = svg_texts(current.content)
        assert all(name in texts for name in BOOKINFO_WORKLOADS)
        assert "#9e9e9e" in current.text and "#2e7d32" not in current.text  # not covered today
        candidate = c.get("/ui/export.svg?verdict=candidate")
        assert "#2e7d32" in candidate.text  # allowed by the generated policies
        png = c.get("/ui/export.png")
        assert png.content.startswith(PNG_MAGIC)
        for fmt in ("json", "graphml", "dot"):
            assert c.get(f"/ui/export.{fmt}").status_code == 200
        assert c.get("/ui/export.gif").status_code == 404
        assert c.get("/ui/export.svg?verdict=maybe").status_code == 400


def test_a_missing_graphviz_is_one_clear_error(monkeypatch, tmp_path, capsys):
    from netguard.cli import main

    monkeypatch.setattr(shutil, "which", lambda name: None)
    code = main(
        [
            "graph",
            "export",
            "--inventory",
            str(INVENTORY),
            "--flows",
            str(FLOWS),
            "--format",
            "png",
            "-o",
            str(tmp_path / "g.png"),
        ]
    )
    assert code == 2
    assert "Graphviz" in capsys.readouterr().err
    assert not (tmp_path / "g.png").exists()


@pytest.fixture(scope="module")
def big_graph(tmp_path_factory):
    from bench.ui_scale import synthesize_cluster
    from policygen.graph import build_graph

    inventory, flows = synthesize_cluster(400, tmp_path_factory.mktemp("big"))
    return build_graph(observe([inventory], [flows]).edges)


def test_big_graphs_are_drawn_one_box_per_namespace(big_graph):
    from visualizer.export import aggregate_namespaces

    small = aggregate_namespaces(big_graph)
    assert small.number_of_nodes() == 16  # 400 workloads in 16 namespaces
    assert sum(d.get("inside", 0) for _, d in small.nodes(data=True)) + small.number_of_edges() <= big_graph.number_of_edges()
    assert all(d["kind"] == "namespace" and d["label"].endswith("(25 workloads)") for _, d in small.nodes(data=True))


@needs_dot
def test_big_graph_svg_names_every_namespace(big_graph):
    from visualizer.export import to_svg

    texts = svg_texts(to_svg(big_graph))
    assert all(f"team-{n:03d} (25 workloads)" in texts for n in range(16))
