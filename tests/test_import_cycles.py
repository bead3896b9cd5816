"""The project's own modules import one another without a cycle.

The import graph is read from the source, not from what Python happened to
import: every import statement counts, those inside functions too, so a lazy
import that only dodges a cycle at import time still shows as one. Importing
``a.b`` runs the package ``a`` as well, but a package half-way through its
``__init__`` can still be imported from, so only the module named is linked.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from tests.support.paths import ROOT

# Not the project's own code (or, for tests, not the code the rule is about).
# Hidden folders (.venv, .git) are left out as well.
SKIPPED_FOLDERS = {".venv", "tests", "migrations", "node_modules", "var", "staticfiles"}

ImportGraph = dict[str, dict[str, int]]  # module -> {module it imports: line of the import}


def project_modules(root: Path) -> dict[str, Path]:
    """Every module under root by its dotted name, a package by its own name."""
    modules = {}
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(
            name for name in subfolders if name not in SKIPPED_FOLDERS and not name.startswith(".")
        )
        for file in sorted(files):
            if not file.endswith(".py"):
                continue
            path = Path(folder, file)
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts:
                modules[".".join(parts)] = path
    return modules


def _imported_by_import(name: str, modules: Collection[str]) -> str | None:
    """`import a.b.c`: the longest of a.b.c, a.b, a that is a project module."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def _from_base(node: ast.ImportFrom, package: str) -> str:
    """The absolute module a `from X import ...` reads from, relative X resolved."""
    if not node.level:
        return node.module or ""
    parts = package.split(".") if package else []
    # One dot is the package itself, each further dot its parent.
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imported_by_from(base: str, name: str, modules: Collection[str]) -> str | None:
    """`from base import name`: the submodule base.name if there is one, else base."""
    if f"{base}.{name}" in modules:
        return f"{base}.{name}"
    return base if base in modules else None


def imported_modules(name: str, path: Path, modules: Collection[str]) -> dict[str, int]:
    """The project modules the module imports anywhere in it, each with its first line."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [_imported_by_import(alias.name, modules) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, package)
            targets = [_imported_by_from(base, alias.name, modules) for alias in node.names]
        else:
            continue
        for target in targets:
            if target and target != name:
                found[target] = min(found.get(target, node.lineno), node.lineno)
    return found


def import_graph(root: Path) -> ImportGraph:
    modules = project_modules(root)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def import_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The groups of modules that import one another in a ring: Tarjan's strongly
    connected components of more than one module, each sorted."""
    reached: dict[str, int] = {}  # the order in which the walk first reached each module
    lowest: dict[str, int] = {}  # the earliest module still on the stack it leads back to
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        reached[module] = lowest[module] = len(reached)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.get(module, ()):
            if imported not in reached:
                visit(imported)
                lowest[module] = min(lowest[module], lowest[imported])
            elif imported in on_stack:
                lowest[module] = min(lowest[module], reached[imported])
        if lowest[module] == reached[module]:
            # module is the first of its component reached: the stack above it is the rest.
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in reached:
            visit(module)
    return sorted(cycles)


def describe(cycle: list[str], graph: ImportGraph, root: Path) -> str:
    """The cycle and, for each import that closes it, where it is written."""
    modules = project_modules(root)
    lines = [f"import cycle: {' <-> '.join(cycle)}"]
    for module in cycle:
        for imported, line in sorted(graph[module].items(), key=lambda item: item[1]):
            if imported in cycle:
                where = modules[module].relative_to(root)
                lines.append(f"  {where}:{line} imports {imported}")
    return "\n".join(lines)


def test_the_project_has_no_import_cycles():
    graph = import_graph(ROOT)

    cycles = import_cycles(graph)

    assert not cycles, "\n".join(describe(cycle, graph, ROOT) for cycle in cycles)


# The cycle finder itself, on trees of its own.


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path):
    # Given two modules, one of which imports the other only when a function runs
    root = write_tree(
        tmp_path,
        {
            "shop/__init__.py": "",
            "shop/orders.py": "from shop import payments\n",
            "shop/payments.py": "def refund():\n    from shop.orders import Order\n",
            "shop/catalog.py": "from shop.orders import Order\n",
        },
    )

    # When the graph is searched for cycles
    cycles = import_cycles(import_graph(root))

    # Then the two are one cycle, and the module that only imports them is not in it
    assert cycles == [["shop.orders", "shop.payments"]]


def test_relative_imports_are_resolved_against_their_package(tmp_path):
    # Given relative imports from a module and from a package's __init__
    root = write_tree(
        tmp_path,
        {
            "shop/__init__.py": "",
            "shop/money.py": "",
            "shop/orders/__init__.py": "from .. import money\n",
            "shop/orders/models.py": "from ..money import Money\nfrom . import services\n",
            "shop/orders/services.py": "from .models import Order\n",
        },
    )

    # When the graph is read
    graph = import_graph(root)

    # Then each names the absolute module, and the ring they make is found
    assert graph["shop.orders"] == {"shop.money": 1}
    assert graph["shop.orders.models"] == {"shop.money": 1, "shop.orders.services": 2}
    assert graph["shop.orders.services"] == {"shop.orders.models": 1}
    assert import_cycles(graph) == [["shop.orders.models", "shop.orders.services"]]


def test_a_tree_without_a_cycle_has_none(tmp_path):
    # Given a chain of imports, imports of other libraries, and a cycle only
    # where the walk does not go
    root = write_tree(
        tmp_path,
        {
            "manage.py": "import shop.orders\nimport json\n",
            "shop/__init__.py": "",
            "shop/orders.py": "import os.path\nfrom shop.payments import charge\n",
            "shop/payments.py": "from decimal import Decimal\n",
            "shop/migrations/0001_initial.py": "from shop import orders\n",
            "tests/test_a.py": "from tests import test_b\n",
            "tests/test_b.py": "from tests import test_a\n",
            ".venv/lib/loop.py": "import loop\n",
        },
    )

    # When the graph is searched for cycles
    graph = import_graph(root)

    # Then there are none, and only the project's own modules were read
    assert import_cycles(graph) == []
    assert sorted(graph) == ["manage", "shop", "shop.orders", "shop.payments"]
    assert graph["manage"] == {"shop.orders": 1}
