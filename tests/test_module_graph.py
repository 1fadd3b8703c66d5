"""scripts/module_graph.py: every module has a layer, and an upward import is caught."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _graph():
    spec = importlib.util.spec_from_file_location("module_graph", REPO / "scripts" / "module_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_module_has_a_layer():
    graph = _graph()
    unplaced = [name for name in graph.modules() if graph.layer_of(name) is None]
    assert not unplaced, f"add {unplaced} to LAYERS in scripts/module_graph.py (see ARCHITECTURE.md)"


def test_layers_by_longest_prefix():
    graph = _graph()
    assert graph.layer_of("obs_tui") == "model"
    assert graph.layer_of("obs_tui.model") == "model"
    assert graph.layer_of("obs_tui.analysis.red") == "analysis"
    assert graph.layer_of("obs_tui.sources.red") == "sources"
    assert graph.layer_of("obs_tui.engine") == "engine"
    assert graph.layer_of("obs_tui.tui.panes.power") == "sinks"
    assert graph.layer_of("obs_tui.cli") == "cli"


def test_an_upward_import_is_reported_and_fails(tmp_path, monkeypatch, capsys):
    graph = _graph()
    (tmp_path / "obs_tui" / "analysis").mkdir(parents=True)
    (tmp_path / "obs_tui" / "__init__.py").write_text("")
    (tmp_path / "obs_tui" / "model.py").write_text("")
    (tmp_path / "obs_tui" / "analysis" / "__init__.py").write_text("")
    (tmp_path / "obs_tui" / "analysis" / "maths.py").write_text(
        "from obs_tui import model\n\ndef f():\n    from obs_tui.tui import app\n"
    )
    monkeypatch.setattr(graph, "REPO", tmp_path)
    assert graph.main(["--quiet"]) == 1
    out = capsys.readouterr().out
    assert "obs_tui.analysis.maths (analysis) -> obs_tui.tui (sinks) (lazy)" in out
    assert "obs_tui.model" not in out.split("lower layer")[1]


def test_a_source_importing_analysis_fails(tmp_path, monkeypatch, capsys):
    """I/O must not depend on maths: a source imports its raw types from raw.py or model.py."""
    graph = _graph()
    for package in ("obs_tui", "obs_tui/analysis", "obs_tui/sources"):
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "obs_tui" / "raw.py").write_text("")
    (tmp_path / "obs_tui" / "analysis" / "maths.py").write_text("from obs_tui import raw\n")
    (tmp_path / "obs_tui" / "sources" / "reader.py").write_text("from obs_tui.analysis import maths\n")
    monkeypatch.setattr(graph, "REPO", tmp_path)
    assert graph.main(["--quiet"]) == 1
    out = capsys.readouterr().out
    assert "obs_tui.sources.reader (sources) -> obs_tui.analysis.maths (analysis)" in out
