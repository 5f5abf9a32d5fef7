"""Imports run one way: no module circle, data/ below the model, nothing below imports the front doors.

The graph holds every import of one mtaffect module by another, module-level and inside
functions alike (a function-level import is still a dependency), except those under
``if TYPE_CHECKING``. Registries that load plugins by name (``registry.FORMAT_MODULES``, the
packages' lazy ``_LAZY`` tables) are not static imports and are not in it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mtaffect"

#: Rooms below the model and the training loop: what they must never import.
LOWER_FLOORS = {
    "mtaffect.tasks": (),
    "mtaffect.data": ("mtaffect.modeling_mtaffect", "mtaffect.training", "mtaffect.metrics", "mtaffect.teachers",
                      "mtaffect.weak_labels", "mtaffect.recipes", "mtaffect.study", "mtaffect.pipeline"),
    "mtaffect.training": ("mtaffect.teachers", "mtaffect.weak_labels", "mtaffect.recipes", "mtaffect.study"),
    "mtaffect.metrics": ("mtaffect.modeling_mtaffect", "mtaffect.training", "mtaffect.data"),
    "mtaffect.teachers": ("mtaffect.weak_labels", "mtaffect.study"),
    "mtaffect.recipes": ("mtaffect.teachers", "mtaffect.weak_labels", "mtaffect.study"),
}


def _modules() -> dict[str, Path]:
    modules = {}
    for file in sorted(PACKAGE.rglob("*.py")):
        parts = file.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return modules


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, file in modules.items():
        tree = ast.parse(file.read_text(encoding="utf-8"))
        package = name.split(".") if file.name == "__init__.py" else name.split(".")[:-1]
        type_checking = {
            id(sub)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for sub in ast.walk(node)
        }
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in type_checking:
                continue
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                for alias in node.names:
                    targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle():
    graph = _import_graph()
    assert len(graph) > 50 and "mtaffect.data.sources" in graph["mtaffect.study.config"]  # the graph is read
    assert _cycles(graph) == []


def test_imports_run_downward():
    graph = _import_graph()
    wrong = []
    for name, targets in graph.items():
        for floor, forbidden in LOWER_FLOORS.items():
            if name == floor or name.startswith(floor + "."):
                wrong += [(name, t) for t in targets if any(t == f or t.startswith(f + ".") for f in forbidden)]
        if not name.startswith("mtaffect.cli"):
            wrong += [(name, t) for t in targets if t.startswith("mtaffect.cli")]
    assert wrong == []


def test_a_circle_would_be_found():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.slow
def test_every_module_imports_fresh():
    """Each module imported first, in a process where no other mtaffect module is loaded yet.

    Slow (every module is executed once per module: about a minute); the static graph tests
    above already rule circles out.
    """
    names = sorted(name for name in _modules() if not name.startswith("mtaffect.metrics_module"))
    script = (
        "import importlib, sys\n"
        f"names = {names!r}\n"
        "failed = []\n"
        "for name in names:\n"
        "    for loaded in [m for m in sys.modules if m == 'mtaffect' or m.startswith('mtaffect.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as error:\n"
        "        failed.append(f'{name}: {type(error).__name__}: {error}')\n"
        "print('\\n'.join(failed))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == ""


def test_help_and_data_list_import_neither_torch_nor_transformers():
    script = (
        "import sys\n"
        "from mtaffect.cli.main import main\n"
        "main(['data', 'list'])\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "False False"
    assert "mmsa" in done.stdout and "meld" in done.stdout
