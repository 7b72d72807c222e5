"""The method runs without the course's tooling: examples/rerank.py with fastslow_course blocked.

import-linter keeps the split statically (pyproject.toml, contract ``method-apart``); this runs
the method end to end (registry, training, index, Slow gallery, re-ranking) in a fresh
interpreter in which importing the course's tooling, or the notebook tools it uses, fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCKED = ("fastslow_course", "ipywidgets", "IPython", "nbformat", "nbclient")


def run_blocked(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    block = "; ".join(f"sys.modules[{name!r}] = None" for name in BLOCKED)
    env = {**os.environ, "FASTSLOW_DATA": str(tmp_path / "data"), "FASTSLOW_PROGRESS": "0",
           "PYTHONPATH": ""}
    return subprocess.run([sys.executable, "-c", f"import sys; {block}; {code}"], cwd=tmp_path,
                          env=env, text=True, capture_output=True, timeout=600)


def test_the_block_itself_works(tmp_path):
    out = run_blocked("import fastslow_course", tmp_path)
    assert out.returncode != 0 and "fastslow_course" in out.stderr


def test_fast_and_slow_rerank_without_the_course(tmp_path):
    example = ROOT / "examples" / "rerank.py"
    code = (f"import runpy; sys.argv = ['rerank.py', '--queries', '20', '--k', '5']; "
            f"runpy.run_path({str(example)!r}, run_name='__main__')")
    out = run_blocked(code, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "20 queries" in out.stdout and "Fast + Slow(5)" in out.stdout, out.stdout
    assert not any(name in out.stderr for name in BLOCKED), out.stderr[-3000:]
