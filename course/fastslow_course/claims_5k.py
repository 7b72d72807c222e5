"""The claims table's 5K column: each claim decided on the 5K protocol.

The 5K protocol (:func:`fastslow_lib.data.protocols.load_test5k`: 5,000 images with a binding
twin and a one-object neighbour of every test image, 25,000 queries) is measured once by
``scripts/test5k.py`` into ``results/test5k.json``. Each function here reads that file (as
``extra["test5k"]``) and returns ``(text, verdict, n)`` for one claim of
:data:`fastslow_course.report.CLAIMS`: the figures with their 95% intervals, the verdict by
the course's rule, and the number of queries it was decided on (None for a timing). Each is
decided on the largest query set the file holds for it: Fast on every query, Slow on everything
on its exhaustive subset, the Slow-type models on Fast's short lists of the larger subset.

Taught in notebooks/04_rerank.ipynb (section 8); notebooks 02 and 03 print the same decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fastslow_course.caption_detail import regime_decision
from fastslow_course.kept_intervals import paired_difference_interval
from fastslow_lib.core.intervals import (
    hits_at,
    hits_from_bits,
    proportion_interval,
    smallest_within,
    verdict,
)
from fastslow_lib.rerank import shortlist_loss_bound

__all__ = ["STUDENTS_5K", "Decision", "bidirectional_5k", "captioning_vs_itm_5k", "distill_5k",
           "rerank_k10_5k", "rerank_speed_5k", "slow_vs_fast_5k", "upsampling_5k"]

Summary = Mapping[str, Any]
#: ``(text, verdict, n)``: what was measured, the verdict, the queries it was decided on.
Decision = tuple[str, str, "int | None"]

def _t5(extra: Mapping) -> Mapping[str, Any]:
    return extra["test5k"]


def _ranks5(entry: Mapping) -> np.ndarray:
    return np.asarray(entry["ranks"], dtype=np.int64)


def _ceiling5(t5: Mapping) -> str:
    p = t5["protocol"]
    return (f"ceiling {p['ceiling_R@1']:.1f} ({p['true_of_one_image']:.1f}% of captions true of "
            f"one image only)")


def slow_vs_fast_5k(_: Summary, extra: Mapping) -> Decision:
    """Slow on everything against Fast on the same queries; Fast on all 25,000 beside it."""
    t5 = _t5(extra)
    ids = np.asarray(t5["slow_query_ids"])
    slow = hits_at(_ranks5(t5["slow_all"]), 1)
    fast_all = _ranks5(t5["fast"]["fast"])
    d = paired_difference_interval(slow, hits_at(fast_all[ids], 1))
    a = proportion_interval(slow)
    below = "below" if a.high < t5["protocol"]["ceiling_R@1"] else "not below"
    consistent = (f"consistent@1 (any true image first) Slow "
                  f"{proportion_interval(hits_from_bits(t5['slow_all']['consistent_bits']))}, Fast "
                  f"{proportion_interval(hits_from_bits(t5['fast']['fast']['consistent_bits'])[ids])}"
                  if "consistent_bits" in t5["slow_all"] else "")
    return (f"R@1 Slow {a} vs Fast {proportion_interval(hits_at(fast_all[ids], 1))} on the same "
            f"{d.n:,} queries: {d.signed()}; Fast on all {len(fast_all):,}: "
            f"{proportion_interval(hits_at(fast_all, 1))}; Slow's interval {below} the "
            f"{_ceiling5(t5)}" + (f"; {consistent}" if consistent else "")), verdict(d, 15), d.n


def _shortlist_pair(t5: Mapping, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
    rows = t5["shortlists"]
    return (hits_at(_ranks5(rows[a]["fast"]), 1), hits_at(_ranks5(rows[b]["fast"]), 1))


def _where5(t5: Mapping) -> str:
    return f"re-scoring Fast's top {t5['shortlist_k']}"


def upsampling_5k(_: Summary, extra: Mapping) -> Decision:
    t5 = _t5(extra)
    a, b = _shortlist_pair(t5, "slow", "slow_coarse_only")
    d = paired_difference_interval(a, b)
    return (f"{_where5(t5)}, R@1 two steps {proportion_interval(a)} vs coarse only "
            f"{proportion_interval(b)}: {d.signed()}"), verdict(d, 0, strict=True), d.n


def bidirectional_5k(_: Summary, extra: Mapping) -> Decision:
    t5 = _t5(extra)
    a, b = _shortlist_pair(t5, "slow", "slow_forward_only")
    d = paired_difference_interval(a, b)
    return (f"{_where5(t5)}, R@1 bidirectional {proportion_interval(a)} vs forward-only "
            f"{proportion_interval(b)}: {d.signed()}"), verdict(d, 0), d.n


def captioning_vs_itm_5k(_: Summary, extra: Mapping) -> Decision:
    """The forward-only captioner against ITM (its trunk plus matching epochs), both
    re-scoring Fast's short list; ITM must keep at least Fast's R@1 there to be a baseline."""
    t5 = _t5(extra)
    if "itm" not in t5["shortlists"]:
        return "the ITM baseline has no release model (`make reproduce ONLY=itm`)", \
            "not met", None
    cap, itm = _shortlist_pair(t5, "slow_forward_only", "itm")
    fast = hits_at(_ranks5(t5["fast"]["fast"])[np.asarray(t5["shortlist_query_ids"])], 1)
    vs_fast = paired_difference_interval(itm, fast)
    if verdict(vs_fast, 0) == "not met":
        return (f"{_where5(t5)}, ITM retrieves below Fast on the same queries, "
                f"{vs_fast.signed()}: no comparison"), "not met", vs_fast.n
    d = paired_difference_interval(cap, itm)
    return (f"{_where5(t5)}, R@1 captioning {proportion_interval(cap)} vs ITM "
            f"{proportion_interval(itm)}: {d.signed()}; ITM {vs_fast.signed()} over Fast"), \
        verdict(d, -2), d.n


#: The Fast-type release models of notebook 03 the 5K row compares with Fast.
STUDENTS_5K: dict[str, tuple[str, bool]] = {
    "fast_distilled": ("signal (a)", True), "fast_ranked": ("signal (b)", True),
    "fast_hard_negatives": ("hard negatives, no teacher", False)}


def distill_5k(_: Summary, extra: Mapping) -> Decision:
    """Every release student against the release Fast, paired on every query; the best
    teacher's signal decides (the control without a teacher is shown beside)."""
    t5 = _t5(extra)
    fast = hits_at(_ranks5(t5["fast"]["fast"]), 1)
    parts, verdicts, n = [], [], len(fast)
    for name, (label, teacher) in STUDENTS_5K.items():
        if name not in t5["fast"]:
            continue
        d = paired_difference_interval(hits_at(_ranks5(t5["fast"][name]), 1), fast)
        parts.append(f"{label} {d.signed()}")
        if teacher:
            verdicts.append(verdict(d, 3))
    text = f"R@1 minus Fast {proportion_interval(fast)} on all {n:,} queries: " + ", ".join(parts)
    record = extra.get("caption_detail")
    regimes = regime_decision(record, "5k") if record is not None else None
    if regimes is not None:
        text += "; " + regimes[0]
        verdicts.append(regimes[1])
    for v in ("met", "undecided"):
        if v in verdicts:
            return text, v, n
    return text, "not met", n


def rerank_k10_5k(_: Summary, extra: Mapping) -> Decision:
    """Paired with Slow on everything where Slow scored everything; Fast's miss rate at 10 on
    every query bounds the loss (a bound below 1 point decides "met" on all of them)."""
    t5 = _t5(extra)
    student = t5["student"]
    slow = hits_at(_ranks5(t5["slow_all"]), 1)
    hits = {name: {int(k): hits_from_bits(b) for k, b in bits.items()}
            for name, bits in t5["slow_all"]["reranked_hits"].items()}
    d = paired_difference_interval(hits[student][10], slow)
    k_paired = {name: smallest_within(h, slow, 1.0, interval=paired_difference_interval)[0]
                for name, h in hits.items()}
    k_bound, misses = shortlist_loss_bound(_ranks5(t5["fast"][student]), t5["Ks"], margin=1.0)
    kb_fast, _ = shortlist_loss_bound(_ranks5(t5["fast"]["fast"]), t5["Ks"], margin=1.0)
    text = (f"R@1 distilled Fast + Slow(10) {proportion_interval(hits[student][10])} vs Slow on "
            f"everything {proportion_interval(slow)} ({d.n:,} queries): {d.signed()}; plain Fast "
            f"+ Slow(10) {paired_difference_interval(hits['fast'][10], slow).signed()}; miss "
            f"rate at 10 on all {misses[10].n:,} queries {misses[10]}; smallest K within 1 point: "
            f"paired {k_paired[student]} (plain Fast {k_paired['fast']}), bound {k_bound} "
            f"(plain Fast {kb_fast})")
    if misses[10].high < 1.0:
        return text, "met", misses[10].n
    return text, verdict(d, -1), d.n


def rerank_speed_5k(_: Summary, extra: Mapping) -> Decision:
    t5 = _t5(extra)
    tm, n = t5["timing"], t5["protocol"]["images"]
    speed = tm["slow_all_ms"] / tm["fast_plus_slow_ms"]["10"]
    ideal = n / 10
    return (f"{speed:.0f}x at N = {n:,}, K = 10 ({speed / ideal:.2f} N/K; "
            f"{tm['slow_all_ms']:.0f} ms against {tm['fast_plus_slow_ms']['10']:.1f} ms per "
            f"query, {t5['machine']})"), "met" if speed >= 0.6 * ideal else "not met", None
