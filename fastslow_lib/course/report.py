"""The course's claims table: each qualitative claim of the paper beside what this run measured.

:data:`CLAIMS` lists, for every claim the course tests, the notebook that measures it, the
paper's qualitative statement, how the measured number is read from ``results/summary.json``
(what the notebooks record), the goal the course set, and whether it was met. Nothing here is
typed by hand: a claim whose numbers are missing (its notebook has not run) says so.
:func:`claims_table` renders the markdown table that ``results/summary.md`` opens with
(``make course`` writes it, with the total wall time) and that the README shows.

Taught in notebooks/06_demo_and_scale.ipynb.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CLAIMS", "Claim", "claims_rows", "claims_table"]

Summary = Mapping[str, Any]


@dataclass(frozen=True)
class Claim:
    """One claim: ``measure(summary, extra)`` returns ``(text, met)``; ``extra`` holds other
    results files (``slow_ablations``); ``met`` is None when the numbers cannot decide it."""

    notebook: str
    paper: str
    goal: str
    measure: Callable[[Summary, Mapping[str, Any]], tuple[str, bool | None]]


def _get(summary: Summary, section: str, *keys: str) -> Any:
    value: Any = summary[section]
    for key in keys:
        value = value[key]
    return value


def _slow_vs_fast_r1(s: Summary, _: Mapping) -> tuple[str, bool]:
    slow, fast = _get(s, "02_slow", "slow_test_R@1"), _get(s, "02_slow", "fast_same_queries_R@1")
    room = f"; Fast leaves room for at most {100 - fast:+.1f}" if slow > 95 else ""
    return f"R@1 Slow {slow:.1f} vs Fast {fast:.1f} ({slow - fast:+.1f}){room}", slow - fast >= 15


def _slow_vs_fast_probe(s: Summary, _: Mapping) -> tuple[str, bool]:
    slow, fast = _get(s, "02_slow", "slow_probe"), _get(s, "02_slow", "fast_probe")
    pos, fast_pos = _get(s, "02_slow", "slow_probe_position"), _get(s, "02_slow",
                                                                    "fast_probe_position")
    return (f"probe Slow {slow:.1f} (position {pos:.1f}) vs Fast {fast:.1f} (position "
            f"{fast_pos:.1f})"), slow >= 95 and pos >= 90 and slow > fast


def _ablation(name: str) -> Callable[[Mapping], dict]:
    def pick(extra: Mapping) -> dict:
        rows = extra["slow_ablations"]["results"]
        match = [v for k, v in rows.items() if k.startswith(name)]
        if not match:
            raise KeyError(name)
        return match[0]
    return pick


def _upsampling(_: Summary, extra: Mapping) -> tuple[str, bool]:
    full, none = _ablation("two steps (32, 16, 8)")(extra), _ablation("none")(extra)
    a, b = full["small100_R@1"], none["small100_R@1"]
    t = full["test_R@1"] - none["test_R@1"]
    return (f"small objects R@1: two steps {a:.1f} vs coarse only {b:.1f} ({a - b:+.1f}); "
            f"test R@1 {t:+.1f}"), a > b


def _bidirectional(_: Summary, extra: Mapping) -> tuple[str, bool]:
    both, fwd = _ablation("two steps (32, 16, 8)")(extra), _ablation("two steps, forward")(extra)
    a, b = both["test_R@1"], fwd["test_R@1"]
    return f"R@1 bidirectional {a:.1f} vs forward-only {b:.1f} ({a - b:+.1f})", a >= b


def _captioning_vs_itm(s: Summary, extra: Mapping) -> tuple[str, bool]:
    from fastslow_lib.slow.matching import itm_learned

    cap = _ablation("two steps, forward")(extra)
    if "itm" in extra["slow_ablations"].get("not_built", []):
        return (f"R@1 captioning {cap['test_R@1']:.1f}; the ITM baseline has no release model "
                "yet (`make reproduce ONLY=itm`), so this is not measured"), False
    itm = _ablation("ITM")(extra)
    a, b = cap["test_R@1"], itm["test_R@1"]
    fast = _get(s, "02_slow", "fast_same_queries_R@1")
    loss = itm["final_matching_loss"] if "final_matching_loss" in itm else itm["final_loss"]
    if not itm_learned(loss) or b < fast:
        # A baseline that retrieves worse than the dual encoder is no comparison: ITM heads
        # re-rank above their dual encoders where they work (ALBEF, BLIP).
        why = ("its matching loss never left guessing" if not itm_learned(loss)
               else f"it retrieves below Fast's {fast:.1f} on the same queries")
        return (f"R@1 captioning {a:.1f} vs ITM {b:.1f}: the ITM baseline did not train to "
                f"retrieve ({why}; matching loss {loss:.3f}, ln 2 = 0.693 is guessing), so this "
                "is no comparison"), False
    return (f"R@1 captioning {a:.1f} vs ITM {b:.1f} (one trunk each, equal budget; ITM's "
            f"matching loss {loss:.3f} against ln 2 = 0.693, probe {itm['probe']:.1f})"), a >= b - 2


def _distill_r1(s: Summary, _: Mapping) -> tuple[str, bool]:
    d, f = _get(s, "03_distill", "distilled_R@1"), _get(s, "03_distill", "fast_R@1")
    return f"R@1 distilled {d:.1f} vs Fast {f:.1f} ({d - f:+.1f})", d - f >= 3


def _rerank_k10(s: Summary, _: Mapping) -> tuple[str, bool]:
    r = _get(s, "04_rerank", "distilled_Fast_plus_slow10_R@1")
    slow = _get(s, "04_rerank", "slow_all_R@1")
    return f"R@1 distilled Fast + Slow(10) {r:.1f} vs Slow on everything {slow:.1f}", r >= slow - 1


def _rerank_speed(s: Summary, _: Mapping) -> tuple[str, bool]:
    rows = _get(s, "04_rerank", "scale")
    parts = [f"{r['speedup']:.0f}x at N = {r['N']:,} ({r['speedup'] / r['ideal']:.2f} N/K)"
             for r in rows if r["N"] in (1000, 10000)]
    ok = all(r["speedup"] >= 0.6 * r["ideal"] for r in rows if r["N"] in (1000, 10000))
    return "; ".join(parts), ok and len(parts) == 2


def _video_order(s: Summary, _: Mapping) -> tuple[str, bool]:
    gap = _get(s, "05_video", "slow_minus_best_fast_probe")
    slow = _get(s, "05_video", "Slow_probe")
    return f"order probe Slow {slow:.1f}, {gap:+.1f} over the best Fast", gap >= 15


def _video_rerank(s: Summary, _: Mapping) -> tuple[str, bool]:
    k = _get(s, "05_video", "smallest_K_within_1_of_slow")
    r10 = _get(s, "05_video", "rerank_R@1_by_K", "10")
    slow = _get(s, "05_video", "Slow_R@1")
    speed, ideal = _get(s, "05_video", "speedup"), _get(s, "05_video", "ideal_speedup")
    if k is None:
        return f"R@1 Fast + Slow(10) {r10:.1f} vs Slow {slow:.1f}; no K within 1 point", False
    return (f"within 1 point of Slow ({slow:.1f}) from K = {k}, {speed:.0f}x cheaper there "
            f"({speed / ideal:.2f} N/K); K = 10: {r10:.1f}"), speed >= 0.5 * ideal


def _billion(s: Summary, _: Mapping) -> tuple[str, bool]:
    p = _get(s, "06_demo_and_scale", "projected_1e9")
    days = p["slow_all_ms"] / 1e3 / 86400
    return (f"at 10^9 (projected): Fast + Slow(10) {p['fast_ann_slow_ms']:.1f} ms, Slow on "
            f"everything {days:.1f} days per query"), p["fast_ann_slow_ms"] < 1000


CLAIMS: tuple[Claim, ...] = (
    Claim("02_slow", "Slow (cross-attention) is far more accurate than Fast (dual encoder)",
          "+15 R@1 or more", _slow_vs_fast_r1),
    Claim("02_slow", "Slow handles compositions (bindings) that Fast's single vector blurs",
          "Slow probe >= 95, position >= 90, above Fast", _slow_vs_fast_probe),
    Claim("02_slow", "gradual upsampling helps (small objects)", "above coarse-only",
          _upsampling),
    Claim("02_slow", "bidirectional captioning is at least as good as one direction",
          "bidirectional >= forward-only", _bidirectional),
    Claim("02_slow", "the captioning loss is competitive with ITM", "within 2 points or better",
          _captioning_vs_itm),
    Claim("03_distill", "distillation from Slow improves Fast", "+3 R@1 or more", _distill_r1),
    Claim("04_rerank", "Fast + Slow keeps Slow's accuracy at a small K",
          "within 1 point at K = 10", _rerank_k10),
    Claim("04_rerank", "re-ranking costs about K/N of Slow on everything",
          ">= 0.6 N/K at 10^3 and 10^4", _rerank_speed),
    Claim("05_video", "on video, cross-attention handles the order of events",
          "Slow +15 or more on the order probe", _video_order),
    Claim("05_video", "Fast + Slow keeps Slow's accuracy on video at a fraction of the cost",
          "within 1 point at a small K, >= 0.5 N/K there", _video_rerank),
    Claim("06_demo_and_scale", "Fast + Slow scales to billions of items",
          "under 1 s per query at 10^9", _billion),
)


def _extra(results_dir: Path | None) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if results_dir is not None and (results_dir / "slow_ablations.json").is_file():
        extra["slow_ablations"] = json.loads((results_dir / "slow_ablations.json").read_text())
    return extra


def claims_rows(summary: Summary, results_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One dict per claim: notebook, paper, measured, goal, met (``None``: not measured yet)."""
    extra = _extra(Path(results_dir) if results_dir is not None else None)
    rows = []
    for c in CLAIMS:
        try:
            measured, met = c.measure(summary, extra)
        except (KeyError, TypeError, IndexError):
            measured, met = f"not measured yet (run {c.notebook})", None
        rows.append({"notebook": c.notebook, "paper": c.paper, "measured": measured,
                     "goal": c.goal, "met": met})
    return rows


def claims_table(summary: Summary, results_dir: str | Path | None = None) -> str:
    """The markdown table of :data:`CLAIMS` with this run's numbers."""
    lines = ["| notebook | the paper's claim | measured here | goal | met |",
             "| --- | --- | --- | --- | --- |"]
    for r in claims_rows(summary, results_dir):
        met = {True: "yes", False: "**no**", None: "-"}[r["met"]]
        lines.append(f"| {r['notebook']} | {r['paper']} | {r['measured']} | {r['goal']} | {met} |")
    return "\n".join(lines)
