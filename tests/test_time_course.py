"""The course runner (``scripts/time_course.py``, behind ``make course``): each notebook's
kernel ends with its notebook, and the run's peak memory is measured."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "time_course.py"


@pytest.fixture(scope="module")
def runner():
    spec = importlib.util.spec_from_file_location("time_course", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_notebook(tmp_path: Path, source: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    return path


def test_each_notebooks_kernel_is_shut_down_when_it_ends(runner, tmp_path):
    path = tiny_notebook(tmp_path, "import os\nprint(os.getpid())")
    nb, seconds, error = runner.run_notebook(path, 120, runner.CURRENT_ENV)
    assert error is None and seconds > 0
    pid = int(nb.cells[0].outputs[0]["text"])
    assert pid != os.getpid()
    if sys.platform == "linux":
        assert not Path(f"/proc/{pid}").exists()


def test_a_failing_cell_is_reported_and_its_kernel_ends_too(runner, tmp_path):
    path = tiny_notebook(tmp_path, "import os\nprint(os.getpid())\nraise ValueError('boom')")
    nb, _, error = runner.run_notebook(path, 120, runner.CURRENT_ENV)
    assert error is not None and "ValueError" in error
    pid = int(nb.cells[0].outputs[0]["text"])
    if sys.platform == "linux":
        assert not Path(f"/proc/{pid}").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc through psutil")
def test_peak_memory_counts_the_processes_under_the_runner(runner):
    with runner.PeakMemory(every=0.05) as alone:
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.5)"], check=True)
    with runner.PeakMemory(every=0.05) as child:
        subprocess.run([sys.executable, "-c",
                        "import time; x = bytearray(400 * 2**20); "
                        "x[::4096] = b'1' * len(x[::4096]); time.sleep(0.8)"], check=True)
    assert alone.peak > 0
    assert child.peak - alone.peak > 300 * 2**20  # the child's 400 MiB, seen from the runner


def test_cell_times_are_reported_slowest_first_and_left_out_of_the_notebook(runner, tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("\n# the slow one\nimport time; time.sleep(0.6)"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = tmp_path / "two.ipynb"
    nbformat.write(nb, path)
    done, _, error = runner.run_notebook(path, 120, runner.CURRENT_ENV)
    assert error is None
    rows = runner.pop_cell_times(done)
    assert [r[0] for r in rows] == [2, 0] and rows[0][1] >= 0.5 > rows[1][1]
    assert rows[0][2] == "# the slow one"
    assert all("execution" not in cell.metadata for cell in done.cells)  # clean diffs
