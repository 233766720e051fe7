"""The package's shape: no import cycle (deferred and TYPE_CHECKING imports included) and small modules.

Every module of `codi_agents` is parsed with `ast`; every import of a `codi_agents` module counts,
wherever it sits (module level, inside a function, under `if TYPE_CHECKING:`), because a cycle hidden
behind a deferred import is still a cycle: the modules cannot be understood, tested or moved apart.
Importing the package leaves the process as it found it (the garbage collector it pauses meanwhile).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import codi_agents

PACKAGE = "codi_agents"
ROOT = Path(codi_agents.__file__).parent
MAX_LINES = 300


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module an imported dotted name lives in: itself, or the nearest enclosing known module."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _parents(target: str, importer: str) -> set[str]:
    """The packages Python initialises before `target`, short of the root and of the importer's own packages.

    Importing `codi_agents.critic._inputs` runs `codi_agents/critic/__init__.py` first, so a cycle
    through a package's `__init__` is a cycle too. The root package is left out: everything sits under it.
    """
    parts = target.split(".")
    return {
        ".".join(parts[:depth])
        for depth in range(2, len(parts))
        if not (importer + ".").startswith(".".join(parts[:depth]) + ".")
    }


def _imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every codi_agents module `module` imports, at any depth of its code."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` imports the module pkg.sub; `from pkg import name` imports pkg's `__init__`.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                target = _resolve(name, known)
                if target is not None and target != module:
                    found.add(target)
                    found.update(_parents(target, module))
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the codi_agents modules it imports (a package import counts as importing its `__init__`)."""
    known = _modules()
    return {module: _imports(module, path, known) for module, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_tree() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imports_of_a_package_and_of_names_in_it_are_both_seen() -> None:
    graph = import_graph()
    assert "codi_agents.tasks._base" in graph["codi_agents.tasks"]
    assert "codi_agents.errors" in graph["codi_agents.tasks._base"]


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_is_over_300_lines() -> None:
    sizes = {module: len(path.read_text(encoding="utf-8").splitlines()) for module, path in _modules().items()}
    too_long = {module: lines for module, lines in sorted(sizes.items()) if lines > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def test_the_planner_computes_ids_without_the_session_module() -> None:
    graph = import_graph()
    assert "codi_agents._ids" in graph["codi_agents.batch._plan"]
    assert "codi_agents.simulation._session" not in graph["codi_agents.batch._plan"]


def test_the_record_needs_no_task_registry() -> None:
    """A record is data: reading and exporting one never needs the task registry or a plug-in."""
    assert not {"codi_agents.tasks", "codi_agents.tasks._base"} & closure(import_graph(), "codi_agents._record")


def closure(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module `start` imports, directly or not."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("collecting", [True, False])
def test_importing_codi_leaves_the_garbage_collector_as_it_found_it(collecting: bool) -> None:
    """The import pauses collections (they found no garbage among the modules' objects) and restores the state."""
    script = f"import gc\nif not {collecting}: gc.disable()\nimport codi_agents\nprint(gc.isenabled())\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(collecting)
