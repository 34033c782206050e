"""The import graph of the vsr package: no module imports itself back, however indirectly."""

from __future__ import annotations

import ast
from pathlib import Path

import vsr

PACKAGE = Path(vsr.__file__).parent


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The vsr modules `name` imports anywhere in its source: at module level, inside
    functions, or under TYPE_CHECKING; relative or absolute."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            # `from . import pixfmt` imports the module vsr.media.pixfmt; `from .model import load`
            # imports vsr.model.load (and, through its __init__, nothing else of the package).
            submodules = [
                f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in modules
            ]
            candidates = submodules if len(submodules) == len(node.names) else [source, *submodules]
        else:
            continue
        for target in candidates:
            # `from vsr.model.load import load` names a module; `from av import error` none of vsr's.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
    return targets


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_vsr_package_has_no_import_cycle() -> None:
    """Following every import between vsr's modules (module level, in functions, for type
    checking) never leads back to where it started."""
    modules = _modules()
    assert {"vsr", "vsr.pipeline.pipeline", "vsr.model.load", "vsr.scaleout.job"} <= set(modules)
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert "vsr.model.load" in graph["vsr.pipeline.pipeline"] and "vsr.pipeline.pipeline" in graph["vsr"]
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _package_of(module: str) -> str:
    """The stage package a module belongs to (`vsr.media.input` -> `vsr.media`); the modules
    shared by every package (`vsr.errors`, `vsr.options`, ...) and `vsr` itself count as `vsr`."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or (PACKAGE / parts[-1]).is_dir() else "vsr"


def test_the_stage_packages_import_each_other_one_way_only() -> None:
    """Between the stage packages (app, scaleout, pipeline, model, media, lab) imports point
    one way: a package never reaches back into one that imports it. `vsr/__init__.py`, the lazy
    public API, and `vsr/__main__.py`, the command's entry point, are left out: they name what
    the packages offer, and nothing imports them back."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        if name in ("vsr", "vsr.__main__"):
            continue
        source = _package_of(name)
        targets = {_package_of(target) for target in _imports(name, path, modules) if target != "vsr"}
        graph.setdefault(source, set()).update(targets - {source})
    assert {"vsr.media", "vsr.model", "vsr.pipeline", "vsr.app", "vsr.scaleout"} <= set(graph)
    assert "vsr.model" in graph["vsr.pipeline"] and "vsr.pipeline" in graph["vsr.app"]
    cycle = _cycle(graph)
    assert cycle is None, "import cycle between packages: " + " -> ".join(cycle or [])


def test_vsr_keeps_at_most_twelve_modules_at_its_top_level() -> None:
    """The flat modules are the few every stage shares; the rest live in stage packages."""
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top


def test_the_cycle_finder_finds_a_cycle_through_several_modules() -> None:
    """The check above can fail: a -> b -> c -> a is reported as that path."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
