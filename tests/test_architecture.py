"""The library's shape: layers without cycles, no private names across modules, short modules.

``make test`` runs ``lint-imports`` (the contracts in pyproject.toml); these tests check that
those contracts really fail on a layer breach and on a cycle, and check what import-linter
does not: imports of another module's ``_private`` names, module length, and that the library
trains through one loop (one ``.backward(`` call).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fastslow_lib"
#: The course's tooling, apart from the method (its own distribution, course/pyproject.toml).
COURSE = ROOT / "course" / "fastslow_course"
MAX_LINES = 500
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the method and of the course's tooling."""
    out = {}
    for package in (PACKAGE, COURSE):
        for path in sorted(package.rglob("*.py")):
            parts = list(path.relative_to(package.parent).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def private_imports() -> list[str]:
    """``importer <- module._name`` for every import of a private name from another module."""
    found = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fastslow"):
                for alias in node.names:
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    if private and node.module != name:
                        found.append(f"{name} <- {node.module}.{alias.name}")
    return found


def test_no_module_imports_another_modules_private_names():
    assert private_imports() == []


def test_no_module_is_longer_than_the_limit():
    long = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {k: v for k, v in long.items() if v > MAX_LINES} == {}


def test_one_training_loop():
    calls = {name: path.read_text().count(".backward(") for name, path in modules().items()}
    assert {k: v for k, v in calls.items() if v} == {"fastslow_lib.core.loop": 1}


def lint_imports_on(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess:
    """Run the repository's contracts on a copy of the library with ``line`` added to
    ``module`` (a dotted name)."""
    copy = tmp_path / "fastslow_lib"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(COURSE, tmp_path / "fastslow_course",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = copy.joinpath(*module.split(".")[1:]).with_suffix(".py")
    target.write_text(target.read_text() + f"\n\ndef _probe():\n    {line}\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tmp_path, text=True,
                          capture_output=True, env={"PYTHONPATH": str(tmp_path),
                                                    "PATH": "/usr/bin:/bin"})


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed")
def test_the_contracts_hold_and_fail_on_an_upward_import_or_a_cycle(tmp_path):
    kept = lint_imports_on(tmp_path / "kept", "fastslow_lib.core.seed", "pass")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    # the method reaching for the course's tooling breaks the split, even inside a function
    course = lint_imports_on(tmp_path / "course", "fastslow_lib.data.world",
                             "import fastslow_course.results")
    assert course.returncode != 0 and "BROKEN" in course.stdout
    assert "fastslow_lib.data.world -> fastslow_course.results" in course.stdout
    # so does a method module importing the notebook tools the course uses
    widgets = lint_imports_on(tmp_path / "widgets", "fastslow_lib.rerank", "import ipywidgets")
    assert widgets.returncode != 0 and "fastslow_lib.rerank -> ipywidgets" in widgets.stdout
    # the Fast model importing the registry is an upward import
    upward = lint_imports_on(tmp_path / "upward", "fastslow_lib.fast.model",
                             "import fastslow_lib.registry")
    assert upward.returncode != 0 and "BROKEN" in upward.stdout
    # the Slow model importing its own scoring closes a cycle inside one layer
    cycle = lint_imports_on(tmp_path / "cycle", "fastslow_lib.slow.model",
                            "import fastslow_lib.slow.scoring")
    assert cycle.returncode != 0 and "BROKEN" in cycle.stdout
