#!/usr/bin/env python3
"""Print obs-tui's module import graph by layer; exit 1 if a lower layer imports a higher one.

Layers, lowest first (ARCHITECTURE.md):  model < analysis < sources < engine < sinks < cli.
A module may import its own layer and the layers below it. Imports inside functions count
(they are dependencies all the same, only deferred) and are marked "(lazy)".

A source importing analysis fails too, though the order would allow it: a source hands over
raw data defined beside it or in raw.py / model.py, so that I/O does not depend on maths.

    python3 scripts/module_graph.py            # the graph, then any violations
    python3 scripts/module_graph.py --quiet    # only the violations
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "obs_tui"

# Module prefixes by layer, lowest first; a module belongs to the layer of its longest prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("model", ("obs_tui", "obs_tui.model", "obs_tui.probe_constants", "obs_tui.text", "obs_tui.data")),
    ("analysis", ("obs_tui.analysis",)),
    (
        "sources",
        (
            "obs_tui.sources",
            "obs_tui.bcc_setup",
            "obs_tui.config",
            "obs_tui.config_template",
            "obs_tui.doctor",
        ),
    ),
    ("engine", ("obs_tui.engine", "obs_tui.pipeline")),
    (
        "sinks",
        ("obs_tui.snapshot", "obs_tui.snapshot_tables", "obs_tui.exporter", "obs_tui.history", "obs_tui.tui"),
    ),
    (
        "cli",
        (
            "obs_tui.cli",
            "obs_tui.cli_help",
            "obs_tui.__main__",
            "obs_tui.demo",
            "obs_tui.demo_service",
            "obs_tui.privileges",
            "obs_tui.tui.screenshots",
        ),
    ),
]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}


def layer_of(module: str) -> str | None:
    best, best_len = None, -1
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = name, len(prefix)
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((REPO / PACKAGE).rglob("*.py"))}


def imports(path: Path, name: str, known: set[str]) -> dict[str, bool]:
    """obs_tui modules imported by the file -> whether every import of it is lazy."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    found: dict[str, bool] = {}

    def add(target: str, node: ast.AST) -> None:
        if target == name or not (target == PACKAGE or target.startswith(PACKAGE + ".")):
            return
        lazy = id(node) not in top_level
        found[target] = found.get(target, True) and lazy

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in known else base, node)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="only the violations")
    args = parser.parse_args(argv)

    mods = modules()
    graph = {name: imports(path, name, set(mods)) for name, path in mods.items()}
    unplaced = sorted(name for name in mods if layer_of(name) is None)
    violations, sideways = [], []
    for name, targets in sorted(graph.items()):
        here = layer_of(name)
        for target, lazy in sorted(targets.items()):
            there = layer_of(target)
            if here is None or there is None:
                continue
            edge = f"{name} ({here}) -> {target} ({there})" + (" (lazy)" if lazy else "")
            if RANK[there] > RANK[here]:
                violations.append(edge)
            elif here == "sources" and there == "analysis":
                sideways.append(edge)

    if not args.quiet:
        for layer, _ in LAYERS:
            print(f"== {layer}")
            for name in sorted(m for m in mods if layer_of(m) == layer):
                targets = graph[name]
                shown = ", ".join(t + (" (lazy)" if lazy else "") for t, lazy in sorted(targets.items()))
                print(f"  {name}" + (f" -> {shown}" if shown else ""))
        print()
    if sideways:
        print(f"sources importing analysis ({len(sideways)}; raw types go in raw.py or model.py):")
        for edge in sideways:
            print(f"  {edge}")
    if unplaced:
        print(f"modules with no layer ({len(unplaced)}; add them to LAYERS in {Path(__file__).name}):")
        for name in unplaced:
            print(f"  {name}")
    if violations:
        print(f"lower layer importing a higher one ({len(violations)}):")
        for edge in violations:
            print(f"  {edge}")
    if not violations and not unplaced and not sideways:
        print("no import from a lower layer to a higher one, and no source imports analysis")
    return 1 if violations or unplaced or sideways else 0


if __name__ == "__main__":
    sys.exit(main())
