"""The wheel: pyproject lists every subpackage, and a wheel built from the tree holds every module, the shipped
configs (as ``meta_layer_cli.configs``) and the dependencies as declared (SpliceAI's package only in the
``demo`` extra)."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "meta_layer_cli"


def _dotted(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_pyproject_lists_every_subpackage():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {_dotted(p.parent / "__init__.py") for p in PACKAGE.rglob("__init__.py") if "__pycache__" not in p.parts}
    on_disk.add("meta_layer_cli.configs")
    on_disk.discard("configs")
    assert listed == on_disk


def test_the_wheel_holds_every_module_and_the_configs(tmp_path):
    source = tmp_path / "source"  # a copy, so the build writes nothing into the working tree
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("meta_layer_cli", "configs"):
        shutil.copytree(ROOT / folder, source / folder, ignore=skip)
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("metalayer-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    configs = {
        "meta_layer_cli/configs/" + p.relative_to(ROOT / "configs").as_posix()
        for p in (ROOT / "configs").rglob("*.yaml")
    }
    assert {"meta_layer_cli/configs/lightweight.yaml", "meta_layer_cli/configs/profiles/cpu.yaml"} <= configs
    assert modules <= names and configs <= names, sorted((modules | configs) - names)
    assert not [n for n in names if n.startswith(("tests/", "scripts/", "configs/"))]
    (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    metadata = email.message_from_bytes(zipfile.ZipFile(wheel).read(metadata_name))
    requires = metadata.get_all("Requires-Dist")
    assert "demo" in metadata.get_all("Provides-Extra")
    spliceai = [r for r in requires if r.startswith(("spliceai", "frame-alignment-checks"))]
    assert len(spliceai) == 2 and all('extra == "demo"' in r for r in spliceai), spliceai
    assert any(r.startswith("scikit-learn") and "extra" not in r for r in requires)


def test_ci_runs_the_readme_set_up_commands():
    """.ci/run holds the README's two set-up commands as written (pip's -q aside), so the extras CI installs are
    the ones a new user installs."""
    readme = (ROOT / "README.md").read_text()
    set_up = readme[readme.index("## Set-up") :]
    set_up = set_up[: set_up.index("\n## ", 1)]
    commands = [block.strip() for block in set_up.split("```bash\n")[1:3]]
    commands = [c[: c.index("```")].strip() for c in commands]
    ci = [line.replace(" -q ", " ") for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert len(commands) == 2 and all(c in ci for c in commands), commands
    assert '".[demo,test]"' in commands[0]
