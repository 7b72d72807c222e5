"""One run behind every committed number: the committed notebooks' outputs and results/.

Each notebook prints the fingerprint of the figures it records
(:func:`fastslow_course.results.section_fingerprint`); the README's generated blocks are rendered
from results/ (``tests/test_readme.py`` keeps them in step). A notebook re-run without
committing results/, or results/ refreshed from another run than the notebooks' outputs,
fails here.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from fastslow_course.results import record, record_outcomes, section_fingerprint
from fastslow_lib.core.paths import repo_root

ROOT = repo_root()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PRINTED = re.compile(r"fingerprint of this run's figures: ([0-9a-f]{12})")


def printed_fingerprints(path: Path) -> list[str]:
    """Every fingerprint a committed notebook's outputs print."""
    out = []
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        for o in cell.get("outputs", []):
            text = o.get("text") or "".join(o.get("data", {}).get("text/plain", ""))
            out += PRINTED.findall("".join(text))
    return out


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_committed_notebook_and_results_come_from_one_run(notebook):
    printed = printed_fingerprints(notebook)
    assert len(printed) == 1, (f"{notebook.name} prints {len(printed)} fingerprints of its "
                               f"figures; expected one (its record cell)")
    assert printed[0] == section_fingerprint(notebook.stem), (
        f"{notebook.name}'s committed outputs and results/summary.json (section "
        f"{notebook.stem!r}) come from different runs: the notebook printed {printed[0]}, "
        f"results/ hold {section_fingerprint(notebook.stem)}; run `make notebooks` and commit "
        f"the notebooks, results/ and README together")


def test_the_fingerprint_follows_every_figure_and_outcome(tmp_path):
    shutil.copy(ROOT / "results" / "summary.json", tmp_path / "summary.json")
    before = section_fingerprint("04_rerank", tmp_path)
    assert before == section_fingerprint("04_rerank", tmp_path)  # deterministic
    other = section_fingerprint("05_video", tmp_path)
    record("04_rerank", {"Fast_R@1": 12.5}, results_dir=tmp_path)
    changed = section_fingerprint("04_rerank", tmp_path)
    assert changed != before
    assert section_fingerprint("05_video", tmp_path) == other  # other sections untouched
    record_outcomes("04_rerank", {"slow_all_ranks": [1, 2, 3]}, results_dir=tmp_path)
    assert section_fingerprint("04_rerank", tmp_path) != changed


def test_a_missing_section_is_named(tmp_path):
    record("00_data", {"x": 1}, results_dir=tmp_path)
    with pytest.raises(KeyError, match="no section '09_nothing'.*sections: \\['00_data'\\]"):
        section_fingerprint("09_nothing", tmp_path)
