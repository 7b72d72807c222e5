"""The prose checker: numbers in notebook text must be printed or asserted by a code cell."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from fastslow_course.prose import check_notebook, numbers_in_prose

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _notebook(tmp_path: Path, cells: list, exceptions: dict | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    for kind, text, *outputs in cells:
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cell = nbformat.v4.new_code_cell(text)
            cell.outputs = [nbformat.v4.new_output("stream", text=o) for o in outputs]
            nb.cells.append(cell)
    path = tmp_path / "07_test.ipynb"
    nbformat.write(nb, path)
    if exceptions is not None:
        (tmp_path / "prose_exceptions.json").write_text(json.dumps(exceptions))
    return path


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_number_in_the_course_prose_is_printed_or_asserted(path):
    bad = check_notebook(path)
    assert not bad, "\n".join(map(str, bad))


def test_a_typed_number_is_found_and_a_printed_one_is_not(tmp_path):
    path = _notebook(tmp_path, [
        ("md", "## 1. The world\nThe world has 4 shapes and R@1 reaches 83.5 on 1,000 images."),
        ("code", "print(world)", "shapes: 3\nR@1 83.48\nimages 1000"),
    ])
    assert [u.number for u in check_notebook(path)] == ["4"]


def test_backing_must_come_from_the_same_section_except_in_the_summary(tmp_path):
    path = _notebook(tmp_path, [
        ("md", "## 1. Measure"), ("code", "print(r)", "R@1 = 71.2"),
        ("md", "## 2. Elsewhere\nR@1 was 71.2."),
        ("md", "## Summary\nR@1 was 71.2."),
    ])
    bad = check_notebook(path)
    assert [(u.section, u.number) for u in bad] == [("elsewhere", "71.2")]


def test_exceptions_need_a_reason(tmp_path):
    cells = [("md", "## 1. Paper\nThe paper reports 72.5.")]
    assert not check_notebook(_notebook(tmp_path, cells, {"07_test": {"72.5": "the paper's"}}))
    with pytest.raises(ValueError, match="need a reason"):
        check_notebook(_notebook(tmp_path, cells, {"07_test": {"72.5": " "}}))


def test_code_math_links_numbering_years_and_references_are_not_prose_numbers():
    text = ("## 3. Title\n1. first item with `K = 10` and $\\tau = 0.07$\n"
            "see notebook 02 and 02_slow, section 7, [a link](x/12.png), CVPR 2021, at 10^9 "
            "items, R@1 and float32 <!-- 99 -->")
    assert numbers_in_prose(text) == []
    assert [n for n, _ in numbers_in_prose("a 15-token caption costs 2.5x, +14.5 points")] == \
        ["15", "2.5", "14.5"]


_WALL_CLOCK = re.compile(
    r"assert[^\n#]*\b\w*(seconds|elapsed|_s|_ms|ms_per_query|wall|minutes)\w*[\"'\])]*\s*"
    r"[<>]=?\s*[\d.]+")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_notebook_asserts_an_absolute_wall_clock_threshold(path):
    """Timing goals are ratios measured side by side (benchmarks/); a notebook prints them."""
    cells = json.loads(path.read_text())["cells"]
    found = [m.group(0) for c in cells if c["cell_type"] == "code"
             for m in _WALL_CLOCK.finditer("".join(c["source"]))]
    assert not found, found


def test_the_wall_clock_pattern_finds_what_it_should():
    assert _WALL_CLOCK.search('assert history["seconds"] < 300')
    assert _WALL_CLOCK.search("assert elapsed < 600, elapsed")
    assert not _WALL_CLOCK.search("assert speedup >= 0.5 * limit")
