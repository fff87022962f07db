"""Dependencies point one way: simulator <- bandits <- serving <- experiments (the command line),
and modules do not import each other in a circle.

Every import in the four packages is read from the source (``import``, ``from ...
import``, and ``importlib.import_module("...")`` with a literal name), wherever it
stands (module level or inside a function), except under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"simulator": 0, "bandits": 1, "serving": 2, "experiments": 3}


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, package: list[str]) -> list[tuple[int, str]]:
    """(line, imported module) for every import in ``path`` outside TYPE_CHECKING blocks.

    ``package`` is the dotted package the file is in, for relative imports.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _type_checking_lines(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            # `from pkg import mod` imports the module pkg.mod when there is one
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module")
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def package_of(path: Path) -> list[str]:
    here = module_name(path).split(".")
    return here if path.name == "__init__.py" else here[:-1]


def sources() -> list[Path]:
    return sorted(p for pkg in LAYERS for p in (ROOT / pkg).rglob("*.py"))


def test_every_package_has_sources() -> None:
    for pkg in LAYERS:
        assert (ROOT / pkg / "__init__.py").is_file(), pkg


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_package_imports_a_higher_one(path: Path) -> None:
    own = LAYERS[path.relative_to(ROOT).parts[0]]
    upward = [f"{path.relative_to(ROOT)}:{line} imports {name}"
              for line, name in imports_of(path, package_of(path))
              if LAYERS.get(name.split(".")[0], -1) > own]
    assert not upward, "a lower package imports a higher one:\n" + "\n".join(upward)


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The reader finds function-level and importlib imports, and skips TYPE_CHECKING ones."""
    src = tmp_path / "mod.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "import importlib\n"
        "if TYPE_CHECKING:\n"
        "    from experiments.config import ExperimentConfig\n"
        "def f():\n"
        "    from serving.app import create_app\n"
        "    return importlib.import_module('experiments.cli')\n")
    tree_imports = [name for _, name in imports_of(src, ["simulator"])]
    assert "serving.app" in tree_imports and "experiments.cli" in tree_imports
    assert "experiments.config" not in tree_imports



def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports (read as above, lazy imports included).

    Importing ``a.b.c`` from outside ``a.b`` also runs ``a.b``'s ``__init__``, so it
    counts as importing ``a.b`` too (from inside ``a.b`` that has already started).
    """
    files = {module_name_in(root, p): p for p in sorted((root / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for _, imported in imports_of(path, pkg):
            parts = imported.split(".")
            for i in range(1, len(parts) + 1):
                target = ".".join(parts[:i])
                inside = name == target or name.startswith(target + ".")
                if target in files and not inside:
                    targets.add(target)
        graph[name] = targets
    return graph


def module_name_in(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("package", ["simulator", "bandits", "serving", "experiments"])
def test_no_import_cycles(package: str) -> None:
    found = cycles(import_graph(ROOT, package))
    assert not found, "modules import each other in a circle:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_cycle_check_sees_a_lazy_cycle_through_a_package(tmp_path: Path) -> None:
    """a imports pkg.b (running pkg/__init__, which imports pkg.c); c imports a inside a function."""
    (tmp_path / "top" / "pkg").mkdir(parents=True)
    (tmp_path / "top" / "__init__.py").write_text("")
    (tmp_path / "top" / "a.py").write_text("from top.pkg.b import x\n")
    (tmp_path / "top" / "pkg" / "__init__.py").write_text("from top.pkg import c\n")
    (tmp_path / "top" / "pkg" / "b.py").write_text("x = 1\n")
    (tmp_path / "top" / "pkg" / "c.py").write_text("def f():\n    from top import a\n    return a\n")
    (tmp_path / "top" / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                           "    from top import a\n")
    graph = import_graph(tmp_path, "top")
    assert graph["top.a"] == {"top.pkg", "top.pkg.b"} and graph["top.pkg.c"] == {"top.a"}
    assert graph["top.d"] == set()
    assert cycles(graph) == [["top.a", "top.pkg", "top.pkg.c"]]
