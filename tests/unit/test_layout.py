"""The package's floor plan: no import cycle, the method's math free of verl, and the stable names users write.

The import graph is built from the sources (every ``import`` statement that can run, at module level or inside a
function, so an import moved into a function cannot hide a cycle; ``if TYPE_CHECKING:`` blocks never run and are
left out), independently of Python's import machinery.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import vlnorm_verl

PACKAGE_DIR = Path(vlnorm_verl.__file__).resolve().parent


def module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package."""
    modules = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = ["vlnorm_verl", *path.relative_to(PACKAGE_DIR).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of `tree` except those under ``if TYPE_CHECKING:`` (type-only imports never run)."""
    nodes, pending = [], [tree]
    while pending:
        node = pending.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return nodes


def imported_names(path: Path, module: str) -> set[str]:
    """Every dotted name `module` imports, with relative imports resolved (``from a import b`` gives ``a.b``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (a name is mapped to the longest module prefix it has)."""
    modules = module_files()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        targets = {owner(name) for name in imported_names(path, module) if name.startswith("vlnorm_verl")}
        # a package's __init__ is run by importing any of its modules: that edge is not a dependency to report
        graph[module] = {t for t in targets if t is not None and t != module and not module.startswith(f"{t}.")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from vlnorm_verl import cli\n"
        "def f():\n    from vlnorm_verl.extension import settings\n    import vlnorm_verl.plugin\n"
    )
    names = imported_names(source, "vlnorm_verl.x")
    assert {"vlnorm_verl.extension.settings", "vlnorm_verl.plugin"} <= names
    assert "vlnorm_verl.cli" not in names


def test_the_package_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 50 and graph["vlnorm_verl.plugin"], "the graph must cover the package"
    assert cycles(graph) == []


def test_the_methods_math_imports_no_verl() -> None:
    path = PACKAGE_DIR / "aggregation.py"
    names = imported_names(path, "vlnorm_verl.aggregation")
    assert not {n for n in names if n.split(".")[0] in ("verl", "vlnorm_verl")}, names


@pytest.mark.parametrize(
    ("stable", "home"),
    [
        ("vlnorm_verl.loss_config:VLNormPolicyLossConfig", "vlnorm_verl.extension.loss_config:VLNormPolicyLossConfig"),
        ("vlnorm_verl.rewards:compute_score", "vlnorm_verl.rewards:compute_score"),
        ("vlnorm_verl.plugin:register", "vlnorm_verl.plugin:register"),
    ],
)
def test_stable_names_users_write_still_resolve(stable: str, home: str) -> None:
    def load(spec: str):
        module, _, name = spec.partition(":")
        return getattr(importlib.import_module(module), name)

    assert load(stable) is load(home)


def test_the_loss_config_target_is_the_stable_path() -> None:
    from vlnorm_verl.extension.loss_config import TARGET, VLNormPolicyLossConfig

    module, _, name = TARGET.rpartition(".")
    assert module == "vlnorm_verl.loss_config"
    assert getattr(importlib.import_module(module), name) is VLNormPolicyLossConfig


def test_the_package_docstring_maps_every_top_level_entry_in_at_most_15_lines() -> None:
    doc = vlnorm_verl.__doc__ or ""
    assert len(doc.strip().splitlines()) <= 15
    entries = {
        p.name + ("/" if p.is_dir() else "")
        for p in PACKAGE_DIR.iterdir()
        if not p.name.startswith(("_", ".")) and (p.is_dir() or p.suffix == ".py")
    }
    assert entries and not {e for e in entries if e not in doc}, "add the new entry to the package docstring"
