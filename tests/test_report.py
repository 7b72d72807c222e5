"""The claims table (results/summary.md, README): numbers read from the summary, never typed."""

from __future__ import annotations

import json
from pathlib import Path

from fastslow_lib.course.report import CLAIMS, claims_rows, claims_table
from fastslow_lib.course.results import record

REPO = Path(__file__).resolve().parents[1]


def test_every_claim_reads_the_committed_results():
    summary = json.loads((REPO / "results" / "summary.json").read_text())
    rows = claims_rows(summary, REPO / "results")
    assert len(rows) == len(CLAIMS) >= 10
    for r in rows:  # every notebook has recorded its numbers
        assert r["met"] in (True, False), r
    by_goal = {r["goal"]: r for r in rows}
    slow = summary["02_slow"]["slow_test_R@1"]
    assert f"Slow {slow:.1f}" in by_goal["+15 R@1 or more"]["measured"]


def test_missing_numbers_say_so_and_the_table_renders(tmp_path):
    rows = claims_rows({}, tmp_path)
    assert all(r["met"] is None and "not measured yet" in r["measured"] for r in rows)
    fake = {"02_slow": {"slow_test_R@1": 80.0, "fast_same_queries_R@1": 70.0}}
    table = claims_table(fake, tmp_path)
    assert "R@1 Slow 80.0 vs Fast 70.0 (+10.0) | +15 R@1 or more | **no** |" in table
    assert table.count("\n") == len(CLAIMS) + 1


def test_summary_md_opens_with_the_claims_and_the_course_time(tmp_path):
    record("02_slow", {"slow_test_R@1": 90.0, "fast_same_queries_R@1": 60.0}, results_dir=tmp_path)
    record("course", {"total_s": 600.0, "machine": "test box"}, results_dir=tmp_path)
    md = (tmp_path / "summary.md").read_text()
    assert md.index("## Claims") < md.index("## 02_slow")
    assert "(+30.0) | +15 R@1 or more | yes |" in md
    assert "Whole course (`make course`): 10.0 min on test box." in md



def test_an_itm_baseline_that_does_not_retrieve_is_no_comparison(tmp_path):
    """The captioning-vs-ITM row is met only against an ITM model that retrieves at least as
    well as Fast on the same queries."""
    def ablations(itm_r1: float, loss: float) -> dict:
        row = {"test_R@1": 80.0, "small100_R@1": 70.0, "probe": 80.0}
        return {"results": {"two steps (32, 16, 8), bidirectional": row,
                            "none (32, 32, 32), bidirectional": row,
                            "two steps, forward only": row,
                            "ITM, two steps, one trunk": {**row, "test_R@1": itm_r1,
                                                          "final_matching_loss": loss}}}
    summary = {"02_slow": {"slow_test_R@1": 80.0, "fast_same_queries_R@1": 60.0}}

    def itm_row(itm_r1: float, loss: float) -> dict:
        (tmp_path / "slow_ablations.json").write_text(json.dumps(ablations(itm_r1, loss)))
        rows = claims_rows(summary, tmp_path)
        return next(r for r in rows if r["goal"] == "within 2 points or better")

    weak = itm_row(0.0, 0.52)  # learned to tell pairs apart, not to retrieve
    assert weak["met"] is False and "did not train to retrieve" in weak["measured"]
    assert itm_row(70.0, 0.69)["met"] is False  # its matching loss never left chance
    working = itm_row(79.0, 0.30)
    assert working["met"] is True and "did not train" not in working["measured"]
