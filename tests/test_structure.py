"""The package's shape: layers import only downwards, no private names cross modules, the wheel lists every
subpackage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "meta_layer_cli"

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


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


DATA_PACKAGES = ("configs",)  # shipped YAML files, no code


def _layer(module: str) -> int | None:
    """Layer index of a dotted module name inside the package (None for the package root and data)."""
    parts = module.split(".")
    if parts[0] != "meta_layer_cli" or len(parts) == 1 or parts[1] in DATA_PACKAGES:
        return None
    return LAYERS.index(parts[1])


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every ``from meta_layer_cli... import ...`` / ``import meta_layer_cli...``."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("meta_layer_cli"):
            out.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names if a.name.startswith("meta_layer_cli")]
    return out


def _dotted(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_every_top_level_module_is_a_known_layer():
    found = {p.name.removesuffix(".py") for p in PACKAGE.iterdir()
             if p.suffix == ".py" or (p / "__init__.py").is_file()}  # fmt: skip
    found -= {"__init__", "__main__", *DATA_PACKAGES}
    assert found <= set(LAYERS), f"not in a layer: {sorted(found - set(LAYERS))}"


def test_imports_point_down():
    upward = []
    for path in _modules():
        if path.name == "__main__.py":
            continue  # the `python -m` entry point, above every layer
        own = _layer(_dotted(path))
        if own is None:
            continue  # the package root re-exports jobs lazily
        for line, module, _ in _imports(path):
            target = _layer(module)
            if target is not None and target > own:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_private_names_cross_modules():
    crossing = []
    for path in _modules():
        for line, module, names in _imports(path):
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            private_module = any(p.startswith("_") for p in module.split(".")[1:])
            if private or private_module:
                crossing.append(f"{path.relative_to(ROOT)}:{line} from {module} import {', '.join(names)}")
    assert not crossing, "private names used across modules:\n" + "\n".join(crossing)


def test_no_import_cycles_between_modules_at_import_time():
    """Top-level (import-time) imports between the package's modules form no cycle."""
    graph: dict[str, set[str]] = {}
    for path in _modules():
        tree = ast.parse(path.read_text())
        deps = set()
        for node in tree.body:  # module level only; imports inside functions run later
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("meta_layer_cli"):
                deps.add(node.module)
        graph[_dotted(path)] = deps
    seen: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        seen[node] = 1
        for dep in graph.get(node, ()):
            if dep == node or dep not in graph:
                continue
            if seen.get(dep) == 1:
                cycle.extend(stack[stack.index(dep) :] + [dep] if dep in stack else [node, dep])
                return True
            if dep not in seen and visit(dep, stack + [dep]):
                return True
        seen[node] = 2
        return False

    for node in graph:
        if node not in seen and visit(node, [node]):
            break
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_pyproject_lists_every_subpackage():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {_dotted(p.parent / "__init__.py") for p in PACKAGE.rglob("__init__.py") if "__pycache__" not in p.parts}
    on_disk.add("meta_layer_cli.configs")
    on_disk.discard("configs")
    assert listed == on_disk


@pytest.mark.parametrize("name", ["default", "lightweight", "variants"])
def test_builtin_configs_resolve_to_the_top_level_folder(name):
    from meta_layer_cli.jobs.canonical import builtin_config

    assert builtin_config(name) == ROOT / "configs" / f"{name}.yaml"
