"""The package's shape: layers import only downwards, no import cycles, no private names cross modules
(the wheel's contents: tests/test_packaging.py).

Every import is read, wherever it sits: at module level, inside functions and methods, ``import a.b``,
``from . import x``, ``importlib.import_module("meta_layer_cli...")``, and ``from meta_layer_cli import name``
through the package root's lazy exports (resolved to the module that defines the name, so no module can reach
the jobs through the root). An import inside a function still closes a circle, so cycles are checked over all
of them. The checks take the sources as a mapping so that the tests below can show they fail on a broken tree.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "meta_layer_cli"
PACKAGE_NAME = "meta_layer_cli"

# Lowest first. A module may import from its own layer or any layer before it.
LAYERS = (
    "runtime",
    "io",
    "base_models",
    "artifacts",
    "features",
    "models",
    "evaluation",
    "training",
    "inference",
    "jobs",
    "commands",
)

DATA_PACKAGES = ("configs",)  # shipped YAML files, no code


def _dotted(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_sources() -> dict[str, str]:
    """Dotted module name -> source text, for every module of the package."""
    paths = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)
    return {_dotted(p): p.read_text() for p in paths}


def _layer(module: str) -> int | None:
    """Layer index of a dotted module name inside the package (None for the package root and data)."""
    parts = module.split(".")
    if parts[0] != PACKAGE_NAME or len(parts) == 1 or parts[1] in DATA_PACKAGES or parts[1] == "__main__":
        return None
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else None


def root_exports(sources: dict[str, str]) -> dict[str, str]:
    """The package root's lazy exports: public name -> module that defines it (its ``_EXPORTS`` literal)."""
    for node in ast.parse(sources[PACKAGE_NAME]).body:
        targets = [node.target] if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [])
        if any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in targets):
            return ast.literal_eval(node.value)
    return {}


@dataclass(frozen=True)
class Import:
    importer: str  # dotted name of the importing module
    line: int
    target: str  # dotted name of the module whose code the import runs
    names: tuple[str, ...]  # names taken from it ("" for `import a.b`)
    in_function: bool

    def __str__(self) -> str:
        where = "inside a function" if self.in_function else "at module level"
        names = f" ({', '.join(self.names)})" if any(self.names) else ""
        return f"{self.importer}:{self.line} imports {self.target}{names} {where}"


def _absolute(importer: str, is_package: bool, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _function_nodes(tree: ast.AST) -> set[int]:
    """ids of every node inside a function or lambda body (one pass, carrying "inside" down the tree)."""
    inside: set[int] = set()
    todo: list[tuple[ast.AST, bool]] = [(tree, False)]
    while todo:
        node, in_function = todo.pop()
        if in_function:
            inside.add(id(node))
        nested = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        todo.extend((child, nested) for child in ast.iter_child_nodes(node))
    return inside


@functools.cache
def imports_of(importer: str, source: str, modules: frozenset[str], export_items: frozenset) -> tuple[Import, ...]:
    """Every import of the package's own modules in ``source`` (module ``importer``), resolved to the module
    it runs: a submodule for ``from pkg import submodule``, the defining module for a root export
    (``export_items``: the root's ``_EXPORTS`` items)."""
    exports = dict(export_items)
    is_package = any(m.startswith(importer + ".") for m in modules)
    tree = ast.parse(source)
    in_function = _function_nodes(tree)
    found: list[Import] = []
    module_aliases: dict[str, str] = {}  # local name -> dotted module, to resolve `alias.name`

    def add(node: ast.AST, target: str, names: tuple[str, ...]) -> None:
        if target == PACKAGE_NAME or target.startswith(PACKAGE_NAME + "."):
            found.append(Import(importer, node.lineno, target, names, id(node) in in_function))

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = _absolute(importer, is_package, node.module, node.level)
            for alias in node.names:
                name = alias.name
                if f"{module}.{name}" in modules:
                    add(node, f"{module}.{name}", ("",))
                    module_aliases[alias.asname or name] = f"{module}.{name}"
                elif module == PACKAGE_NAME and name in exports:
                    add(node, exports[name], (name,))
                else:
                    add(node, module, (name,))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                add(node, alias.name, ("",))
                if alias.asname:
                    module_aliases[alias.asname] = alias.name
                else:
                    module_aliases[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in ("import_module", "__import__") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    add(node, arg.value, ("",))
    # `import meta_layer_cli` then `meta_layer_cli.run_demo(...)`, or `from pkg import module` then `module._name`
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in module_aliases:
            module = module_aliases[node.value.id]
            if module == PACKAGE_NAME and node.attr in exports:
                add(node, exports[node.attr], (node.attr,))
            elif module.startswith(PACKAGE_NAME) and node.attr.startswith("_") and not node.attr.startswith("__"):
                add(node, module, (node.attr,))
    return tuple(found)


def all_imports(sources: dict[str, str]) -> list[Import]:
    modules, exports = frozenset(sources), frozenset(root_exports(sources).items())
    return [imp for module, text in sources.items() for imp in imports_of(module, text, modules, exports)]


def upward_imports(sources: dict[str, str]) -> list[str]:
    """Imports from a layer above the importer's (the package root and ``__main__`` sit above every layer)."""
    upward = []
    for imp in all_imports(sources):
        own, target = _layer(imp.importer), _layer(imp.target)
        if own is not None and target is not None and target > own:
            upward.append(str(imp))
    return upward


def private_crossings(sources: dict[str, str]) -> list[str]:
    """Private names (``_name``, or a name inside a ``_module``) used by another module."""
    crossing = []
    for imp in all_imports(sources):
        if imp.target == imp.importer:
            continue
        private = [n for n in imp.names if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))]
        private_module = any(p.startswith("_") and p not in ("__init__", "__main__") for p in imp.target.split("."))
        if private or private_module:
            crossing.append(str(imp))
    return crossing


def import_cycles(sources: dict[str, str]) -> list[list[str]]:
    """Strongly connected groups of modules (size > 1) in the graph of all imports, wherever they sit."""
    graph: dict[str, set[str]] = {m: set() for m in sources}
    for imp in all_imports(sources):
        if imp.target in graph and imp.target != imp.importer:
            graph[imp.importer].add(imp.target)
    # Tarjan's algorithm, iterative
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups


def _cycle_report(sources: dict[str, str], groups: list[list[str]]) -> str:
    edges = [str(i) for i in all_imports(sources) for g in groups if i.importer in g and i.target in g]
    return "import cycles: " + "; ".join(" <-> ".join(g) for g in groups) + "\n" + "\n".join(edges)


def test_every_top_level_module_is_a_known_layer():
    found = {
        p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()
    }
    found -= {"__init__", "__main__", *DATA_PACKAGES}
    assert found <= set(LAYERS), f"not in a layer: {sorted(found - set(LAYERS))}"


def test_root_exports_name_existing_modules():
    sources = package_sources()
    exports = root_exports(sources)
    assert exports, "the package root's _EXPORTS was not found (the checks below resolve root imports with it)"
    assert {m for m in exports.values() if m not in sources} == set()


def test_imports_point_down():
    upward = upward_imports(package_sources())
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_private_names_cross_modules():
    crossing = private_crossings(package_sources())
    assert not crossing, "private names used across modules:\n" + "\n".join(crossing)


def test_no_import_cycles_between_modules():
    sources = package_sources()
    groups = import_cycles(sources)
    assert not groups, _cycle_report(sources, groups)


# --- the checks themselves fail on a broken tree --------------------------------------------------------------

UPWARD_IN_CONTIGS = {
    "through the package root, in a function": "def _f():\n    from meta_layer_cli import run_demo\n",
    "from a job module, in a function": "def _f():\n    from meta_layer_cli.jobs.demo import run_demo\n",
    "import a.b in a method": "class _C:\n    def f(self):\n        import meta_layer_cli.jobs.demo\n",
    "relative": "def _f():\n    from ..jobs import demo\n",
    "by importlib": "def _f():\n    import importlib\n    importlib.import_module('meta_layer_cli.jobs.demo')\n",
    "root attribute": "import meta_layer_cli\n\n\ndef _f():\n    return meta_layer_cli.run_demo\n",
    "at module level": "from meta_layer_cli.commands.main import main\n",
}


@pytest.mark.parametrize("how", UPWARD_IN_CONTIGS)
def test_an_upward_import_added_to_io_contigs_is_seen(how):
    sources = package_sources()
    sources["meta_layer_cli.io.contigs"] += "\n\n" + UPWARD_IN_CONTIGS[how]
    found = upward_imports(sources)
    assert found and all(f.startswith("meta_layer_cli.io.contigs:") for f in found), found


def test_a_cycle_closed_inside_a_function_is_seen():
    sources = package_sources()
    sources["meta_layer_cli.io.first"] = "from meta_layer_cli.io.second import b\n\n\ndef a():\n    return b()\n"
    sources["meta_layer_cli.io.second"] = "def b():\n    from meta_layer_cli.io.first import a\n\n    return a\n"
    assert ["meta_layer_cli.io.first", "meta_layer_cli.io.second"] in import_cycles(sources)


def test_a_private_name_imported_inside_a_function_is_seen():
    sources = package_sources()
    sources["meta_layer_cli.io.contigs"] += "\n\ndef _f():\n    from meta_layer_cli.io.fasta import _hidden\n"
    attribute = "\n\ndef _g():\n    from meta_layer_cli.io import fasta\n\n    return fasta._x\n"
    sources["meta_layer_cli.io.genes"] += attribute
    found = private_crossings(sources)
    assert [f.split(":")[0] for f in found] == ["meta_layer_cli.io.contigs", "meta_layer_cli.io.genes"], found


@pytest.mark.parametrize("name", ["default", "lightweight", "variants"])
def test_builtin_configs_resolve_to_the_top_level_folder(name):
    from meta_layer_cli.jobs.canonical import builtin_config

    assert builtin_config(name) == ROOT / "configs" / f"{name}.yaml"
