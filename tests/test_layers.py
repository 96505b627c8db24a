"""Production code never depends on the development tools.

The sample-data generator (and Faker, which only it needs), the demo, the simulation and the
code that reads the generator's hidden truth are development tools: ``pip install seg-pipeline``
without extras does not install Faker, and the daily pipeline must load and run without them.
The imports of every production module are read with ``ast`` (module-level and function-level,
absolute and relative, and ``importlib.import_module("...")`` with a literal name).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = "seg_pipeline"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE
# Development tools: everything else in the package is production code.
DEV_ONLY = ("seg_pipeline.generator", "seg_pipeline.demo", "seg_pipeline.simulate")
GENERATOR_IMPORTS = ("seg_pipeline.generator", "faker")
TRUTH_READER = "seg_pipeline.evaluation.truth"
EVALUATION = "seg_pipeline.evaluation"
# The evaluation package reads the truth; the definitions register its checks, and import it,
# only where a truth folder exists (tests/pipeline/test_code_location.py checks both cases).
TRUTH_IMPORTERS = (EVALUATION, "seg_pipeline.definitions")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


ALL_MODULES = {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}
PRODUCTION = {name: path for name, path in ALL_MODULES.items() if not _within(name, DEV_ONLY)}


def imported_names(module: str, path: Path) -> set[str]:
    """Every module name ``module`` may import: ``from a import b`` yields ``a`` and ``a.b``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (
                    isinstance(node.func, ast.Name)
                    and node.func.id in {"import_module", "__import__"}
                )
            )
        ):
            names.add(node.args[0].value)
    return names


def test_the_layer_lists_are_not_empty() -> None:
    assert "seg_pipeline.definitions" in PRODUCTION
    assert "seg_pipeline.segmentation.assets" in PRODUCTION
    assert TRUTH_READER in PRODUCTION
    assert "seg_pipeline.generator.catalogue" in ALL_MODULES
    assert "seg_pipeline.generator.catalogue" not in PRODUCTION
    assert "seg_pipeline.demo" not in PRODUCTION


def test_the_import_reader_sees_every_form(tmp_path: Path) -> None:
    pkg = tmp_path / "seg_pipeline" / "segmentation"
    pkg.mkdir(parents=True)
    source = pkg / "probe.py"
    source.write_text(
        "import faker\n"
        "from seg_pipeline.generator import generate\n"
        "def f():\n"
        "    from . import evaluation\n"
        "    from ..generator.core import generate\n"
        "    import importlib\n"
        "    importlib.import_module('seg_pipeline.demo')\n",
        encoding="utf-8",
    )
    names = imported_names("seg_pipeline.segmentation.probe", source)
    assert {
        "faker",
        "seg_pipeline.generator.generate",
        "seg_pipeline.segmentation.evaluation",
        "seg_pipeline.generator.core",
        "seg_pipeline.demo",
    } <= names


@pytest.mark.parametrize("module", sorted(PRODUCTION))
def test_production_never_imports_the_generator_or_faker(module: str) -> None:
    names = imported_names(module, PRODUCTION[module])
    bad = sorted(n for n in names if _within(n, (*DEV_ONLY, *GENERATOR_IMPORTS)))
    assert not bad, f"{PRODUCTION[module].name} imports development-only modules: {bad}"


@pytest.mark.parametrize(
    "module", [name for name in sorted(PRODUCTION) if not _within(name, TRUTH_IMPORTERS)]
)
def test_production_never_imports_the_truth_reader(module: str) -> None:
    bad = sorted(n for n in imported_names(module, PRODUCTION[module]) if _within(n, (EVALUATION,)))
    assert not bad, f"{PRODUCTION[module].name} imports the truth reader: {bad}"


def test_the_definitions_import_the_evaluation_only_inside_the_truth_branch() -> None:
    tree = ast.parse(PRODUCTION["seg_pipeline.definitions"].read_text(encoding="utf-8"))
    top_level = {
        node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not any(_within(name, (EVALUATION,)) for name in top_level)


def test_the_pipeline_loads_without_faker_or_the_generator() -> None:
    """Import the definitions in a fresh interpreter in which ``import faker`` fails."""
    code = (
        "import sys\n"
        "sys.modules['faker'] = None\n"
        "import seg_pipeline.definitions as d\n"
        "assert d.defs is not None\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('seg_pipeline.generator', "
        "'seg_pipeline.demo')))\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
