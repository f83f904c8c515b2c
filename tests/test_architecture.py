"""The layout tells the architecture: imports point down, no cycles, small modules.

docs/architecture.md draws the tree these rules describe. The walker reads the source with
``ast`` (nothing is imported), so a lazy import inside a function counts like any other:
it is still a dependency, only a later one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "thermalcount"

# Lower layers never import higher ones; a package may import its own layer (no cycles, see
# below) and every layer under it. From the bottom: errors and config; the components
# (frames, recordings, the model); what runs them (live and offline counting, lights, MQTT,
# training); the tools and wiring built on those; the command line.
LAYERS = (
    {"errors", "config", "support", "testing"},
    {"store", "sensors", "model"},
    {"runtime", "lights", "mqtt", "training"},
    {"app", "bench", "evaluation"},
    {"cli", "__main__"},
)
# Same-layer imports that would break a promise: the Pi's runtime never needs the training
# stack (the subprocess tests in test_runtime_model.py prove it at run time as well).
FORBIDDEN = {("runtime", "training"), ("lights", "training"), ("mqtt", "training"),
             ("runtime", "lights"), ("runtime", "mqtt")}
TOP_LEVEL_MODULES = {"__init__", "__main__", "errors", "config"}
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set:
    """Every ``thermalcount`` module ``path`` imports, resolved to a module that exists."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "thermalcount":
                continue
            for alias in node.names:  # ``from thermalcount.model import graph`` names a module
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in ALL_MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "thermalcount")
    return {name for name in found if name != "thermalcount"}


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_of(package: str) -> int:
    for index, members in enumerate(LAYERS):
        if package in members:
            return index
    raise AssertionError(f"thermalcount.{package} is in no layer: add it to LAYERS and docs/architecture.md")


SOURCES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
ALL_MODULES = set(SOURCES)
GRAPH = {module: imported_modules(path) for module, path in SOURCES.items()}


def test_the_walker_sees_imports_including_lazy_ones():
    assert "thermalcount.errors" in GRAPH["thermalcount.config"]
    # cli/__init__ loads its commands lazily by name; bench_cmd imports bench inside a function
    assert any(name.startswith("thermalcount.bench") for name in GRAPH["thermalcount.cli.bench_cmd"])


def test_no_loose_modules_at_the_top_level():
    loose = sorted(path.name for path in PACKAGE.glob("*.py") if path.stem not in TOP_LEVEL_MODULES)
    assert loose == [], "top-level modules belong in a package: " + ", ".join(loose)


def test_every_package_has_a_layer():
    for module in SOURCES:
        if package_of(module) in ("", "errors", "config"):
            continue
        layer_of(package_of(module))


def upward_imports(module: str, targets) -> list:
    source = package_of(module)
    if source == "":
        return []  # the package's __init__ holds only the version
    return [target for target in sorted(targets)
            if package_of(target) != source
            and (layer_of(package_of(target)) > layer_of(source) or (source, package_of(target)) in FORBIDDEN)]


def find_cycles(graph: dict) -> list:
    state, cycles = {}, []

    def visit(module, stack):
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target in graph and target not in state:
                visit(target, stack)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    return cycles


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_imports_point_down(module):
    upward = upward_imports(module, GRAPH[module])
    assert upward == [], f"{module} imports upward or across a forbidden line: {upward}"


def test_no_import_cycles():
    """Between modules: a cycle means neither can be understood (or loaded) alone."""
    cycles = find_cycles(GRAPH)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_is_too_long_to_read():
    long = {module: n for module, path in SOURCES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"split these (over {MAX_LINES} lines): {long}"


def test_the_checks_report_what_is_wrong():
    """Fed made-up imports, the checks above name the cycle and the upward import."""
    graph = {"thermalcount.a": {"thermalcount.b"}, "thermalcount.b": {"thermalcount.c"},
             "thermalcount.c": {"thermalcount.a"}, "thermalcount.d": set()}
    assert find_cycles(graph) == [["thermalcount.a", "thermalcount.b", "thermalcount.c", "thermalcount.a"]]
    assert upward_imports("thermalcount.model.loader", {"thermalcount.runtime.live", "thermalcount.errors"}) \
        == ["thermalcount.runtime.live"]
    assert upward_imports("thermalcount.runtime.live", {"thermalcount.training.train"}) == ["thermalcount.training.train"]
    assert upward_imports("thermalcount.cli.run_cmd", {"thermalcount.app.run", "thermalcount.model.loader"}) == []


def documented_tree() -> set:
    """The module paths drawn in docs/architecture.md's tree (``*_cmd.py`` stands for the commands)."""
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = text.split("```\nthermalcount/\n", 1)[1].split("```", 1)[0]
    folders, paths = [], set()
    for line in block.splitlines():
        name = line.strip().split(" ", 1)[0]
        depth = (len(line) - len(line.lstrip(" "))) // 2 - 1
        folders = folders[:depth]
        if name.endswith("/"):
            folders.append(name.rstrip("/"))
        elif name.endswith(".py"):
            paths.add("/".join(folders + [name]))
    return paths


def test_architecture_doc_draws_every_module_and_no_other():
    actual = {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
              if path.name != "__init__.py" or path.parent in (PACKAGE, PACKAGE / "cli")}
    commands = {name for name in actual if name.startswith("cli/") and name.endswith("_cmd.py")}
    drawn = documented_tree()
    assert "cli/*_cmd.py" in drawn and commands
    drawn = (drawn - {"cli/*_cmd.py"}) | commands
    assert sorted(actual - drawn) == [], "add these to the tree in docs/architecture.md"
    assert sorted(drawn - actual) == [], "docs/architecture.md draws modules that do not exist"
