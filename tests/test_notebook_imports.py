"""The notebooks' imports, d2l style, checked without running a notebook.

Each notebook imports the method once (``import fastslow_lib as fs``) and the course's tooling
once (``import fastslow_course as course``), every import in at most five lines; ``fs.NAME`` and
``course.NAME`` are the packages' lazy flat namespaces (PEP 562), whose tables (module -> names)
say where each name is defined. A typo in a notebook (``fs.load_wrld``) or a name a refactoring
moved fails here, in seconds, instead of after ten minutes of nbval.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import fastslow_course
import fastslow_lib

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PACKAGES = {"fastslow_lib": fastslow_lib, "fastslow_course": fastslow_course}
MAX_IMPORT_LINES = 5
MAGIC = re.compile(r"^\s*[%!]")


EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def code_cells(path: Path) -> list[ast.Module]:
    """The notebook's code cells, parsed (IPython magics and shell lines masked as ``pass``); a
    Python file is one cell."""
    if path.suffix == ".py":
        return [ast.parse(path.read_text(encoding="utf-8"))]
    cells = []
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "code":
            lines = "".join(cell["source"]).split("\n")
            src = "\n".join(re.sub(r"\S.*", "pass", line) if MAGIC.match(line) else line
                            for line in lines)
            cells.append(ast.parse(src))
    return cells


def imports(path: Path) -> list[ast.Import | ast.ImportFrom]:
    return [node for tree in code_cells(path) for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)]


def import_lines(path: Path) -> int:
    """Physical lines taken by the notebook's import statements, wherever they are."""
    return sum(node.end_lineno - node.lineno + 1 for node in imports(path))


def flat_uses(path: Path) -> dict[str, set[str]]:
    """package -> the attributes the notebook takes from it through its alias (``fs.X``)."""
    alias_of = {a.asname or a.name: a.name for node in imports(path)
                if isinstance(node, ast.Import) for a in node.names if a.name in PACKAGES}
    used: dict[str, set[str]] = {pkg: set() for pkg in alias_of.values()}
    for tree in code_cells(path):
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in alias_of:
                used[alias_of[node.value.id]].add(node.attr)
    return used


def tables(package: types.ModuleType) -> dict[str, dict[str, tuple[str, ...]]]:
    """The package's tables: its upper-case attributes mapping its modules to names."""
    return {k: v for k, v in vars(package).items()
            if k.isupper() and k not in package.__all__ and isinstance(v, dict) and v
            and all(isinstance(m, str) and m.startswith(f"{package.__name__}.")
                    and isinstance(ns, tuple) for m, ns in v.items())}


def table_entries() -> list[tuple[str, str, str, str]]:
    return [(pkg, table, module, name) for pkg, package in PACKAGES.items()
            for table, rows in tables(package).items() for module, names in rows.items()
            for name in names]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 7, NOTEBOOKS


# (a) ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_imports_take_at_most_five_lines(path):
    assert import_lines(path) <= MAX_IMPORT_LINES, [ast.unparse(n) for n in imports(path)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_library_is_imported_whole(path):
    """No deep import (``from fastslow_lib.fast.model import DualEncoder``): ``fs.DualEncoder``."""
    deep = [ast.unparse(n) for n in imports(path)
            if (n.module if isinstance(n, ast.ImportFrom) else n.names[0].name).split(".")[0]
            in PACKAGES and not (isinstance(n, ast.Import) and n.names[0].name in PACKAGES)]
    assert deep == []


def test_the_line_count_counts_continuation_lines(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": [
        "import json\n", "%matplotlib inline\n", "from os.path import (join,\n",
        "                     split)\n", "def f():\n", "    import math\n"]}]}
    path = tmp_path / "99_x.ipynb"
    path.write_text(json.dumps(nb))
    assert import_lines(path) == 4


# (b) ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS + EXAMPLES, ids=lambda p: p.name)
def test_every_name_a_notebook_uses_is_in_the_namespace(path):
    used = flat_uses(path)
    assert "fastslow_lib" in used, "the notebook should import fastslow_lib (as fs)"
    missing = [f"{pkg}.{name}" for pkg, names in used.items()
               for name in sorted(names - set(PACKAGES[pkg].__all__))]
    assert missing == []


# (c) ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("package", "table", "module", "name"), table_entries(),
                         ids=lambda x: x.split(".", 1)[-1])
def test_each_table_name_is_defined_where_the_table_says(package, table, module, name):
    mod = importlib.import_module(module)
    assert hasattr(mod, name), f"{package}.{table}: {module} has no {name}"
    value = getattr(mod, name)
    if isinstance(value, type | types.FunctionType):
        assert value.__module__ == module, f"{name} is defined in {value.__module__}"
    assert getattr(PACKAGES[package], name) is value


@pytest.mark.parametrize("package", PACKAGES.values(), ids=lambda p: p.__name__)
def test_the_tables_are_the_namespace_without_duplicates(package):
    assert "EXPORTS" in tables(package)
    names = [n for table in tables(package).values() for ns in table.values() for n in ns]
    assert sorted(names) == sorted(set(names)), "a name listed twice"
    assert sorted(names) == package.__all__
    assert set(package.__all__) <= set(dir(package))


def test_building_a_table_with_a_duplicate_fails():
    from fastslow_lib.core.namespace import flat_namespace

    with pytest.raises(ValueError, match="'x' is listed twice"):
        flat_namespace("fastslow_lib", {"a.b": ("x", "y"), "a.c": ("x",)})


# (d) ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("package", PACKAGES)
def test_importing_the_package_is_cheap(package):
    """Nothing of the namespace is imported with the package (no torch); no table name is a
    global of the package already (the lazy look-up would never see it)."""
    code = (f"import sys, {package} as p; "
            "print('torch' in sys.modules, sorted(set(p.__all__) & set(vars(p))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "[]"]


# (e) ---------------------------------------------------------------------------------------

def test_an_unknown_name_is_an_attribute_error_with_a_suggestion():
    with pytest.raises(AttributeError, match=r"no attribute 'load_wrld'.*'load_world'"):
        fastslow_lib.load_wrld  # noqa: B018
    with pytest.raises(AttributeError, match=r"no attribute 'recrod'.*'record'"):
        fastslow_course.recrod  # noqa: B018
    assert not hasattr(fastslow_lib, "no_such_name_at_all")


def test_a_name_is_kept_after_its_first_use():
    value = fastslow_lib.get_preset
    assert vars(fastslow_lib)["get_preset"] is value


def test_a_flat_name_that_is_also_a_submodule_stays_the_flat_name():
    """``fs.rerank`` is the function even after ``fastslow_lib.rerank`` (the module) is imported,
    which binds the module on the package; ``from ... import`` still reaches the module."""
    import fastslow_course.manifest
    import fastslow_lib.rerank
    from fastslow_lib.rerank import SlowGallery

    assert isinstance(fastslow_lib.rerank, types.FunctionType)
    assert fastslow_lib.rerank is sys.modules["fastslow_lib.rerank"].rerank
    assert isinstance(fastslow_course.manifest, types.FunctionType)
    assert SlowGallery is fastslow_lib.SlowGallery
