"""The package's shape, as docs/architecture.md draws it: layers that import one way, no import
cycle, a training loop that is only the loop, and short functions under training/ (argparse only
in the command modules: tests/test_commands.py). Every import counts, function-level and
TYPE_CHECKING ones included."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cyclestyle"

# Lowest first: a module may import from its own layer (without a cycle) and from those below.
LAYERS = [
    ("registry", "devices", "config"),
    ("data", "models", "run_folder", "files"),
    ("inference", "style", "export", "interop", "app"),
    ("evaluation",),
    ("training",),
    ("demo",),
    ("commands", "cli", "__main__", ""),  # "": the package itself, the Python API
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(module: str) -> set[str]:
    """The package's modules that ``module`` imports anywhere in its source: for ``from X import
    name``, the module X.name where there is one, else X."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            origin = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in MODULES else origin for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target.startswith("cyclestyle") and target != module:
                found.add(target)
    return found


GRAPH = {m: imported(m) for m in MODULES}


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module} is in no layer: add its top-level name to LAYERS (and docs/architecture.md)")


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_no_module_imports_from_a_higher_layer():
    upward = [f"{m} (layer {layer_of(m)}) imports {t} (layer {layer_of(t)})"
              for m, targets in GRAPH.items() for t in targets if layer_of(t) > layer_of(m)]
    assert not upward, "\n".join(upward)


def test_there_is_no_import_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module)


def test_config_imports_nothing_of_the_layers_above():
    assert GRAPH["cyclestyle.config"] <= {"cyclestyle.registry"}


def test_the_training_loop_is_the_loop():
    lines = (PACKAGE / "training" / "loop.py").read_text().count("\n")
    assert lines <= 250, f"training/loop.py has {lines} lines"


def function_lengths(folder: Path) -> list[tuple[int, str]]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((node.end_lineno - node.lineno + 1, f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}"))
    return found


def test_no_function_under_training_is_longer_than_40_lines():
    long = [f"{where} ({n} lines)" for n, where in function_lengths(PACKAGE / "training") if n > 40]
    assert not long, "\n".join(long)
