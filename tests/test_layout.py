"""The package's layout holds: the product never reaches into the training lab, no import cycles, short modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "qa"
LAB = "qa.training"
LAB_DOOR = "qa.cli.reader"  # the ``qa reader`` commands: the one product module that may open the lab, lazily
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, top_level_only: bool) -> set[str]:
    """The ``qa`` modules ``name`` imports (outside ``if TYPE_CHECKING:``; with ``top_level_only``, at import time)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(node: ast.AST, nested: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in MODULES)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qa"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES)
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if not (top_level_only and inner):
                visit(child, inner)

    visit(tree, False)
    found.discard(name)
    return found


def in_lab(name: str) -> bool:
    return name == LAB or name.startswith(LAB + ".")


@pytest.mark.parametrize("name", [name for name in MODULES if not in_lab(name)])
def test_the_product_never_imports_the_training_lab(name):
    reached = {other for other in imports(name, top_level_only=name == LAB_DOOR) if in_lab(other)}
    assert not reached, f"{name} imports {sorted(reached)}"


def test_importing_qa_and_its_command_line_loads_no_training_module():
    code = "import sys, qa, qa.cli, qa.serving.web; print(sorted(m for m in sys.modules if m.startswith('qa.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "qa.pipeline" in loaded and "qa.cli.reader" in loaded  # the check would see the lab if it were loaded
    assert LAB not in loaded


def test_no_import_cycles():
    graph = {name: imports(name, top_level_only=True) & MODULES.keys() for name in MODULES}
    # a package imports its own submodules by design (``qa.cli`` gathers its commands): not a cycle to report
    done: set[str] = set()

    def walk(name: str, path: list[str]) -> None:
        if name in path:
            cycle = path[path.index(name) :] + [name]
            if not all(a.startswith(b + ".") or b.startswith(a + ".") for a, b in zip(cycle, cycle[1:])):
                raise AssertionError(" -> ".join(cycle))
            return
        if name in done:
            return
        for other in sorted(graph[name]):
            walk(other, [*path, name])
        done.add(name)

    for name in MODULES:
        walk(name, [])


@pytest.mark.parametrize("name", list(MODULES))
def test_modules_stay_short(name):
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(PACKAGE.parent)}: {lines} lines"
