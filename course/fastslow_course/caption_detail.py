"""How much captions say, and what it does to Fast, Slow and distillation (notebook 03).

The measurements behind ``results/caption_detail.json`` (``scripts/caption_detail.py``), one
world per caption detail (``WorldConfig.caption_detail``: 1 names every object and its place,
0.6 about half of them and a place for some):

* :func:`world_stats`: how often a test caption is true of one image only (1K and 5K
  protocols), how many images a caption fits on average, the R@1 ceiling, and the **false
  negatives per training batch**: the images of a random batch, other than a caption's own, that
  the caption is true of (InfoNCE calls them negatives; a teacher that scores every pair knows
  better);
* :func:`fast_outcomes`: a Fast-type model on every query of a protocol: the rank of the
  labelled image, its top-1 (consistent@1: does it make the caption true?) and its top
  :data:`SHORTLIST` for Slow to re-rank;
* :func:`slow_on_shortlists`: Slow's scores of every model's short list (the union, scored
  once), and :func:`reranked_hits`: the labelled and consistent hits of Fast-type model + Slow(K)
  for each K;
* :func:`teacher_mass`: where the teacher's targets put their mass: on the caption's own image,
  on images the caption is also true of (true but unlabelled) or on images it is false of.

Intervals are the library's (exact binomial for a proportion, paired bootstrap for a difference
on the same queries: :mod:`fastslow_lib.core.intervals`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from fastslow_course.kept_intervals import paired_difference_interval
from fastslow_lib.core.intervals import (
    Estimate,
    hits_as_bits,
    hits_at,
    hits_from_bits,
    proportion_interval,
    verdict,
)
from fastslow_lib.core.metrics import r1_ceiling
from fastslow_lib.core.progress import progress
from fastslow_lib.data import RetrievalProtocol, is_true, truth_matrix
from fastslow_lib.data.world import Split, World
from fastslow_lib.fast.evaluate import embed_images, embed_texts
from fastslow_lib.rerank import SlowGallery

__all__ = ["CONTROL_OF", "DETAILS", "KS", "SHORTLIST", "SIGNALS", "fast_outcomes",
           "hits_record", "paired", "protocol_stats", "regime_decision", "regime_gains",
           "reranked_hits", "slow_on_shortlists", "teacher_mass", "training_false_negatives",
           "world_stats"]

#: The caption details measured: full captions (the course's world), COCO-like ones (a caption
#: fits a few images), sparse ones (a caption fits dozens).
DETAILS: tuple[float, ...] = (1.0, 0.8, 0.6)
#: Fast's short list that Slow re-ranks (and the largest K of the curve).
SHORTLIST = 100
#: Each teacher's student (notebook 03's signals) and its control without a teacher: the same
#: batches (signal (a)) or the same candidates with a hard label (signal (b)).
CONTROL_OF: dict[str, str] = {"fast_distilled": "fast_lookalike_batches",
                              "fast_ranked": "fast_hard_negatives"}
#: The signals' names as the course writes them.
SIGNALS: dict[str, str] = {"fast_distilled": "signal (a)", "fast_ranked": "signal (b)"}
#: The K of the re-ranking curve.
KS: tuple[int, ...] = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 100)


def protocol_stats(truth: np.ndarray) -> dict[str, float]:
    """A protocol's captions: the share true of exactly one image (percent), the mean number of
    images a caption is true of, and the R@1 ceiling (:func:`~fastslow_lib.core.metrics.
    r1_ceiling`)."""
    counts = np.asarray(truth).sum(axis=1)
    return {"true_of_one_image": round(100 * float((counts == 1).mean()), 2),
            "mean_true_images": round(float(counts.mean()), 3),
            "ceiling_R@1": round(r1_ceiling(truth), 2)}


def training_false_negatives(world: World, batch_size: int, *, batches: int = 100,
                             seed: int = 0) -> dict[str, float]:
    """False negatives of InfoNCE in random training batches of ``batch_size`` images (one
    caption each, as Fast trains): per caption, the other images of its batch it is true of.

    Returns the mean per caption, per batch, and the share of captions with at least one.
    """
    split = world.train
    rng = np.random.default_rng(seed)
    per_caption = []
    for _ in range(batches):
        images = rng.choice(len(split), size=batch_size, replace=False)
        caps = np.array([rng.choice(np.flatnonzero(split.caption_image == i)) for i in images])
        truth = truth_matrix([split.forms[c] for c in caps], [split.scenes[i] for i in images])
        per_caption.append(truth.sum(axis=1) - 1)  # its own image is always true
    fn = np.concatenate(per_caption)
    return {"batch_size": batch_size, "batches": batches,
            "per_caption": round(float(fn.mean()), 3),
            "per_batch": round(float(fn.mean() * batch_size), 2),
            "captions_with_one_or_more": round(100 * float((fn > 0).mean()), 2)}


def world_stats(world: World, p1k: RetrievalProtocol, p5k: RetrievalProtocol,
                batch_size: int) -> dict[str, Any]:
    """Everything :func:`protocol_stats` and :func:`training_false_negatives` say of a world."""
    return {"world": world.config.key(), "caption_detail": world.config.caption_detail,
            "test_1k": protocol_stats(p1k.truth), "test_5k": protocol_stats(p5k.truth),
            "training_batches": training_false_negatives(world, batch_size)}


def fast_outcomes(model: torch.nn.Module, tokenizer, protocol: RetrievalProtocol, *,
                  max_len: int, device: torch.device | str = "cpu",
                  block: int = 2500) -> dict[str, np.ndarray]:
    """A Fast-type model on every query: ``ranks`` (1-based rank of the labelled image),
    ``top1`` and ``top`` (its :data:`SHORTLIST` best images, best first)."""
    img = embed_images(model, protocol.gallery, device=device)
    n_q, n_g = len(protocol.queries), len(protocol.gallery)
    keep = min(SHORTLIST, n_g)
    ranks, top = np.zeros(n_q, dtype=np.int64), np.zeros((n_q, keep), dtype=np.int64)
    for s in progress(range(0, n_q, block), desc="Fast-type ranks"):
        txt = embed_texts(model, tokenizer, protocol.queries[s : s + block], max_len=max_len,
                          device=device)
        order = np.argsort(-(txt @ img.T).numpy(), axis=1, kind="stable")
        ranks[s : s + block] = 1 + np.argmax(order == protocol.gt[s : s + block, None], axis=1)
        top[s : s + block] = order[:, :keep]
    return {"ranks": ranks, "top1": top[:, 0].copy(), "top": top}


def slow_on_shortlists(gallery: SlowGallery, tokenizer, protocol: RetrievalProtocol,
                       query_ids: np.ndarray, tops: Sequence[np.ndarray], *, max_len: int,
                       query_block: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Slow's scores of the union of several models' short lists, for ``query_ids``.

    ``tops[m][q]`` is model ``m``'s short list for query ``query_ids[q]``. Returns
    ``(candidates, scores)``, both ``(len(query_ids), width)``: each row's union of images (padded
    by repeating its first) and Slow's score of each. Queries go to Slow ``query_block`` at a
    time, in order of length and then of union size (a few thousand pairs per decoder pass: the
    memory of one pass grows with its pairs), each block only as wide as its widest union.
    """
    unions = [np.unique(np.concatenate([t[q] for t in tops])) for q in range(len(query_ids))]
    sizes = np.array([len(u) for u in unions])
    cand = np.stack([np.concatenate([u, np.full(sizes.max() - len(u), u[0])]) for u in unions])
    texts = [protocol.queries[int(i)] for i in query_ids]
    order = np.lexsort((sizes, [len(t.split()) for t in texts]))
    scores = np.zeros(cand.shape, dtype=np.float32)
    for s in progress(range(0, len(texts), query_block), desc="Slow on the short lists"):
        rows = order[s : s + query_block]
        width = int(sizes[rows].max())
        scores[rows, :width] = gallery.candidate_scores(
            tokenizer, [texts[i] for i in rows], cand[rows, :width], max_len=max_len)
        scores[rows, width:] = scores[rows, :1]  # the padding repeats each row's first image
    return cand, scores


def reranked_hits(top: np.ndarray, cand: np.ndarray, scores: np.ndarray, gt: np.ndarray,
                  truth: np.ndarray, ks: Sequence[int] = KS) -> dict[int, dict[str, np.ndarray]]:
    """Per K: ``labelled`` and ``consistent`` hits of the model whose short lists are ``top``
    once Slow re-ranks its top K (Slow's scores looked up in ``cand`` / ``scores``, which must
    hold every image of ``top``; rows of ``gt`` and ``truth`` are the same queries)."""
    rows = np.arange(len(top))
    lookup = np.full((len(top), truth.shape[1]), -np.inf, dtype=np.float32)
    lookup[rows[:, None], cand] = scores
    if np.isinf(lookup[rows[:, None], top]).any():
        raise ValueError("Slow's scores miss some short-listed images: score the union of the "
                         "short lists (slow_on_shortlists)")
    out = {}
    for k in ks:
        pick = top[rows, np.argmax(lookup[rows[:, None], top[:, :k]], axis=1)]
        out[int(k)] = {"labelled": pick == gt, "consistent": truth[rows, pick]}
    return out


def teacher_mass(scores: np.ndarray, candidates: np.ndarray, split: Split, tau: float,
                 ) -> dict[str, float]:
    """Where the teacher's targets put their mass, against the labels'.

    Row ``c`` of ``scores`` is the teacher's score of training caption ``c`` against each of its
    ``candidates[c]`` (its own image among them; rows with a NaN score are skipped). The
    teacher's target is ``softmax(scores / tau)``; the labels (InfoNCE's one-hot) put all of it
    on the caption's own image. Returns the teacher's mean mass (percent) on the own image, on
    images the caption is also true of (**true but unlabelled**: what InfoNCE calls negatives
    and the teacher knows better) and on images it is false of, the share of captions with a
    true-but-unlabelled candidate, and the teacher's mass there for those captions alone.
    """
    rows = np.flatnonzero(np.isfinite(scores).all(axis=1))
    z = scores[rows] / tau
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    cand = candidates[rows]
    own = cand == split.caption_image[rows, None]
    true = np.array([[is_true(split.forms[c], split.scenes[int(g)]) for g in cand[i]]
                     for i, c in enumerate(rows)])
    other_true = true & ~own
    has = other_true.any(axis=1)
    return {"captions": int(len(rows)), "candidates": int(cand.shape[1]), "tau": tau,
            "own": round(100 * float((p * own).sum(axis=1).mean()), 2),
            "true_unlabelled": round(100 * float((p * other_true).sum(axis=1).mean()), 2),
            "false": round(100 * float((p * ~true).sum(axis=1).mean()), 2),
            "captions_with_true_unlabelled": round(100 * float(has.mean()), 2),
            "true_unlabelled_where_present": (
                round(100 * float((p * other_true).sum(axis=1)[has].mean()), 2)
                if has.any() else None)}


def paired(a: np.ndarray, b: np.ndarray) -> dict[str, float | int]:
    """``a - b`` in points with its paired bootstrap interval, as a JSON dict."""
    return paired_difference_interval(a, b).to_dict()


def hits_record(ranks: np.ndarray, consistent: np.ndarray) -> dict[str, Any]:
    """R@1, R@10 and consistent@1 with their exact intervals, and the per-query bits."""
    return {"R@1": proportion_interval(hits_at(ranks, 1)).to_dict(),
            "R@10": proportion_interval(hits_at(ranks, 10)).to_dict(),
            "consistent@1": proportion_interval(consistent).to_dict(),
            "labelled_bits": hits_as_bits(hits_at(ranks, 1)),
            "consistent_bits": hits_as_bits(consistent)}


def regime_gains(record: Mapping[str, Any], protocol: str) -> list[dict[str, Any]]:
    """Each teacher's student against Fast in each world of ``record``
    (``results/caption_detail.json``) measured on ``protocol`` (``"1k"`` or ``"5k"``), from the
    per-query outcomes kept there: ``detail``, ``student``, ``labelled`` and ``consistent``
    (student minus Fast, paired :class:`~fastslow_lib.core.intervals.Estimate`, points),
    ``teacher_share`` and ``teacher_share_consistent`` (student minus its control, labelled and
    consistent@1; ``None`` without a control)."""
    out = []
    for world in record["worlds"]:
        models = world.get("protocols", {}).get(protocol, {}).get("models", {})
        if "fast" not in models:
            continue

        def bits(name: str, kind: str, models: Mapping = models) -> np.ndarray:
            return hits_from_bits(models[name][f"{kind}_bits"])

        for student, control in CONTROL_OF.items():
            if student not in models:
                continue
            out.append({
                "detail": world["caption_detail"], "student": student,
                "labelled": paired_difference_interval(bits(student, "labelled"),
                                                       bits("fast", "labelled")),
                "consistent": paired_difference_interval(bits(student, "consistent"),
                                                         bits("fast", "consistent")),
                "teacher_share": (paired_difference_interval(bits(student, "labelled"),
                                                             bits(control, "labelled"))
                                  if control in models else None),
                "teacher_share_consistent": (
                    paired_difference_interval(bits(student, "consistent"),
                                               bits(control, "consistent"))
                    if control in models else None)})
    return out


def seed_gains(seeds: Mapping[str, Any] | None, detail: float, student: str,
               protocol: str) -> dict[int, dict[str, Estimate | None]]:
    """The other seeds' runs of ``student`` in the world of caption ``detail``, from
    ``results/caption_detail_seeds.json`` (``scripts/caption_detail_seeds.py``): seed ->
    ``vs_fast`` (minus the Fast of the same seed; ``None`` where that Fast is not trained),
    ``vs_release_fast`` and ``vs_control`` (the teacher's own share), by the labelled image.
    The release seed is left out (``results/caption_detail.json`` holds it); ``{}`` without
    such runs."""
    out: dict[int, dict[str, Estimate | None]] = {}
    for world in (seeds or {}).get("worlds", []):
        if abs(world["caption_detail"] - detail) > 1e-9:
            continue
        for seed, run in world["runs"].items():
            part = run["protocols"].get(protocol, {}).get(student)
            if int(seed) == world["release_seed"] or part is None:
                continue
            out[int(seed)] = {k: (Estimate(**part[k]["labelled"]) if part.get(k) else None)
                              for k in ("vs_fast", "vs_release_fast", "vs_control")}
    return out


def regime_decision(record: Mapping[str, Any], protocol: str, target: float = 3.0,
                    seeds: Mapping[str, Any] | None = None) -> tuple[str, str, int] | None:
    """The claims row's part for captions that leave things out: the best teacher's student
    (largest labelled gain over Fast) in a world whose captions leave things out, its
    consistent@1 gain and its teacher's own share beside it, and the verdict over every
    such regime and signal (met if any meets ``target`` by the course's rule: the whole paired
    interval at or above it). ``None`` where no such world has students.

    ``seeds`` (``results/caption_detail_seeds.json``): the best student's runs at other seeds,
    each against the Fast of its own seed (else the release Fast) and its control: met also
    needs every seed's interval above 0 (undecided where one reaches 0), and a seed whose whole
    interval is below 0 makes it not met."""
    gains = [g for g in regime_gains(record, protocol) if g["detail"] < 1]
    if not gains:
        return None
    best = max(gains, key=lambda g: g["labelled"].value)
    verdicts = {verdict(g["labelled"], target) for g in gains}
    share: Estimate | None = best["teacher_share"]
    text = (f"where captions leave things out, the best student ({SIGNALS[best['student']]}, "
            f"caption detail {best['detail']:g}): {best['labelled'].signed()} against the "
            f"labelled image, consistent@1 {best['consistent'].signed()}; the teacher's own "
            f"share (minus its control) {share.signed() if share is not None else 'not built'}")
    decided = next((v for v in ("met", "undecided") if v in verdicts), "not met")
    runs = seed_gains(seeds, best["detail"], best["student"], protocol)
    if runs:
        against = {s: r["vs_fast"] or r["vs_release_fast"] for s, r in sorted(runs.items())}
        own_fast = all(r["vs_fast"] for r in runs.values())
        shares = [r["vs_control"].signed() for r in runs.values() if r["vs_control"]]
        text += (f"; at seeds {' / '.join(map(str, against))}: "
                 f"{' / '.join(e.signed() for e in against.values() if e is not None)} minus "
                 f"{'the Fast of the same seed' if own_fast else 'the release Fast'}, "
                 f"teacher's own share {' / '.join(shares)}")
        if any(e is not None and e.high < 0 for e in against.values()):
            decided = "not met"   # a seed where the student is below Fast, beyond the noise
        elif decided == "met" and any(e is None or e.low <= 0 for e in against.values()):
            decided = "undecided"
    return text, decided, best["labelled"].n
