"""The emulator's modules import each other in one direction only.

A cycle means two modules can only change together (and import order starts to matter), so the
next capability could not arrive as one new module. Imports under `if TYPE_CHECKING:` are for
type hints only and may point back; every other import counts, function-level ones included.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "harness.emulator"
ROOT = Path(__file__).resolve().parents[2] / "harness" / "emulator"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def emulator_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"))


def runtime_imports(tree: ast.AST, type_checking: bool = False) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, except those inside `if TYPE_CHECKING:` blocks (unless `type_checking`)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if is_type_checking_block(node) and not type_checking:
            for child in node.orelse:  # an `else:` branch runs
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def imported_modules(name: str, path: Path, modules: set[str], type_checking: bool = False) -> set[str]:
    """The emulator modules `name` imports: `from p import m` names module p.m when m is one."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in runtime_imports(ast.parse(path.read_text(), str(path)), type_checking):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")
            anchor = anchor[:len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            targets.add(submodule if submodule in modules else base)
    return {t for t in targets if t in modules and t != name}


def import_graph(type_checking: bool = False) -> dict[str, set[str]]:
    modules = emulator_modules()
    return {name: imported_modules(name, path, set(modules), type_checking) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one (Tarjan), each as a path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [cycle_in(graph, set(component)) for component in components]


def cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A concrete cycle through a strongly connected component, for the failure message."""
    start = min(component)
    path, seen = [start], {start}
    while True:
        following = sorted(t for t in graph[path[-1]] if t in component)
        closing = [t for t in following if t in seen]
        if closing:
            return path[path.index(closing[0]):] + [closing[0]]
        path.append(following[0])
        seen.add(following[0])


def test_the_graph_sees_the_emulator_modules_and_their_imports() -> None:
    graph = import_graph()
    assert f"{PACKAGE}.emulator" in graph and f"{PACKAGE}.fabric" in graph
    assert f"{PACKAGE}.processes" in graph[f"{PACKAGE}.emulator"]


def test_imports_under_type_checking_do_not_count_and_function_level_ones_do() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from harness.emulator.runtime import ClusterRuntime\n"
        "def later():\n    from harness.emulator.models import now\n")
    assert [node.module for node in runtime_imports(tree)] == ["typing", "harness.emulator.models"]


def test_find_cycles_names_each_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]


def test_the_emulator_has_no_import_cycle() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_only_the_daemon_knows_the_whole_emulator() -> None:
    """The backend, the controls and the API server are built from parts, not handed the Emulator
    (not even for type hints): whatever they need is given to them by `emulator.py`."""
    graph = import_graph(type_checking=True)
    importers = {name for name, targets in graph.items() if f"{PACKAGE}.emulator" in targets}
    assert importers == {f"{PACKAGE}.daemon"}
