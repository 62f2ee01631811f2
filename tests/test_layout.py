"""The package's shape (docs/layout.md): stages import one way, no cycles, modules one can read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "parity"
# Left to right: a module may import from its own stage and those before it.
STAGES = ("core", "builders", "judge", "measure", "search", "report", "pytest_plugin", "cli")
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """The parity modules ``path`` imports, at any depth (lazy imports count too)."""
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("parity"):
            named.add(node.module)
            named.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            named.update(a.name for a in node.names if a.name.startswith("parity"))
    return {name for name in named if name in MODULES}


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def _stage(module: str) -> int | None:
    parts = module.split(".")
    return STAGES.index(parts[1]) if len(parts) > 1 and parts[1] in STAGES else None


def test_stages_import_only_themselves_and_the_stages_before_them() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if (here := _stage(module)) is not None
        and (there := _stage(target)) is not None
        and there > here
    ]
    assert upward == []


def test_no_import_cycles() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert cycles == []


def test_every_module_reads_in_one_sitting() -> None:
    lengths = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


def test_no_two_modules_share_a_file_name() -> None:
    """A file name says what it holds: two ``timing.py`` in different stages say neither."""
    by_name: dict[str, list[str]] = {}
    for name, path in MODULES.items():
        if path.name != "__init__.py":
            by_name.setdefault(path.name, []).append(name)
    assert {file: names for file, names in by_name.items() if len(names) > 1} == {}


def test_the_checks_see_a_planted_cycle_and_an_upward_import(monkeypatch) -> None:
    """The two rules fail when broken: core importing the CLI is both."""
    planted = {name: set(targets) for name, targets in GRAPH.items()}
    planted["parity.core.errors"].add("parity.cli")
    planted["parity.cli"].add("parity.core.errors")
    monkeypatch.setitem(globals(), "GRAPH", planted)
    with pytest.raises(AssertionError):
        test_stages_import_only_themselves_and_the_stages_before_them()
    with pytest.raises(AssertionError):
        test_no_import_cycles()
