"""The course's claims table: each qualitative claim of the paper beside what was measured.

:data:`CLAIMS` lists, for every claim the course tests, the notebook that measures it, the
paper's qualitative statement, how the measured numbers are read from the results files, the
course's target, and the verdict. Nothing here is typed by hand: a claim whose numbers are
missing (its notebook has not run) says so.

Every recall and probe figure carries its 95% interval, computed from the per-query outcomes
the notebooks record in ``results/outcomes.json`` (and the scripts' files that notebooks 02-04
check before they use them: ``slow_ablations.json``, ``distill_signals.json``,
``warm_student.json``, ``rerank_all_queries.json``): an
exact binomial interval for one model's figure, a paired bootstrap over the same queries for
a difference between two models (:mod:`fastslow_lib.core.intervals`). The verdict follows
:data:`RULE`. Timings and projections carry no interval; their verdict is the point value's.
:func:`claims_table` renders the markdown table that ``results/summary.md`` opens with and
that the README shows.

Taught in notebooks/06_demo_and_scale.ipynb.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fastslow_course.caption_detail import regime_decision
from fastslow_course.claims_5k import (
    Decision,
    bidirectional_5k,
    captioning_vs_itm_5k,
    distill_5k,
    rerank_k10_5k,
    rerank_speed_5k,
    slow_vs_fast_5k,
    upsampling_5k,
)
from fastslow_course.kept_intervals import paired_difference_interval
from fastslow_course.manifest import manifest
from fastslow_lib.core.intervals import (
    Estimate,
    hits_at,
    hits_from_bits,
    proportion_interval,
    smallest_within,
    verdict,
)
from fastslow_lib.core.paths import repo_root
from fastslow_lib.rerank import shortlist_loss_bound

__all__ = ["CLAIMS", "RULE", "Claim", "claims_rows", "claims_table"]

Summary = Mapping[str, Any]
Measure = Callable[[Summary, Mapping[str, Any]], Decision]

RULE = ("A target is **met** when the whole 95% interval lies on its side, **not met** when the "
        "whole interval falls short of it, and **undecided** when the interval straddles it. "
        "Intervals: exact binomial for one model's recall or probe accuracy (queries, or probe "
        "pairs); paired bootstrap over the same queries (10,000 resamples, seed 0) for a "
        "difference between two models; for re-ranking's loss to Slow on everything, also "
        "the upper end of Fast's miss rate at K over every test query, which bounds it from "
        "above (notebook 04). Timings and projections are point values.")
"""The rule that decides every claim's verdict, printed above the table."""


@dataclass(frozen=True)
class Claim:
    """One claim, decided on each protocol: ``measure`` on the 1K protocol (the test split),
    ``measure_5k`` on the 5K protocol (``results/test5k.json``; None where the claim has no
    gallery, e.g. the probe or the clip test).

    Each returns ``(text, verdict, n)``: the verdict one of
    :data:`~fastslow_lib.core.intervals.VERDICTS`, ``n`` the number of queries (or probe
    pairs) it was decided on, None for timings. ``extra`` holds the results files:
    ``outcomes`` (per-query outcomes by section), ``slow_ablations``, ``rerank_all_queries``,
    ``test5k``, ...
    """

    notebook: str
    paper: str
    goal: str
    measure: Measure
    measure_5k: Measure | None = None


def _get(summary: Summary, section: str, *keys: str) -> Any:
    value: Any = summary[section]
    for key in keys:
        value = value[key]
    return value


def _outcomes(extra: Mapping, section: str, name: str) -> np.ndarray:
    return np.asarray(extra["outcomes"][section][name])


def _hits(extra: Mapping, section: str, name: str, k: int = 1) -> np.ndarray:
    return hits_at(_outcomes(extra, section, name).astype(np.int64), k)


def _all(verdicts: Sequence[str]) -> str:
    """Every part must be met; one part not met is enough for "not met"."""
    if all(v == "met" for v in verdicts):
        return "met"
    return "not met" if "not met" in verdicts else "undecided"


def _slow_vs_fast_r1(s: Summary, extra: Mapping) -> Decision:
    """Decided on every test caption when Slow has scored them all
    (``rerank_all_queries.json``), else on notebook 02's subset."""
    full = extra.get("rerank_all_queries")
    if full is not None:
        slow = hits_at(np.asarray(full["slow_all_ranks"], dtype=np.int64), 1)
        fast = hits_at(np.asarray(full["models"]["Fast"]["fast_ranks"], dtype=np.int64), 1)
    else:
        slow, fast = _hits(extra, "02_slow", "slow_test_ranks"), _hits(extra, "02_slow",
                                                                        "fast_test_ranks")
    d = paired_difference_interval(slow, fast)
    a, b = proportion_interval(slow), proportion_interval(fast)
    text = f"R@1 Slow {a} vs Fast {b} ({d.n:,} queries): {d.signed()}"
    if 100 - b.value < 15:   # the measure itself cannot reach the target here
        text += (f"; Fast leaves room for at most {100 - b.value:+.1f}: the target cannot be "
                 f"met on this protocol, the 5K protocol decides it")
    return text, verdict(d, 15), d.n


def _slow_vs_fast_probe(s: Summary, extra: Mapping) -> Decision:
    """Decided on the held-out probe (:func:`fastslow_lib.data.world.held_out_probe`): the
    world's probe was watched while Slow's budget was chosen; its figures are shown beside."""
    def o(name: str) -> np.ndarray:
        return _outcomes(extra, "02_slow", name)

    slow, fast = o("slow_held_out_probe"), o("fast_held_out_probe")
    pos = proportion_interval(o("slow_held_out_probe_position"))
    fast_pos = proportion_interval(o("fast_held_out_probe_position"))
    a, d = proportion_interval(slow), paired_difference_interval(slow, fast)
    per_kind = len(o("slow_held_out_probe_position"))
    text = (f"held-out probe ({per_kind:,} pairs per kind): Slow {a} (position {pos}) vs Fast "
            f"{proportion_interval(fast)} (position {fast_pos}): {d.signed()}; the world's probe, "
            f"watched while choosing Slow's budget: Slow "
            f"{proportion_interval(o('slow_probe'))} (position "
            f"{proportion_interval(o('slow_probe_position'))})")
    return text, _all([verdict(a, 95), verdict(pos, 90), verdict(d, 0, strict=True)]), a.n


def _ablation(name: str) -> Callable[[Mapping], dict]:
    def pick(extra: Mapping) -> dict:
        rows = extra["slow_ablations"]["results"]
        match = [v for k, v in rows.items() if k.startswith(name)]
        if not match:
            raise KeyError(name)
        return match[0]
    return pick


def _row_hits(row: Mapping, protocol: str) -> np.ndarray:
    return hits_at(np.asarray(row["outcomes"][f"{protocol}_ranks"], dtype=np.int64), 1)


def _upsampling(_: Summary, extra: Mapping) -> Decision:
    full, none = _ablation("two steps (32, 16, 8)")(extra), _ablation("none")(extra)
    a, b = _row_hits(full, "small100"), _row_hits(none, "small100")
    d = paired_difference_interval(a, b)
    t = paired_difference_interval(_row_hits(full, "test"), _row_hits(none, "test"))
    return (f"small objects R@1: two steps {proportion_interval(a)} vs coarse only "
            f"{proportion_interval(b)}: {d.signed()}; test R@1 {t.signed()}"), \
        verdict(d, 0, strict=True), d.n


def _bidirectional(_: Summary, extra: Mapping) -> Decision:
    both, fwd = _ablation("two steps (32, 16, 8)")(extra), _ablation("two steps, forward")(extra)
    a, b = _row_hits(both, "test"), _row_hits(fwd, "test")
    d = paired_difference_interval(a, b)
    # the probe is reported beside, not folded into the verdict: the target is on R@1
    probe = ""
    if "probe" in both["outcomes"] and "probe" in fwd["outcomes"]:
        p = paired_difference_interval(np.asarray(both["outcomes"]["probe"]),
                                       np.asarray(fwd["outcomes"]["probe"]))
        probe = f"; probe {p.signed()}"
    return (f"R@1 bidirectional {proportion_interval(a)} vs forward-only "
            f"{proportion_interval(b)}: {d.signed()}{probe}"), verdict(d, 0), d.n


def _captioning_vs_itm(s: Summary, extra: Mapping) -> Decision:
    """Captioning against ITM, where ITM is a working baseline.

    ITM heads are used to re-rank their dual encoder's top K (ALBEF, BLIP): there they must at
    least match Fast's R@1 on the same queries, and there the two objectives are compared
    (``rerank10_ranks`` of ``scripts/slow_ablations.py``; exhaustive ranks for files without
    them). The exhaustive figures are reported beside.
    """
    from fastslow_lib.slow.matching import HARD_NEGATIVES, RANDOM_NEGATIVES, itm_learned

    cap = _ablation("two steps, forward")(extra)
    a = _row_hits(cap, "test")
    if "itm" in extra["slow_ablations"].get("not_built", []):
        return (f"R@1 captioning {proportion_interval(a)}; the ITM baseline has no release "
                "model yet (`make reproduce ONLY=itm`), so this is not measured"), "not met", None
    itm = _ablation("ITM")(extra)
    fast = _row_hits(_ablation("Fast")(extra), "test")
    loss = itm["final_matching_loss"] if "final_matching_loss" in itm else itm["final_loss"]
    k = HARD_NEGATIVES + RANDOM_NEGATIVES
    guessing = f"ln {1 + k} = {np.log(1 + k):.3f} is guessing among the own image and {k} negatives"
    exhaustive = (f"exhaustive R@1 captioning {proportion_interval(a)}, ITM "
                  f"{proportion_interval(_row_hits(itm, 'test'))}, "
                  f"Fast {proportion_interval(fast)}")
    rerank = "rerank10_ranks" in itm["outcomes"] and "rerank10_ranks" in cap["outcomes"]
    protocol = "rerank10" if rerank else "test"
    where = "re-ranking Fast's top 10" if rerank else "exhaustive"
    b, a = _row_hits(itm, protocol), _row_hits(cap, protocol)
    vs_fast = paired_difference_interval(b, fast)
    if not itm_learned(loss) or verdict(vs_fast, 0) == "not met":
        # A baseline that retrieves worse than the dual encoder is no comparison: ITM heads
        # re-rank above their dual encoders where they work (ALBEF, BLIP).
        why = ("its matching loss never left guessing" if not itm_learned(loss)
               else f"{where}, it retrieves below Fast on the same queries, {vs_fast.signed()}")
        return (f"{exhaustive}: the ITM baseline did not train to retrieve ({why}; matching "
                f"loss {loss:.3f}, {guessing}), so this is no comparison"), "not met", vs_fast.n
    d = paired_difference_interval(a, b)
    return (f"{where}: R@1 captioning {proportion_interval(a)} vs ITM {proportion_interval(b)}: "
            f"{d.signed()}; ITM {vs_fast.signed()} over Fast there ({exhaustive}; one trunk each, "
            f"ITM the forward-only captioner plus its matching epochs; its matching loss "
            f"{loss:.3f}, {guessing})"), verdict(d, -2), d.n


def _distill_r1(s: Summary, extra: Mapping) -> Decision:
    dist = _hits(extra, "03_distill", "distilled_test_ranks")
    fast = _hits(extra, "03_distill", "fast_test_ranks")
    d = paired_difference_interval(dist, fast)
    text = (f"R@1 distilled {proportion_interval(dist)} vs Fast {proportion_interval(fast)} "
            f"({d.n:,} queries): {d.signed()}")
    verdicts = [verdict(d, 3)]
    signals = extra.get("distill_signals", {}).get("results", {})
    if "fast_ranked" in signals:  # signal (b) of notebook 03, scored by scripts/distill_signals.py
        base = hits_at(np.asarray(signals["fast"]["outcomes"]["test_ranks"]), 1)
        b = paired_difference_interval(
            hits_at(np.asarray(signals["fast_ranked"]["outcomes"]["test_ranks"]), 1), base)
        text += f"; signal (b), the teacher's ranking of hard negatives: {b.signed()}"
        verdicts.append(verdict(b, 3))
    warm = extra.get("warm_student")
    if warm is not None:  # scripts/trial_warm_student.py: each signal added to the release Fast
        parts = []
        for arm in WARM_SIGNALS:
            if f"{arm}_seed{warm['seeds'][0]}" not in warm["results"]:
                continue
            per_seed = [_warm_gain(warm, arm, seed) for seed in warm["seeds"]]
            parts.append(f"{WARM_SIGNALS[arm]} " + " / ".join(g.signed() for g in per_seed))
            seed_verdicts = {verdict(g, 3) for g in per_seed}   # a signal meets it at every seed
            verdicts.append(seed_verdicts.pop() if len(seed_verdicts) == 1 else "undecided")
        text += (f"; added to the release Fast, minus InfoNCE alone at equal budget (seeds "
                 f"{' / '.join(map(str, warm['seeds']))}): " + ", ".join(parts))
    regimes = _regimes(extra, "1k")
    if regimes is not None:
        text += "; " + regimes[0]
        verdicts.append(regimes[1])
    for v in ("met", "undecided"):  # the best signal decides
        if v in verdicts:
            return text, v, d.n
    return text, "not met", d.n


def _regimes(extra: Mapping, protocol: str) -> tuple[str, str, int] | None:
    """The part of the distillation row where captions leave things out
    (``results/caption_detail.json``), if measured."""
    record = extra.get("caption_detail")
    return (regime_decision(record, protocol, seeds=extra.get("caption_detail_seeds"))
            if record is not None else None)


#: The teacher's arms of ``scripts/trial_warm_student.py`` in the claims row (its controls are
#: in notebook 03).
WARM_SIGNALS = {"continued_a": "(a)", "continued_b": "(b)", "continued_a_soft": "(a) soft",
                "continued_b_soft": "(b) soft"}


def _warm_gain(warm: Mapping, arm: str, seed: int) -> Estimate:
    hits = [hits_at(np.asarray(warm["results"][f"{name}_seed{seed}"]["test_ranks"],
                               dtype=np.int64), 1) for name in (arm, "continued")]
    return paired_difference_interval(*hits)


def _rerank_k10(s: Summary, extra: Mapping) -> Decision:
    r = _hits(extra, "04_rerank", "distilled_Fast_plus_slow10_ranks")
    slow = _hits(extra, "04_rerank", "slow_all_ranks")
    d = paired_difference_interval(r, slow)
    # the paper's pipeline (the distilled student) decides; plain Fast's short list beside it
    plain = ""
    if "Fast_plus_slow10_ranks" in extra["outcomes"]["04_rerank"]:
        f = _hits(extra, "04_rerank", "Fast_plus_slow10_ranks")
        plain = (f"; plain Fast + Slow(10) {proportion_interval(f)}: "
                 f"{paired_difference_interval(f, slow).signed()}")
    text = (f"R@1 distilled Fast + Slow(10) {proportion_interval(r)} vs Slow on everything "
            f"{proportion_interval(slow)}: {d.signed()}{plain}")
    # On every test query: re-ranking loses at most Fast's miss rate at K (notebook 04,
    # fastslow_lib.rerank.shortlist_loss_bound); a bound below 1 point decides "met".
    if "distilled_Fast_all_test_ranks" not in extra["outcomes"]["04_rerank"]:
        return text, verdict(d, -1), d.n
    ranks = _outcomes(extra, "04_rerank", "distilled_Fast_all_test_ranks").astype(np.int64)
    k, misses = shortlist_loss_bound(ranks, [10], margin=1.0)
    text += (f"; on all {misses[10].n:,} test queries, re-ranking distilled Fast's top 10 loses "
             f"at most its miss rate there, {misses[10]}")
    full = extra.get("rerank_all_queries")
    if full is not None:   # scripts/rerank_all_queries.py: Slow on every test query (notebook 04)
        slow_all = hits_at(np.asarray(full["slow_all_ranks"], dtype=np.int64), 1)
        hits = hits_from_bits(full["models"]["distilled Fast"]["reranked_hits"]["10"])
        d_all = paired_difference_interval(hits, slow_all)
        text += f", and paired with Slow on all of them, {d_all.signed()}"
        return text, verdict(d_all, -1), d_all.n
    return (text, "met", misses[10].n) if k == 10 else (text, verdict(d, -1), d.n)


def _point(ok: bool) -> str:
    return "met" if ok else "not met"


def _rerank_speed(s: Summary, _: Mapping) -> Decision:
    rows = _get(s, "04_rerank", "scale")
    parts = [f"{r['speedup']:.0f}x at N = {r['N']:,} ({r['speedup'] / r['ideal']:.2f} N/K)"
             for r in rows if r["N"] in (1000, 10000)]
    ok = all(r["speedup"] >= 0.6 * r["ideal"] for r in rows if r["N"] in (1000, 10000))
    return "; ".join(parts), _point(ok and len(parts) == 2), None


#: The GPU re-ranking benchmarks (``scripts/gpu_figures.sh``): query blocks of 16 and of 200.
GPU_RERANK = ("bench_rerank_gpu_qb16", "bench_rerank_gpu_qb200")


def _rerank_speed_gpu(_: Summary, extra: Mapping) -> Decision:
    """The speed claim on a GPU, from the committed GPU benchmarks, with their provenance: the
    card, the date and commit where the file has them, and whether it timed today's release
    models (``models``' sha256, where recorded)."""
    runs = [extra[n] for n in GPU_RERANK if n in extra]
    if not runs:
        raise KeyError("bench_rerank_gpu")
    release = manifest(repo_root() / "data" / "release")["models"]
    parts, ok = [], True
    for r in runs:
        rows = [row for row in r["rows"] if row["N"] in (1000, 10000)]
        ok &= len(rows) == 2 and all(row["speedup"] >= 0.6 * row["ideal"] for row in rows)
        models = r.get("models")
        timed = ("today's release models" if models and all(
            release[n]["sha256"]["model.safetensors"] == v for n, v in models.items())
            else "other release models" if models else "release models not recorded")
        when = f"{r['date']}, commit {r['commit']}" if "date" in r else "undated"
        parts.append(f"{r['device']}, {r['query_block']} queries per call ({when}; {timed}): "
                     + ", ".join(f"{row['speedup'] / row['ideal']:.2f} N/K at N = {row['N']:,}"
                                 for row in rows))
    return "; ".join(parts), _point(ok), None


def _video_order(s: Summary, extra: Mapping) -> Decision:
    best = _get(s, "05_video", "best_fast")
    slow = _outcomes(extra, "05_video", "Slow_probe")
    d = paired_difference_interval(slow, _outcomes(extra, "05_video", f"{best}_probe"))
    return (f"order probe Slow {proportion_interval(slow)}, {d.signed()} over the best Fast "
            f"({best})"), verdict(d, 15), d.n


def _video_rerank(s: Summary, extra: Mapping) -> Decision:
    slow = _hits(extra, "05_video", "Slow_ranks")
    by_k = {int(name.rsplit("K", 1)[1]): _hits(extra, "05_video", name)
            for name in extra["outcomes"]["05_video"] if name.startswith("rerank_ranks_K")}
    if not by_k:
        raise KeyError("rerank_ranks_K")
    k, diffs = smallest_within(by_k, slow, 1.0, interval=paired_difference_interval)
    if k is None:
        k10 = diffs.get(10) or next(iter(diffs.values()))
        return (f"R@1 Slow {proportion_interval(slow)}; no K within 1 point (K = 10: "
                f"{k10.signed()})"), "not met", k10.n
    speed, ideal = _get(s, "05_video", "speedup"), _get(s, "05_video", "ideal_speedup")
    timed = _get(s, "05_video", "speedup_K")
    if timed != k:
        return (f"within 1 point of Slow {proportion_interval(slow)} from K = {k} "
                f"({diffs[k].signed()}), but the notebook timed K = {timed}"), "undecided", \
            diffs[k].n
    return (f"within 1 point of Slow {proportion_interval(slow)} from K = {k} "
            f"({diffs[k].signed()}), {speed:.0f}x cheaper there ({speed / ideal:.2f} N/K)"), \
        _point(speed >= 0.5 * ideal), diffs[k].n


def _billion(s: Summary, _: Mapping) -> Decision:
    p = _get(s, "06_demo_and_scale", "projected_1e9")
    days = p["slow_all_ms"] / 1e3 / 86400
    if "fast_ann_slow_recompute_ms" not in p:   # Slow's image cache alone would not fit there
        raise KeyError("fast_ann_slow_recompute_ms")
    ms = p["fast_ann_slow_recompute_ms"]
    return (f"at 10^9 (projected): Fast + Slow(10) {ms:.1f} ms recomputing Slow's image side for "
            f"the 10 candidates ({p['fast_ann_slow_ms']:.1f} ms with a cache that would not fit), "
            f"Slow on everything {days:.1f} days per query"), _point(ms < 1000), None


CLAIMS: tuple[Claim, ...] = (
    Claim("02_slow", "Slow (cross-attention) is far more accurate than Fast (dual encoder)",
          "+15 R@1 or more", _slow_vs_fast_r1, slow_vs_fast_5k),
    Claim("02_slow", "Slow handles compositions (bindings) that Fast's single vector blurs",
          "Slow probe >= 95, position >= 90, above Fast", _slow_vs_fast_probe),
    Claim("02_slow", "gradual upsampling helps (small objects)", "above coarse-only",
          _upsampling, upsampling_5k),
    Claim("02_slow", "bidirectional captioning is at least as good as one direction",
          "bidirectional >= forward-only", _bidirectional, bidirectional_5k),
    Claim("02_slow", "the captioning loss is competitive with ITM", "within 2 points or better",
          _captioning_vs_itm, captioning_vs_itm_5k),
    Claim("03_distill", "distillation from Slow improves Fast", "+3 R@1 or more", _distill_r1,
          distill_5k),
    Claim("04_rerank", "Fast + Slow keeps Slow's accuracy at a small K",
          "within 1 point at K = 10", _rerank_k10, rerank_k10_5k),
    Claim("04_rerank", "re-ranking costs about K/N of Slow on everything, on this run's CPU",
          ">= 0.6 N/K at 10^3 and 10^4", _rerank_speed, rerank_speed_5k),
    Claim("04_rerank", "re-ranking costs about K/N of Slow on everything, on a GPU",
          ">= 0.6 N/K at 10^3 and 10^4", _rerank_speed_gpu),
    Claim("05_video", "on video, cross-attention handles the order of events",
          "Slow +15 or more on the order probe", _video_order),
    Claim("05_video", "Fast + Slow keeps Slow's accuracy on video at a fraction of the cost",
          "within 1 point at a small K, >= 0.5 N/K there", _video_rerank),
    Claim("06_demo_and_scale", "Fast + Slow scales to billions of items",
          "under 1 s per query at 10^9", _billion),
)


def _extra(results_dir: Path | None) -> dict[str, Any]:
    extra: dict[str, Any] = {"outcomes": {}}
    if results_dir is None:
        return extra
    for name, key in (("slow_ablations.json", "slow_ablations"), ("outcomes.json", "outcomes"),
                      ("distill_signals.json", "distill_signals"),
                      ("rerank_all_queries.json", "rerank_all_queries"),
                      ("warm_student.json", "warm_student"), ("test5k.json", "test5k"),
                      ("caption_detail.json", "caption_detail"),
                      ("caption_detail_seeds.json", "caption_detail_seeds"),
                      *((f"{n}.json", n) for n in GPU_RERANK)):
        if (results_dir / name).is_file():
            extra[key] = json.loads((results_dir / name).read_text())
    return extra


def claims_rows(summary: Summary, results_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One dict per claim: notebook, paper, goal, and per protocol what was measured, the
    verdict and the number of queries it was decided on: ``measured``, ``met``, ``queries``
    (the 1K protocol) and ``measured_5k``, ``met_5k``, ``queries_5k`` (the 5K protocol; a
    verdict ``None``: not measured yet, or no gallery to measure it on)."""
    extra = _extra(Path(results_dir) if results_dir is not None else None)
    rows = []
    for c in CLAIMS:
        row: dict[str, Any] = {"notebook": c.notebook, "paper": c.paper, "goal": c.goal}
        for suffix, measure in (("", c.measure), ("_5k", c.measure_5k)):
            if measure is None:
                row.update({f"measured{suffix}": NO_GALLERY, f"met{suffix}": None,
                            f"queries{suffix}": None})
                continue
            try:
                measured, met, n = measure(summary, extra)
            except (KeyError, TypeError, IndexError):
                where = "scripts/test5k.py" if suffix else c.notebook
                measured, met, n = f"not measured yet (run {where})", None, None
            row.update({f"measured{suffix}": measured, f"met{suffix}": met,
                        f"queries{suffix}": n})
        rows.append(row)
    return rows


#: The 5K column of a claim that no image gallery decides (a probe of pairs, the clip test, a
#: projection): one measurement serves both protocols.
NO_GALLERY = "(one measurement for both protocols: a probe, the clip test or a projection)"

_MET = {"met": "yes", "not met": "**no**", "undecided": "undecided", None: "-"}


def claims_table(summary: Summary, results_dir: str | Path | None = None) -> str:
    """The markdown table of :data:`CLAIMS` with this run's numbers and 95% intervals, the
    1K and the 5K protocol side by side."""
    lines = ["| notebook | the paper's claim | 1K protocol: measured [95% interval] | met "
             "| 5K protocol: measured [95% interval] | met | the course's target |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in claims_rows(summary, results_dir):
        lines.append(f"| {r['notebook']} | {r['paper']} | {r['measured']} | {_MET[r['met']]} | "
                     f"{r['measured_5k']} | {_MET[r['met_5k']]} | {r['goal']} |")
    return "\n".join(lines)
