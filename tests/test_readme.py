"""The README's generated blocks (``make readme``): filled from results/, never stale."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fastslow_course.readme import fill_blocks, generated_blocks, update_readme
from fastslow_course.results import render_markdown

REPO = Path(__file__).resolve().parents[1]


def test_the_committed_readme_is_up_to_date_with_the_results():
    assert update_readme(REPO / "README.md", REPO / "results", check=True), (
        "README.md's generated blocks are stale: run `make readme`")


def test_the_readmes_claims_rows_are_those_of_summary_md():
    readme = (REPO / "README.md").read_text()
    summary_md = (REPO / "results" / "summary.md").read_text()
    rows = [line for line in generated_blocks(REPO / "results")["claims"].splitlines()
            if line.startswith("| 0")]
    assert rows and all(row in readme and row in summary_md for row in rows)


def test_a_stale_block_is_found_and_rewritten(tmp_path):
    readme = tmp_path / "README.md"
    shutil.copy(REPO / "README.md", readme)
    results = tmp_path / "results"
    shutil.copytree(REPO / "results", results, ignore=shutil.ignore_patterns("executed"))
    text = readme.read_text()
    readme.write_text(text.replace("| 02_slow |", "| 02_slow (typed by hand) |", 1))
    assert not update_readme(readme, results, check=True)
    assert update_readme(readme, results) is False and readme.read_text() == text
    assert update_readme(readme, results, check=True)
    assert "## Claims" in render_markdown({}, results)


def test_a_missing_or_repeated_marker_is_a_clear_error():
    with pytest.raises(ValueError, match="exactly one block.*claims"):
        fill_blocks("no markers here", {"claims": "x"})
    block = "<!-- begin generated: claims (make readme) -->\nx\n<!-- end generated: claims -->"
    with pytest.raises(ValueError, match="exactly one block"):
        fill_blocks(block + "\n" + block, {"claims": "y"})
    assert fill_blocks(block, {"claims": "y"}).count("\ny\n") == 1


def test_a_reproduce_check_against_superseded_weights_says_so(tmp_path):
    """A check made before its model was retrained is marked, not shown as today's verdict."""
    import json

    from fastslow_course.release import manifest
    from fastslow_lib.core.checkpoint import WEIGHTS_NAME
    from fastslow_lib.core.paths import repo_root

    results = tmp_path / "results"
    shutil.copytree(repo_root() / "results", results, ignore=shutil.ignore_patterns("executed"))
    models = manifest(repo_root() / "data" / "release")["models"]
    now = models["fast"]["sha256"][WEIGHTS_NAME]
    base = {"model": "fast", "checks": {"val_R@1": {"committed": 86.1, "reproduced": 86.0,
                                                    "queries": 1000, "interval": [83.8, 88.2],
                                                    "within": True}},
            "within": True, "training_seconds": 60.0, "committed_training_seconds": 60.0,
            "committed_machine": "m", "machine": "m", "date": "2026-12-06"}
    for sha, superseded in ((now, False), ("0" * 64, True)):
        (results / "reproduce_check.json").write_text(
            json.dumps({"checks": [{**base, "committed_sha256": sha}]}))
        line = generated_blocks(results)["release"].splitlines()[-1]
        assert line.startswith("- `fast`") and "**within**" in line, line
        assert ("earlier release" in line and "since retrained" in line) == superseded, line


def test_a_reproduce_check_with_seed_runs_shows_the_recipe_tolerance(tmp_path):
    """With seed runs the verdict is the prediction interval's; the sampling verdict is shown."""
    import json

    from fastslow_lib.core.paths import repo_root

    results = tmp_path / "results"
    shutil.copytree(repo_root() / "results", results, ignore=shutil.ignore_patterns("executed"))
    check = {"committed": 53.8, "reproduced": 61.0, "queries": 500, "interval": [49.32, 58.24],
             "within": True, "within_sampling": False, "seed_interval": [40.1, 66.9]}
    record = {"model": "video_fast_mean", "checks": {"val_R@1": check}, "within": True,
              "seed_runs": {"1": {"val_R@1": 50.0}, "2": {"val_R@1": 57.0}},
              "training_seconds": 60.0, "committed_training_seconds": 60.0,
              "committed_machine": "m", "machine": "m", "date": "2026-12-06"}
    (results / "reproduce_check.json").write_text(json.dumps({"checks": [record]}))
    line = generated_blocks(results)["release"].splitlines()[-1]
    assert "the same recipe at seeds 1: 50, 2: 57" in line, line
    assert ("prediction interval of the recipe's runs [40.1, 66.9] (sampling interval: "
            "outside): **within**") in line, line
