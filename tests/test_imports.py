"""The modules of ``cirlib`` import each other without a cycle.

The rule: build a graph with one node per module of ``cirlib`` (every ``cirlib/**/*.py``; a
package is its ``__init__.py``) and an edge ``a -> b`` for every ``import cirlib.b`` or
``from cirlib.b import x`` written in ``a``, at module level *or inside a function*. That graph
must be a DAG. An import inside a function still makes ``a`` depend on ``b``; putting it there
hides a cycle from Python's import system, not from a reader, so it counts the same. Imports under
``if TYPE_CHECKING:`` never run and do not count.

An edge goes to the module the import names: ``from cirlib.methods import registry`` (a submodule)
points at ``cirlib.methods.registry``, ``from cirlib.methods import build_model`` (a name) at
``cirlib.methods``. The parent packages that Python initialises on the way are not edges:
every submodule would otherwise depend on its own package's ``__init__``, which imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cirlib"


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``package``."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST):
    """Every Import / ImportFrom node in ``tree``, skipping ``if TYPE_CHECKING:`` bodies."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if _is_type_checking_block(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imported_modules(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The ``cirlib`` modules that ``module`` (the file ``path``) imports anywhere in its code."""
    targets: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            if node.level:  # relative import: resolve against this module's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                     for alias in node.names]
        for name in names:
            while name and name not in modules:  # `import cirlib.a.b` of a module, or a name inside one
                name = name.rpartition(".")[0]
            if name and name != module and name.split(".")[0] == "cirlib":
                targets.add(name)
    return targets


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """``module -> the cirlib modules it imports`` for every module of ``package``."""
    modules = module_files(package)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or ``None`` when it is a DAG (depth-first search)."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    for start in sorted(graph):
        if colour[start] != WHITE:
            continue
        colour[start] = GREY
        path = [start]
        stack = [iter(sorted(graph[start]))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = BLACK
                stack.pop()
            elif colour[nxt] == GREY:
                return path[path.index(nxt):] + [nxt]
            elif colour[nxt] == WHITE:
                colour[nxt] = GREY
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_the_graph_sees_every_kind_of_import(tmp_path):
    pkg = tmp_path / "cirlib"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .leaf import X\n")
    (pkg / "sub" / "leaf.py").write_text("X = 1\n")
    (pkg / "top.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import cirlib.sub.leaf\n"
        "if TYPE_CHECKING:\n    from cirlib import late\n"
        "def f():\n    from cirlib.sub import X\n"
    )
    (pkg / "late.py").write_text("def g():\n    from cirlib import top\n")
    graph = import_graph(pkg)
    assert graph["cirlib.sub"] == {"cirlib.sub.leaf"}  # relative import
    assert graph["cirlib.top"] == {"cirlib.sub.leaf", "cirlib.sub"}  # module level and in a function
    assert graph["cirlib.late"] == {"cirlib.top"}  # `from package import module` names the module
    assert find_cycle(graph) is None  # top -> late only under TYPE_CHECKING
    (pkg / "sub" / "leaf.py").write_text("def h():\n    import cirlib.late\nX = 1\n")
    cycle = find_cycle(import_graph(pkg))
    assert cycle is not None and cycle[0] == cycle[-1]
    assert {"cirlib.late", "cirlib.top", "cirlib.sub.leaf"} <= set(cycle)  # leaf -> late -> top -> leaf


def test_every_module_is_in_the_graph():
    graph = import_graph()
    assert {"cirlib", "cirlib.config", "cirlib.utils.choices", "cirlib.methods.registry"} <= graph.keys()
    assert graph["cirlib.utils.choices"] == set(), "the choice validator must stay below every other module"


def test_cirlib_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    if cycle is not None:
        pytest.fail("import cycle in cirlib: " + " -> ".join(cycle)
                    + ". Move the shared code into a module below both (e.g. cirlib/utils), "
                      "not the import into a function.")
