"""The scripts' one way to write a results file (``fastslow_course.experiment``) and the make
rules that rebuild each results file when its script, the library or the release models change.

* :func:`~fastslow_course.experiment.write_result` stamps machine, device, date and commit,
  keeps the caller's keys (and the files' key order), writes atomically, and refuses a bad name
  saying what is wrong with it;
* no script in ``scripts/`` or ``benchmarks/`` builds a provenance record by hand any more;
* every ``results/NAME.json`` with a rule depends on its script and the library's sources, and on
  the release manifest when its script loads the release models; touching any of them makes
  ``make -n`` run the script (checked with ``make -n`` / ``make -q`` in a skeleton copy: nothing
  is run).
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fastslow_course import experiment
from fastslow_course.experiment import (
    PROVENANCE_KEYS,
    provenance,
    result_path,
    stamped,
    write_result,
)
from fastslow_course.release import git_commit
from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.device import describe_device, machine_name

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted([*(ROOT / "scripts").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")])
MAKE = shutil.which("make")
needs_make = pytest.mark.skipif(MAKE is None, reason="GNU make is not installed")


# --------------------------------------------------------------------------- the stamp


def test_provenance_names_the_machine_device_date_and_commit():
    stamp = provenance(get_preset("cpu"), "cpu", threads=2)
    assert list(stamp) == ["preset", "machine", "device", "threads", "date", "commit"]
    assert stamp["preset"] == "cpu"
    assert stamp["machine"] == machine_name()
    assert stamp["device"] == describe_device("cpu")
    assert stamp["date"] == dt.date.today().isoformat()
    assert stamp["commit"] == git_commit()
    assert list(provenance()) == ["machine", "date", "commit"]   # preset and device: if given
    assert provenance("tiny")["preset"] == "tiny"


def test_provenance_refuses_an_extra_key_it_stamps_itself():
    with pytest.raises(ValueError, match=r"stamps \['machine'\] itself"):
        provenance(machine="mine")


def test_the_stamp_goes_first_and_the_callers_keys_follow_unchanged():
    record = {"world": {"seed": 0}, "results": {"fast": [1, 2, 3]}}
    out = stamped(record, preset="cpu", device="cpu")
    assert list(out) == [*PROVENANCE_KEYS, "world", "results"]
    assert {k: out[k] for k in record} == record
    assert list(record) == ["world", "results"]   # the caller's dict is left alone


def test_a_stamp_key_the_record_holds_keeps_its_place_and_takes_the_stamps_value():
    # distill_signals.json: preset after date (the record holds it; not stamped)
    out = stamped({"preset": "cpu", "world": 1}, device="cpu")
    assert list(out) == ["machine", "device", "date", "commit", "preset", "world"]
    # tune_fast.json read back and rewritten: trials first, a stale machine refreshed, the rest
    # of the stamp beside it
    out = stamped({"trials": {}, "machine": "an old machine", "threads": 2})
    assert list(out) == ["trials", "machine", "date", "commit", "threads"]
    assert out["machine"] == machine_name()
    # a placeholder gives the stamp its place
    assert stamped({"trials": {}, "machine": None})["machine"] == machine_name()


# --------------------------------------------------------------------------- writing


def test_write_result_writes_results_name_json_stamped(tmp_path):
    path = write_result("demo", {"ranks": [3, 1, 2], "nested": {"a": 1}}, preset="cpu",
                        device="cpu", results_dir=tmp_path)
    assert path == tmp_path / "demo.json"
    text = path.read_text()
    assert text.endswith("}\n") and '"ranks": [3, 1, 2]' in text   # compact_json: one line
    data = json.loads(text)
    assert list(data) == [*PROVENANCE_KEYS, "ranks", "nested"]
    assert data["nested"] == {"a": 1} and data["commit"] == git_commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.json"]   # no temporary file


def test_write_result_keeps_the_plain_json_form_and_takes_a_path(tmp_path):
    record = {"threads": 2, "rows": [1, 2]}
    out = tmp_path / "sub" / "bench.json"
    assert write_result(out, record, indent=1) == out   # a script's --out; folders created
    data = json.loads(out.read_text())
    assert out.read_text() == json.dumps(data, indent=1) + "\n"
    assert list(data) == ["machine", "date", "commit", "threads", "rows"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    old = write_result("kept", {"figure": 1}, results_dir=tmp_path).read_text()
    with pytest.raises(TypeError):   # not JSON: nothing is written
        write_result("kept", {"figure": object()}, indent=1, results_dir=tmp_path)

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_result("kept", {"figure": 2}, results_dir=tmp_path)
    assert (tmp_path / "kept.json").read_text() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.json"]


@pytest.mark.parametrize(("name", "problem"), [
    ("", "it is empty"),
    ("results/test5k", "it is a path, not a name"),
    ("../test5k", "it is a path, not a name"),
    ("test5k.json", "give it without '.json'"),
    ("test 5k", "it holds ' '"),
    ("_private", "it must start with a letter or a digit"),
])
def test_a_bad_name_is_refused_saying_what_is_wrong(tmp_path, name, problem):
    with pytest.raises(ValueError, match=f"bad results name {re.escape(repr(name))}: "
                                         f"{re.escape(problem)}"):
        write_result(name, {"x": 1}, results_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_bad_target_is_refused(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):
        result_path(tmp_path)
    with pytest.raises(TypeError, match="a results name is a str"):
        result_path(5)   # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a results record is a mapping"):
        write_result("x", [("a", 1)], results_dir=tmp_path)   # type: ignore[arg-type]
    assert result_path("bench_rerank_gpu_qb16") == ROOT / "results" / "bench_rerank_gpu_qb16.json"


def test_the_helper_is_in_the_flat_namespace():
    import fastslow_course as course

    assert course.write_result is write_result and course.provenance is provenance
    assert set(experiment.__all__) >= {"provenance", "write_result", "stamped", "result_path"}


# --------------------------------------------------------------------------- the scripts

#: What a script must not call or import: the stamp's parts, which only the helper puts together.
BY_HAND = {"machine_name", "describe_device", "git_commit", "today"}


def by_hand(path: Path) -> list[str]:
    """Where ``path`` builds provenance itself: calls or imports of the stamp's parts."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in BY_HAND:
                found.append(f"line {node.lineno}: calls {name}()")
        elif isinstance(node, ast.ImportFrom):
            names = {a.name for a in node.names} & BY_HAND
            if names:
                found.append(f"line {node.lineno}: imports {sorted(names)}")
    return found


def test_there_are_scripts():
    assert len(SCRIPTS) >= 15


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_script_builds_a_provenance_record_by_hand(path):
    assert by_hand(path) == [], (
        f"{path.relative_to(ROOT)} stamps provenance by hand; use "
        f"fastslow_course.experiment.write_result (or provenance())")


def test_the_by_hand_check_sees_a_hand_made_record(tmp_path):
    script = tmp_path / "old.py"
    script.write_text("from fastslow_lib.core.device import machine_name\n"
                      "import datetime as dt\n"
                      "out = {'machine': machine_name(), 'date': dt.date.today().isoformat()}\n")
    assert by_hand(script) == ["line 1: imports ['machine_name']", "line 3: calls machine_name()",
                               "line 3: calls today()"]


# --------------------------------------------------------------------------- the make rules


def make_database() -> dict[str, tuple[list[str], list[str]]]:
    """``results/NAME.json`` -> (its prerequisites, its order-only ones), from ``make -p``."""
    out = subprocess.run([MAKE, "-pnq", "help"], cwd=ROOT, capture_output=True, text=True).stdout
    rules: dict[str, tuple[list[str], list[str]]] = {}
    for line in out.splitlines():
        m = re.match(r"^(results/[\w-]+\.json): (?!.*[:?+]?= )(.*)$", line)
        if m:
            normal, _, order_only = m.group(2).partition("|")
            rules[m.group(1)] = (normal.split(), order_only.split())
    return rules


def loads_release_models(script: Path) -> bool:
    return bool(re.search(r"\b(Releases|release_model|release_dir)\(", script.read_text()))


@needs_make
def test_every_results_rule_depends_on_its_script_the_library_and_the_manifest():
    rules = make_database()
    assert "results/test5k.json" in rules and len(rules) >= 15
    library = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "fastslow_lib").rglob("*.py"))
    for target, (prereqs, order_only) in rules.items():
        scripts = [p for p in prereqs if re.match(r"(scripts|benchmarks)/\w+\.py$", p)]
        assert len(scripts) == 1, f"{target}: one script, got {scripts}"
        assert (ROOT / scripts[0]).is_file(), target
        assert set(library) <= set(prereqs), f"{target}: not every fastslow_lib/**/*.py"
        assert ".venv/.installed" in order_only, f"{target}: the venv, order-only"
        manifest = "data/release/MANIFEST.json" in prereqs
        assert manifest == loads_release_models(ROOT / scripts[0]), (
            f"{target}: depends on the release manifest exactly when {scripts[0]} loads the "
            f"release models")
    # every committed results file a script writes by default has a rule
    for name in ("test5k", "rerank_all_queries", "warm_student", "bench_world", "tune_fast"):
        assert f"results/{name}.json" in rules


@pytest.fixture
def skeleton(tmp_path):
    """A copy of the Makefile among empty stand-ins for what its results rules name, every
    results file newer than its prerequisites."""
    rules = make_database()
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    names = {p for prereqs, order_only in rules.values() for p in prereqs + order_only}
    venv = ["requirements.txt", "pyproject.toml", "course/pyproject.toml"]   # $(STAMP)'s
    for rel in [*names, *venv, "fastslow_lib/__init__.py"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        os.utime(path, (1_000_000, 1_000_000))
    for target in rules:
        (tmp_path / target).parent.mkdir(exist_ok=True)
        (tmp_path / target).write_text("{}\n")
        os.utime(tmp_path / target, (2_000_000, 2_000_000))
    return tmp_path, rules


def make(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MAKE, "--no-print-directory", *args], cwd=folder, capture_output=True,
                          text=True)


@needs_make
def test_touching_a_script_the_library_or_the_manifest_reruns_what_depends_on_it(skeleton):
    folder, rules = skeleton
    assert make(folder, "-q", "results").returncode == 0   # all up to date
    assert "Nothing to be done" in make(folder, "-n", "results").stdout
    for target, (prereqs, _) in rules.items():
        script = next(p for p in prereqs if p.startswith(("scripts/", "benchmarks/")))
        os.utime(folder / script, (3_000_000, 3_000_000))
        dry = make(folder, "-n", target)
        assert dry.returncode == 0 and f".venv/bin/python {script}" in dry.stdout, dry.stdout
        assert make(folder, "-q", target).returncode == 1
        os.utime(folder / script, (1_000_000, 1_000_000))
        assert make(folder, "-q", target).returncode == 0
    library = folder / "fastslow_lib" / "__init__.py"
    os.utime(library, (3_000_000, 3_000_000))
    assert all(make(folder, "-q", t).returncode == 1 for t in rules)
    os.utime(library, (1_000_000, 1_000_000))
    os.utime(folder / "data" / "release" / "MANIFEST.json", (3_000_000, 3_000_000))
    stale = {t for t in rules if make(folder, "-q", t).returncode == 1}
    assert stale == {t for t, (p, _) in rules.items() if "data/release/MANIFEST.json" in p}
    assert "results/test5k.json" in stale and "results/bench_world.json" not in stale
    dry = make(folder, "-n", "results").stdout.splitlines()
    assert ".venv/bin/python scripts/test5k.py" in dry and len(dry) == len(stale)
